"""The store's files hold secrets (the SQLite database: password and session hashes, transcripts; the
recording key; encrypted recordings): each readable by its owner only (0600), in directories the store
makes 0700. Files found with looser modes are tightened when opened; an existing directory that others
may write to is only reported (it may be shared on purpose, like /tmp)."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> Path:
    """`path` as a directory: missing ones (parents too) are made with mode 0700."""
    missing: list[Path] = []
    here = path
    while not here.exists() and here != here.parent:
        missing.append(here)
        here = here.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            directory.mkdir(mode=PRIVATE_DIR)
    mode = path.stat().st_mode
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
        log.warning("%s is writable by every user: keep the call store in a private directory", path)
    return path


def tighten(path: Path) -> None:
    """Make an existing file readable and writable by its owner only."""
    try:
        if stat.S_IMODE(path.stat().st_mode) & ~PRIVATE_FILE:
            os.chmod(path, PRIVATE_FILE)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not make %s private (mode 0600): %s", path, exc)


def private_file(path: Path) -> Path:
    """`path` as a file only its owner can read: made empty with mode 0600 when missing, else tightened."""
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        tighten(path)
    return path
