"""Atomic small-file output: write beside the target, then rename, so a crash leaves nothing half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from microsr.errors import OutputExistsError


def check_writable(path: str | Path, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite``; create the parent folder. Returns the path."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists: pass --overwrite to replace it, or choose another output")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def ordinary_permissions(path: str | Path, directory: bool = False) -> None:
    """Give a temporary file the permissions a plain ``open`` would (mkstemp makes them owner-only)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if directory else 0o666) & ~umask)


def atomic_write_bytes(path: str | Path, data: bytes, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path = check_writable(path, overwrite)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    ordinary_permissions(temp)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str, overwrite: bool = True) -> None:
    """Write ``text`` (UTF-8) atomically; see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"), overwrite)
