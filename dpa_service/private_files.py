"""Secrets on disk (the seal key, the service secret): readable by us alone, written once."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_once(path: Path, data: bytes) -> bool:
    """Create `path` (mode 0600) with `data` unless it exists; True if this call wrote it.

    The file appears complete or not at all, and when several workers start at once the first one wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return True
