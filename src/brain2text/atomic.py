"""Atomic file writes: a reader sees the old file or the complete new one, never a partial one."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from brain2text.errors import DataError, StorageError


def _os_error_in(exc: BaseException | None) -> OSError | None:
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


def _replace_folder(tmp: Path, folder: Path) -> None:
    """Put the finished ``tmp`` in the place of ``folder`` (which may exist); on a failure the
    previous ``folder`` is put back."""
    if folder.exists() and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    if not folder.exists():
        os.replace(tmp, folder)
        return
    old = folder.parent / f".{folder.name}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    os.replace(folder, old)
    try:
        os.replace(tmp, folder)
    except BaseException:
        os.replace(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _staging_folder(folder: Path) -> Path:
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        return Path(
            tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent)
        )
    except OSError as exc:
        raise StorageError(f"{folder}: cannot write ({exc.strerror})") from None


def atomic_write_folder(folder: Path, files: dict[str, str]) -> None:
    """Write ``files`` (name -> text) as the whole content of ``folder``: they are written into a
    temporary sibling that then replaces ``folder``, so a reader (or a failure) never sees a
    mix of old and new files."""
    folder = Path(folder)
    tmp = _staging_folder(folder)
    try:
        for name, text in files.items():
            atomic_write_text(tmp / name, text)
        _replace_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass(frozen=True)
class OutputKind:
    """What an output folder of a command holds: a file that marks it as ours."""

    marker: str  # e.g. manifest.json
    format: str  # the marker's "format" value
    description: str  # "a prepared dataset"


def check_output_folder(folder: Path, kind: OutputKind, *, overwrite: bool) -> None:
    """Refuse a non-empty ``folder`` unless ``overwrite``, and never replace a foreign one."""
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise DataError(f"{folder}: exists and is not a folder; choose another output folder")
    if not any(folder.iterdir()):
        return
    if not overwrite:
        raise DataError(
            f"{folder}: already exists and is not empty; pass --overwrite to "
            "replace it, or choose another folder"
        )
    try:
        ours = (
            json.loads((folder / kind.marker).read_text(encoding="utf-8"))["format"] == kind.format
        )
    except (OSError, ValueError, KeyError, TypeError):
        ours = False
    if not ours:
        raise DataError(
            f"{folder}: refusing to overwrite a folder that is not "
            f"{kind.description} (no brain2text {kind.marker}); remove it yourself "
            "or choose another folder"
        )


@contextlib.contextmanager
def staged_folder(folder: Path, kind: OutputKind, *, overwrite: bool) -> Iterator[Path]:
    """A fresh hidden sibling of ``folder`` that becomes ``folder`` when the block succeeds; on
    any error it is removed and ``folder`` is left as it was (a failed write of the disk is a
    one-line :class:`StorageError`)."""
    folder = Path(os.path.normpath(Path(folder).absolute()))
    check_output_folder(folder, kind, overwrite=overwrite)
    tmp = _staging_folder(folder)
    try:
        yield tmp
        check_output_folder(folder, kind, overwrite=overwrite)  # it may have appeared meanwhile
        _replace_folder(tmp, folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StorageError(
            f"{folder}: cannot write ({exc.strerror}); it was left as it was"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
