"""Random identifiers and secrets that are safe wherever users paste them.

Letters and digits only: nothing a shell, a URL or a command line treats specially. An id that
began with ``-`` (as URL-safe base64 can) was taken by awscli for an option
(``--version-id -d8Ya…``: "expected one argument")."""

from __future__ import annotations

import secrets
import string

LETTERS_DIGITS = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits


def random_chars(length: int, alphabet: str = LETTERS_DIGITS) -> str:
    """``length`` characters drawn uniformly from ``alphabet`` by the OS's CSPRNG."""
    return "".join(secrets.choice(alphabet) for _ in range(length))
