"""Loading a bundle: verify its manifest, open an ONNX Runtime session per graph as its hardware profile says,
and give back a callable pipeline for its task (the call shapes and outputs of transformers' pipelines)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from builder.errors import BuilderError, BundleIntegrityError
from builder.runtime.engine import OnnxEngine
from builder.runtime.manifest import runtime_section, verify
from builder.runtime.pipelines import PIPELINES


class Bundle:
    """A loaded bundle. `bundle(...)` runs its task pipeline; `task`, `config`, `metrics`, `manifest` describe it."""

    def __init__(
        self, path: str | Path, *, intra_op_threads: int | None = None, huge_pages: bool | None = None
    ):
        self.path = Path(path)
        self.manifest: dict[str, Any] = verify(self.path)
        self.runtime: dict[str, Any] = runtime_section(self.manifest)
        lacking = [
            k for k in ("task", "pipeline", "graphs", "hardware", "max_length") if k not in self.runtime
        ]
        if lacking:
            raise BundleIntegrityError(
                f"{self.path / 'manifest.json'}: runtime section lacks {', '.join(lacking)}; rebuild the bundle"
            )
        self.task: str = self.runtime["task"]
        pipeline = self.runtime.get("pipeline")
        if pipeline not in PIPELINES:
            raise BuilderError(
                f"{self.path}: pipeline {pipeline!r} (task {self.task!r}) is not in this builder version "
                f"(it has: {', '.join(PIPELINES)}). Upgrade builder to load it."
            )
        metrics = self.path / "metrics.json"
        try:  # measurements only: a bundle whose metrics cannot be read still runs
            self.metrics: dict[str, Any] = (
                json.loads(metrics.read_text(encoding="utf-8")) if metrics.is_file() else {}
            )
        except ValueError:
            self.metrics = {}
        hardware = dict(self.runtime["hardware"])
        if intra_op_threads is not None:
            hardware["intra_op_threads"] = intra_op_threads
        if huge_pages is not None:
            hardware["huge_pages"] = huge_pages
        files = ", ".join(str(self.path / g["file"]) for g in self.runtime["graphs"].values())
        try:
            self.engine = OnnxEngine(self.path, self.runtime, hardware)
        except BuilderError:  # a file the engine names itself (tokenizer, config)
            raise
        except (KeyError, TypeError) as e:
            raise BundleIntegrityError(f"{self.path / 'manifest.json'}: runtime section lacks {e}") from e
        except Exception as e:  # onnxruntime's own refusals (e.g. a graph it cannot read)
            raise BundleIntegrityError(f"{files}: onnxruntime refused to load it: {e}") from e
        self.pipeline = PIPELINES[pipeline](self.engine)

    @property
    def session(self) -> Any:
        return self.engine.session

    @property
    def tokenizer(self) -> Any:
        return self.engine.tokenizer

    @property
    def model_config(self) -> dict[str, Any]:
        return self.engine.model_config

    @property
    def config(self) -> dict[str, Any]:
        """The resolved build configuration (build.yaml)."""
        import yaml

        return yaml.safe_load((self.path / "build.yaml").read_text(encoding="utf-8"))["config"]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.pipeline(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r}, task={self.task!r}, id={self.manifest['bundle_id'][:12]})"


def load(
    path: str | Path,
    *,
    revision: str | None = None,
    intra_op_threads: int | None = None,
    huge_pages: bool | None = None,
) -> Bundle:
    """Load a bundle folder, or a bundle published on the Hugging Face Hub (a repo id), verifying every file
    against its manifest first. intra_op_threads and huge_pages override the bundle's hardware profile (huge_pages:
    collapse a CPU session's weights into 2 MB pages after loading, on Linux; builder/runtime/huge_pages.py)."""
    folder = Path(path).expanduser()
    if not folder.exists():
        if not _looks_like_repo_id(str(path)) or folder.parent.is_dir() and str(folder.parent) != ".":
            raise BuilderError(
                f"{path}: no such folder (and not a Hub repo id like org/name). Give a bundle folder: "
                "the `bundle` line a build prints"
            )
        folder = _download(str(path), revision)
    return Bundle(folder, intra_op_threads=intra_op_threads, huge_pages=huge_pages)


def _looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~"))


def _download(repo_id: str, revision: str | None) -> Path:
    """The bundle's snapshot folder: from the Hub, or from the local Hub cache when the Hub is out of reach."""
    from huggingface_hub import constants, snapshot_download

    offline = constants.HF_HUB_OFFLINE or not hub_reachable(constants.ENDPOINT)
    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=offline))
    except Exception as e:  # offline and not cached, unknown repo or revision
        where = (
            "the Hugging Face Hub is unreachable from here and the local Hub cache does not hold it"
            if offline
            else f"it cannot be fetched from the Hugging Face Hub ({type(e).__name__})"
        )
        raise BuilderError(
            f"{repo_id}{'@' + revision if revision else ''}: not a local folder, and {where}. Check the repo id "
            "and revision, or download the bundle where the Hub is reachable (hf download REPO --local-dir DIR) "
            "and load DIR."
        ) from e


def hub_reachable(endpoint: str, timeout: float = 3.0) -> bool:
    """One quick TCP connection instead of the client's minute of retries."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(endpoint)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False
