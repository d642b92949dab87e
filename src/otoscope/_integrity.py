"""Is a file otoscope wrote (or reads) still whole? Manifests of sizes and hashes, and safetensors checks.

A cache folder gets ``manifest.json``, written last and atomically, with each file's size, SHA-256 and
modification time. :func:`check_folder` costs one ``stat`` per file: a size that differs means a truncated
or extended file; a size that matches with another modification time means something wrote to the file,
so only then is it hashed (SHA-256 runs at about 1 GB/s; hashing the 150 MB whisper-tiny.en on every
start would add a fifth of a second to each ``otoscope`` command). A hash is also taken when loading
fails (``deep=True``). What this misses — bytes that change on disk without a write, e.g. a failing
disk — the file system's own checks are the place for.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

MANIFEST = "manifest.json"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _entry(path: Path, digest: str | None = None) -> dict:
    st = path.stat()
    return {"size": st.st_size, "sha256": digest or sha256_file(path), "mtime_ns": st.st_mtime_ns}


def write_manifest(folder: str | os.PathLike, extra: dict | None = None) -> Path:
    """Record size, SHA-256 and modification time of every file in ``folder`` in ``folder/manifest.json``."""
    from otoscope._io import write_text_atomic

    folder = Path(folder)
    files = {p.name: _entry(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST
             and not p.name.startswith(".")}
    write_text_atomic(folder / MANIFEST, json.dumps({**(extra or {}), "files": files}, indent=1))
    return folder / MANIFEST


def check_folder(folder: str | os.PathLike, deep: bool = False) -> list[str]:
    """Problems with ``folder`` against its manifest (empty: whole). ``deep`` hashes every file.

    Without ``deep`` a file is hashed only when its size matches but its modification time does not;
    when the hash then matches, the manifest learns the new time, so the next check is a ``stat`` again.
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return [f"{folder / MANIFEST} is missing or unreadable"]
    if not (isinstance(files, dict) and files and all(isinstance(v, dict) for v in files.values())):
        return [f"{folder / MANIFEST} is missing or unreadable (no file records)"]
    problems, touched = [], False
    for name, want in files.items():
        path = folder / name
        try:
            st = path.stat()
        except OSError:
            problems.append(f"{path} is missing")
            continue
        if st.st_size != want.get("size"):
            problems.append(f"{path} has {st.st_size} bytes, expected {want.get('size')} (truncated or overwritten)")
        elif deep or st.st_mtime_ns != want.get("mtime_ns"):
            if sha256_file(path) != want.get("sha256"):
                problems.append(f"{path} has changed since it was written (SHA-256 differs)")
            elif st.st_mtime_ns != want.get("mtime_ns"):
                want["mtime_ns"], touched = st.st_mtime_ns, True
    if touched and not problems:
        from otoscope._io import write_text_atomic

        try:
            write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=1))
        except OSError:
            pass  # a read-only cache: the check just hashes again next time
    return problems


def check_safetensors(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a whole safetensors file (bad header, truncated, extra bytes), or None.

    Reads only the header: its JSON lists every tensor's byte range, so the file size must equal 8 +
    header length + the end of the last tensor. Catches truncation and a damaged header, not changed
    tensor bytes (the format holds no checksum).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                return f"{path} is damaged or truncated: {size} bytes, too short for a safetensors header"
            (n,) = struct.unpack("<Q", prefix)
            if n > min(size - 8, 100_000_000):
                return f"{path} is damaged or truncated: its header claims {n} bytes of a {size}-byte file"
            header = json.loads(f.read(n))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        return f"{path} is damaged or not safetensors: unreadable header ({type(err).__name__})"
    if not isinstance(header, dict):
        return f"{path} is damaged: its safetensors header is malformed"
    try:
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (KeyError, TypeError, ValueError, IndexError):
        return f"{path} is damaged: its safetensors header is malformed"
    if 8 + n + end != size:
        return f"{path} is damaged or truncated: {size} bytes, its header describes {8 + n + end}"
    return None
