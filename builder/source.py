"""Where the model comes from: a local folder, a folder shipped inside a Python package, or the Hub.

Each resolves to a local folder plus an identity (Hub commit sha or content hash) that enters the bundle id.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from builder.digests import sha256_remembered
from builder.errors import SourceError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# Files a build needs; weights in safetensors only (nothing that unpickles).
HUB_PATTERNS = ["*.json", "*.txt", "*.model", "*.jinja", "*.safetensors", "1_Pooling/*", "README.md"]


@dataclass(frozen=True)
class Source:
    path: Path
    kind: str  # local | package | hub
    identity: dict[str, Any]


def classify(source: str) -> str:
    if source.startswith("pkg://"):
        return "package"
    path = Path(source).expanduser()
    if path.exists() or source.startswith(("/", ".", "~")) or "\\" in source or not HUB_ID.match(source):
        return "local"
    return "hub"


def _package_folder(source: str) -> tuple[str, Path]:
    package, _, sub = source.removeprefix("pkg://").partition("/")
    try:
        root = resources.files(package)
    except ModuleNotFoundError as e:
        raise SourceError(
            f"model.source={source}: Python package {package!r} is not installed. "
            f"Install it (pip install {package.replace('_', '-')}) or give a local folder."
        ) from e
    return package, Path(str(root)) / sub


def source_problems(cfg: Any) -> list[str]:
    """Cheap checks done with the rest of validation (no network)."""
    src = cfg.model.source
    kind = classify(src)
    folder: Path | None = None
    if kind == "package":
        try:
            folder = _package_folder(src)[1]
        except SourceError as e:
            return [str(e)]
    elif kind == "local":
        folder = Path(src).expanduser()
        if not folder.is_dir():
            return [
                f"model.source={src}: no such folder. Give a folder holding config.json and the weights "
                "(e.g. from save_pretrained), or a Hub id like org/name."
            ]
    if folder is None:
        return []
    if not (folder / "config.json").is_file():
        return [f"model.source={src}: {folder} has no config.json; is it a Hugging Face model folder?"]
    from omegaconf import OmegaConf

    from builder.tasks import model_problems

    return model_problems(folder, cfg.task.name, src, OmegaConf.to_container(cfg.task, resolve=True))


def resolve(cfg: Any) -> Source:
    src, revision = cfg.model.source, cfg.model.revision
    kind = classify(src)
    if kind == "package":
        package, folder = _package_folder(src)
        identity = {
            "kind": "package",
            "package": package,
            "version": _distribution_version(package),
            "content_sha256": folder_hash(folder),
        }
        return _with_license(Source(folder, kind, identity))
    if kind == "local":
        folder = Path(src).expanduser().resolve()
        return _with_license(Source(folder, kind, {"kind": "local", "content_sha256": folder_hash(folder)}))
    return _with_license(_from_hub(src, revision, cfg.model.trust_remote_code))


def _with_license(source: Source) -> Source:
    """The license the model's own card declares joins its identity (the card is not in the content hash, and
    the bundle's card carries the license: same id, same bytes)."""
    found = source_license(source.path)
    return Source(source.path, source.kind, {**source.identity, "license": found}) if found else source


def source_license(folder: Any) -> str | None:
    """The license the source model's own card declares (README.md metadata), if any."""
    from pathlib import Path

    readme = Path(folder) / "README.md"
    if not readme.is_file():
        return None
    from huggingface_hub import ModelCard

    try:
        value = ModelCard.load(readme).data.to_dict().get("license")
    except Exception:  # a README without (valid) metadata
        return None
    return value if isinstance(value, str) else None


@functools.cache
def _distribution_version(package: str) -> str | None:
    try:  # the usual case, without scanning every installed distribution (slow)
        return metadata.version(package.replace("_", "-"))
    except metadata.PackageNotFoundError:
        pass
    for dist in metadata.packages_distributions().get(package, []):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _from_hub(repo_id: str, revision: str | None, trust_remote_code: bool) -> Source:
    import logging

    from huggingface_hub import constants, snapshot_download

    from builder.runtime.loader import hub_reachable

    patterns = HUB_PATTERNS + (["*.py"] if trust_remote_code else [])
    fetch = f"hf download {repo_id}{' --revision ' + revision if revision else ''} --local-dir DIR"
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)  # its retry warnings; we say it once
    try:  # a copy already in the Hub cache needs no network
        folder = Path(
            snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=True)
        )
    except Exception:
        if constants.HF_HUB_OFFLINE or not hub_reachable(constants.ENDPOINT):
            raise SourceError(
                f"model.source={repo_id}: the Hugging Face Hub is unreachable from this machine and the model is "
                f"not in the local Hub cache. Download it where the Hub is reachable ({fetch}), copy DIR here, "
                "and build with model.source=DIR."
            ) from None
        try:
            folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
        except Exception as e:  # unknown repo, bad revision, gated model
            raise SourceError(
                f"model.source={repo_id}: cannot fetch it from the Hugging Face Hub "
                f"({type(e).__name__}: {str(e).splitlines()[0][:200]}). Check the id and model.revision, "
                f"or download it ({fetch}) and build with model.source=DIR."
            ) from e
    commit = folder.name  # snapshots/<commit sha>
    identity = {"kind": "hub", "repo_id": repo_id, "revision": revision, "commit": commit}
    return Source(folder, "hub", identity)


def folder_hash(folder: Path) -> str:
    """Content hash of the files a build reads (names + bytes), independent of the folder's location."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not _ignored(p.relative_to(folder))):
        rel = path.relative_to(folder).as_posix()
        h.update(rel.encode() + b"\0" + sha256_remembered(path).encode() + b"\n")
    return h.hexdigest()


def _ignored(rel: Path) -> bool:
    return any(part.startswith(".") or part == "__pycache__" for part in rel.parts) or rel.suffix in (
        ".pyc",
        ".md",
    )
