"""The folder pathways keeps what it derived between commands in, and when to trust it.

Everything kept there can be derived again (holiday dates, passes of deployment files), so
deleting the folder is always safe. It is read only if this user owns it and nobody else may
write it. `PATHWAYS_CACHE_DIR` sets the folder (empty turns the cache off); the default is
`$XDG_CACHE_HOME/pathways`, else `~/.cache/pathways`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def folder() -> Path | None:
    """The cache folder the environment asks for, or None when caching is off."""
    configured = os.environ.get("PATHWAYS_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no home directory (a service user without one): no cache
            return None
    return Path(base) / "pathways"


def private(path: Path, want_dir: bool) -> bool:
    """Owned by this user and writable by nobody else (where the platform has owners)."""
    try:
        info = path.lstat()
    except OSError:
        return False
    if want_dir != stat.S_ISDIR(info.st_mode) or stat.S_ISLNK(info.st_mode):
        return False
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        return False
    return not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def writable() -> Path | None:
    """The cache folder, created if need be, when it may be trusted; else None."""
    where = folder()
    if where is None:
        return None
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return where if private(where, want_dir=True) else None
