"""Atomic file writes: a reader sees the old file or the complete new one, never a partial one."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from brain2text.errors import StorageError


def _os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc``: itself, or one it was raised from or during (``torch.save``
    turns a failed write into a RuntimeError raised while handling the OSError)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno is not None:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def atomic_write_bytes(path: Path, write) -> None:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it over
    ``path``. On any error the temporary file is removed and ``path`` is left as it was; a
    failed write of the disk (full, read-only, no permission) is a one-line
    :class:`StorageError` naming ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise StorageError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        os_error = _os_error_in(exc)
        if os_error is None:
            raise
        kept = "the previous file is kept" if path.exists() else "nothing was written"
        what = "the disk is full" if os_error.errno == errno.ENOSPC else os_error.strerror
        raise StorageError(f"{path}: cannot write, {what} ({kept})") from None


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def atomic_write_folder(folder: Path, files: dict[str, str]) -> None:
    """Write ``files`` (name -> text) as the whole content of ``folder``: they are written into a
    temporary sibling that then replaces ``folder``, so a reader (or a failure) never sees a
    mix of old and new files."""
    folder = Path(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial",
                                    dir=folder.parent))
    except OSError as exc:
        raise StorageError(f"{folder}: cannot write ({exc.strerror})") from None
    old = folder.parent / f".{folder.name}.old"
    try:
        for name, text in files.items():
            atomic_write_text(tmp / name, text)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not folder.exists():
            os.replace(old, folder)  # put the previous folder back
        raise
    shutil.rmtree(old, ignore_errors=True)
