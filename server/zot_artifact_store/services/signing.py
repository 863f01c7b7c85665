"""Server-side signing: the store signs a subject on request, as a DSSE envelope over an in-toto
statement, with a key from configuration. ``SigningProvider`` is the seam for keys held
elsewhere (Vault transit, a cloud KMS): anything that can name its public key and sign bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import StoreError
from ..lazy import lazy_module

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.signer import Signer
else:  # cryptography loads on first use (issue 23: idle RSS)
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")

# securesystemslib (and the cloud signers it loads) on the first signature (issue 23).
sslib_signer = lazy_module("securesystemslib.signer")


class SigningProvider(Protocol):
    """A key the store signs with."""

    @property
    def public_key_pem(self) -> str: ...

    @property
    def signer(self) -> Signer:
        """A securesystemslib signer (DSSE envelopes are signed through it)."""
        ...


# The key the embedded default makes on first start, in the data directory.
SIGNING_KEY_FILENAME = "signing-key.pem"


_PEM_KEY_RE = re.compile(
    rb"-----BEGIN ((?:EC |RSA )?PRIVATE KEY)-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END \1-----\s*",
)


def pem_key_problem(data: bytes) -> str | None:
    """Why ``data`` cannot be an unencrypted PEM private key, or None when it is whole: its
    armour, its base64 and the length its DER declares, checked without loading the crypto
    library (a broken generated key stops the start, not the first signature, while a
    server that never signs still never imports cryptography)."""
    found = _PEM_KEY_RE.fullmatch(data)
    if found is None:
        if b"ENCRYPTED PRIVATE KEY" in data:
            return "it is encrypted (the server's key file must not be)"
        return "it is not a PEM private key (BEGIN/END PRIVATE KEY lines around base64)"
    try:
        der = base64.b64decode(b"".join(found.group(2).split()), validate=True)
    except binascii.Error:
        return "its base64 is broken"
    if len(der) < 2 or der[0] != 0x30:
        return "its contents are not a key (no DER sequence)"
    size, head = der[1], 2
    if size & 0x80:
        count = size & 0x7F
        size, head = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
    if head + size != len(der):
        return f"it is cut short or padded ({len(der)} bytes where the key says {head + size})"
    return None


def new_signing_key() -> bytes:
    """A new ECDSA P-256 private key, PEM (PKCS#8)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class LocalKeyProvider:
    """A PEM private key from configuration (a file, a mounted secret, an env variable)."""

    def __init__(self, pem: str) -> None:
        try:
            private: Any = serialization.load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise StoreError("InternalError", f"the signing key cannot be loaded: {exc}") from None
        self._private = private
        self._signer: Signer | None = None
        self._public_pem = (
            private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    @property
    def public_key_pem(self) -> str:
        return self._public_pem

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            self._signer = sslib_signer.CryptoSigner(self._private)
        return self._signer


__all__ = [
    "SIGNING_KEY_FILENAME",
    "LocalKeyProvider",
    "SigningProvider",
    "new_signing_key",
    "pem_key_problem",
]
