"""Permissions of what the server writes under its data directory.

By default, private files (keys, locks) are ``0600``, data files (blobs, the SQLite database)
``0644`` and directories follow the process umask. In a container (``serve --container``) the
data directory must stay usable when the orchestrator starts the next pod under another
arbitrary UID in group 0 (OpenShift's restricted SCC), so :func:`share_with_group` makes
everything the server writes group-writable: data files ``0664``, private files ``0660`` (group
0 is the container's own group, nobody else's), directories ``0775`` (umask ``002``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
DATA_FILE_MODE = 0o644


def private_file_mode() -> int:
    """Mode for files only the server may read: keys, lock files."""
    return PRIVATE_FILE_MODE


def data_file_mode() -> int:
    """Mode for data files: blobs, upload sessions, the SQLite database."""
    return DATA_FILE_MODE


def share_with_group() -> None:
    """Group-writable files and directories from now on (this process and its forks)."""
    global PRIVATE_FILE_MODE, DATA_FILE_MODE
    PRIVATE_FILE_MODE, DATA_FILE_MODE = 0o660, 0o664
    os.umask(0o002)


def random_key() -> bytes:
    """64 hexadecimal characters: 256 random bits."""
    return secrets.token_hex(32).encode()


def load_or_create_private(path: Path, make: Callable[[], bytes] = random_key) -> bytes:
    """The contents of the private file ``path``; made by ``make`` and written once if missing.

    Workers and replicas sharing the directory may start together: the file is written whole
    under a temporary name and linked into place, so every reader sees either nothing or all of
    it, and exactly one writer wins."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    data = make()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, private_file_mode())
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_bytes()  # another process won
        return data
    finally:
        tmp.unlink(missing_ok=True)
