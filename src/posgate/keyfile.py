"""Key files on disk: the host's master key and a terminal's journal key are made the same way."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def create_key_file(path: Path, length: int) -> bytes | None:
    """Write a fresh random key of ``length`` bytes to ``path``: mode 0600 from the start (not a
    umask), fsynced, and linked into place atomically, so there is never a half-written key nor
    two different keys. Returns the key, or None when another process created the file first
    (the caller reads theirs)."""
    key = secrets.token_bytes(length)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        return None
    finally:
        tmp.unlink(missing_ok=True)
    return key
