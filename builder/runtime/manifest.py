"""Bundle manifests: sha256 and size of every file, checked before anything in a bundle is used, and the
runtime section that says how to run the bundle.

Format 2 names the graphs by role: runtime.graphs = {"model": {"file", "inputs", "outputs", "token_outputs"}}
(later "encoder", "decoder", ...), and the task's runtime options in runtime.options. A graph whose key/value
cache outputs are written by GroupQueryAttention says "shared_cache": true (the runtime may bind one buffer as
both past and present). Format 1 (one graph,
model.onnx) is read as the same shape."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Any

from builder.errors import BundleIntegrityError

FORMAT_VERSION = 2
READABLE = (1, 2)
MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_table(folder: Path) -> dict[str, dict[str, Any]]:
    """Every file under folder except the manifest itself, by POSIX relative path."""
    table = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel == MANIFEST or path.is_dir():
            continue
        table[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return table


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise BundleIntegrityError(f"{path}: missing; {folder} is not a builder bundle (or is incomplete).")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        version = int(manifest["format_version"])
    except (ValueError, KeyError, TypeError) as e:
        raise BundleIntegrityError(f"{path}: unreadable manifest ({e}).") from e
    if version > FORMAT_VERSION:
        raise BundleIntegrityError(
            f"{path}: bundle format {version} is newer than this builder reads ({FORMAT_VERSION}). "
            "Upgrade builder to load it."
        )
    if version not in READABLE:
        raise BundleIntegrityError(f"{path}: format_version {version} is not a bundle format ({READABLE}).")
    problems = _shape_problems(manifest)
    if problems:
        raise BundleIntegrityError(f"{path}: damaged manifest: " + "; ".join(problems) + ".")
    return manifest


def _shape_problems(manifest: Any) -> list[str]:
    """A manifest is an object whose files map paths to {sha256, size}; anything else is damage, named."""
    if not isinstance(manifest, dict):
        return [f"the manifest is {type(manifest).__name__}, not an object"]
    problems = []
    files = manifest.get("files")
    if not isinstance(files, dict):
        problems.append(f'"files" is {type(files).__name__}, not an object of path -> {{sha256, size}}')
    else:
        for rel, entry in files.items():
            if not (
                isinstance(entry, dict)
                and isinstance(entry.get("sha256"), str)
                and isinstance(entry.get("size"), int)
            ):
                problems.append(f'"files" entry {rel!r} is not {{"sha256": ..., "size": ...}}')
                break
    if not isinstance(manifest.get("bundle_id"), str):
        problems.append('"bundle_id" is missing or not a text')
    for key in ("runtime", "source", "versions"):
        if key in manifest and not isinstance(manifest[key], dict):
            problems.append(f'"{key}" is {type(manifest[key]).__name__}, not an object')
    return problems


def runtime_section(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest's runtime section in format 2's shape, whatever the bundle's format."""
    runtime = dict(manifest.get("runtime") or {})
    if int(manifest["format_version"]) >= 2:
        return runtime
    task = runtime.get("task")
    graph = {
        "file": "model.onnx",
        "inputs": list(runtime.pop("inputs", [])),
        "outputs": list(runtime.pop("outputs", [])),
        "token_outputs": list(runtime.pop("token_outputs", [])),
    }
    pooling, normalize = runtime.pop("pooling", None), runtime.pop("normalize", None)
    options = {"pooling": pooling, "normalize": normalize} if task == "feature-extraction" else {}
    return runtime | {"pipeline": task, "graphs": {"model": graph}, "options": options}


def _external_data_problems(folder: Path, listed: dict[str, Any]) -> list[str]:
    """Every external-data file an ONNX model names must be a file of this bundle, listed in the manifest."""
    from builder.runtime.external_data import external_data_locations

    problems = []
    for rel in listed:
        if not rel.endswith(".onnx"):
            continue
        try:
            locations = external_data_locations((folder / rel).read_bytes())
        except (ValueError, IndexError) as e:
            problems.append(f"{rel}: not a readable ONNX model ({e})")
            continue
        base = PurePosixPath(rel).parent
        for location in sorted(locations):
            pure = PurePosixPath(location)
            target = (base / pure).as_posix()
            if pure.is_absolute() or ".." in pure.parts or "\\" in location or target not in listed:
                problems.append(
                    f"{rel}: external data {location!r} is outside the bundle or not in its manifest"
                )
    return problems


def _housekeeping(rel: str) -> bool:
    """Files the Hugging Face Hub adds to every repo or download, which are not the bundle's: the repo's
    .gitattributes and the metadata folder of an `hf download --local-dir` copy."""
    return rel == ".gitattributes" or rel.startswith(".cache/huggingface/")


def _hub_blobs(folder: Path) -> Path | None:
    """The blobs folder when `folder` is a snapshot in the Hub cache (<repo>/snapshots/<commit>), whose files
    are links into <repo>/blobs/."""
    snapshots = folder.parent
    blobs = snapshots.parent / "blobs"
    return blobs.resolve() if snapshots.name == "snapshots" and blobs.is_dir() else None


def verify(folder: str | Path) -> dict[str, Any]:
    """Return the manifest if every file matches it; raise BundleIntegrityError naming each file that
    changed, is missing, was added, or points outside the bundle. In the Hub cache a file may be a link into
    its repo's blobs (still checked by hash); the Hub's housekeeping files are ignored, nothing else."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    listed: dict[str, dict[str, Any]] = manifest.get("files", {})
    problems = []
    root = folder.resolve()
    blobs = _hub_blobs(folder)
    for rel, entry in sorted(listed.items()):
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts:
            problems.append(f"{rel}: path leads outside the bundle")
            continue
        path = folder / rel
        target = path.resolve()
        in_blobs = blobs is not None and path.is_symlink() and target.is_relative_to(blobs)
        if not in_blobs and (path.is_symlink() or not target.is_relative_to(root)):
            problems.append(f"{rel}: is a link (bundles hold plain files only)")
        elif not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != entry.get("size") or sha256_file(path) != entry.get("sha256"):
            problems.append(f"{rel}: changed (sha256 differs from the manifest)")
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if _housekeeping(rel):
            continue
        if rel != MANIFEST and rel not in listed and (path.is_file() or path.is_symlink()):
            problems.append(f"{rel}: added (not in the manifest)")
    if not problems:
        problems += _external_data_problems(folder, listed)
    if problems:
        raise BundleIntegrityError(
            f"{folder}: bundle does not match its manifest:\n  - " + "\n  - ".join(problems)
        )
    return manifest
