"""Atomic writes, hashes and manifests: how every artefact is written and checked before it is loaded."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class ArtifactError(RuntimeError):
    """An artefact is missing, corrupt or was made for other software versions."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; artefacts are read by other users (the container's)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def staging_folder(out: Path) -> Path:
    """An empty sibling of `out` to write a new version into before `replace_folder` swaps it in."""
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # left by a crash mid-write
    return tmp


def replace_folder(tmp: Path, out: Path) -> None:
    """Swap a fully written folder `tmp` in for `out`; readers see the old folder or the new one whole."""
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_files(paths: list[Path]) -> str:
    """One hash over several files (names and contents), used to identify training data."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def input_name(path: Path) -> str:
    """How a manifest names an input: its path from the repository's root (the working directory of every
    training command), or its absolute path when it lies outside."""
    absolute = Path(os.path.abspath(path))
    return absolute.relative_to(Path.cwd()).as_posix() if absolute.is_relative_to(Path.cwd()) else absolute.as_posix()


def input_hashes(paths: Iterable[Path]) -> dict[str, dict[str, str]]:
    """`{"inputs": {path: sha256}}` for an artefact's manifest: every file it was built from (data and config),
    so that a test can tell when the repository's files have moved on from the artefact."""
    return {"inputs": {input_name(p): sha256_file(p) for p in paths}}


def folder_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file directly in `folder`, by name: what an artefact's manifest lists."""
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()}


def read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ArtifactError(f"manifest not found: {path}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"manifest {path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"manifest {path} is not a JSON object")
    return manifest


def verify_file(path: Path, expected_sha256: str) -> None:
    """Refuse a file whose hash differs from its manifest (joblib and pickle files can run code)."""
    if not path.is_file():
        raise ArtifactError(f"artefact not found: {path}")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise ArtifactError(
            f"{path} does not match its manifest (sha256 {actual[:12]}… expected {expected_sha256[:12]}…): "
            "the file is corrupt or was replaced; rebuild it with its training command"
        )
