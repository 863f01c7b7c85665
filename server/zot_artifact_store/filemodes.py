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
