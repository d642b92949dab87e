"""Atomic file and folder writes: a reader never sees half an output, and a crash loses nothing already written.

Temporaries live beside their target (same filesystem, so the final rename is atomic) and carry the writing
process's id in their name: the next write to the same target deletes the ones whose process is gone (a
run killed with SIGKILL cannot clean up after itself).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from otoscope.errors import OtoscopeError

TEMP_SUFFIXES = (".tmp", ".old")  # a folder being built, a replaced folder being deleted


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporaries beside ``path`` left by writers that no longer run; return what went.

    Only names this module makes for ``path`` itself count (``.NAME.PID.RANDOM.tmp|.old``, matched exactly:
    a sibling target ``NAME.7`` has temporaries of its own that are not ours). A writer killed between the
    two renames of a folder swap left ``path`` missing and its earlier output in a ``.old`` folder: that
    output is put back, not deleted.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[^.]+\.(tmp|old)")
    gone = []
    for entry in path.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if match is None or _alive(int(match.group(1))):
            continue
        if match.group(2) == "old" and not (path.exists() or path.is_symlink()) and (entry / path.name).exists():
            os.replace(entry / path.name, path)  # the earlier output, restored
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        gone.append(entry)
    return gone


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, markers: Iterable[str] | None) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` as a whole.

    The swap is: rename the old folder aside, rename the new one in, delete the old one. Until the
    second rename a reader sees the complete old folder; after it, the complete new one — never a mix
    of old and new files, and no file of an earlier run survives into the new one. On an exception
    the temporary folder is deleted and ``path`` is left as it was.

    ``markers``: files that only an earlier output of the same writer holds (see :func:`check_output_dir`);
    an existing non-empty folder without one of them is refused, never deleted, so a mistyped ``--out``
    cannot replace a user's folder. ``None`` only for folders otoscope owns (its caches, checkpoints).
    """
    path = Path(path)
    if markers is not None:
        check_output_dir(path, markers)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        old = None
        if path.exists() or path.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=_prefix(path), suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:  # put the old folder back
                os.replace(old / path.name, path)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def check_output_file(path: str | os.PathLike, example: str = "out.dat") -> Path:
    """Check, before any work, that ``path`` can become a file: not a folder, its parent not a file."""
    path = Path(path)
    if path.is_dir():
        raise OtoscopeError(f"{path} is a folder; pass a file path, e.g. {path / example}.")
    _check_parent(path)
    return path


def check_output_dir(path: str | os.PathLike, markers: Iterable[str] | None, what: str = "output folder") -> Path:
    """Check, before any work, that ``path`` can be (re)written as a whole as an output folder.

    It must not be a file, and an existing non-empty folder must hold one of ``markers`` (the files an
    earlier run of the same command wrote): the new output replaces the whole folder, so a folder of
    other files is refused rather than deleted. ``markers=None``: a folder that is added to in place (a
    resumable store), which may hold anything.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OtoscopeError(f"{path} is a file; pass a folder path for the {what} (it is created).")
    markers = None if markers is None else list(markers)
    if markers is not None and path.is_dir() and any(path.iterdir()) and not any((path / m).exists() for m in markers):
        raise OtoscopeError(f"{path} already holds other files and no {' or '.join(markers)} of an earlier run; "
                            f"the {what} replaces the whole folder, so pass a new or empty one.")
    _check_parent(path)
    return path


def _check_parent(path: Path) -> None:
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise OtoscopeError(f"cannot create {path}: {parent} is a file, not a folder.")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OtoscopeError(f"cannot write {path}: no write permission in {parent}.")
            return
