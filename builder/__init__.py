"""builder: config-driven builds of optimized, quantized ONNX Runtime bundles.

Importing builder loads nothing heavy: build-time packages (torch, transformers, hydra) are imported only
when `build` is called, so apps that only load bundles never need them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.version import __version__

__all__ = ["__version__", "build", "load", "verify"]


def build(cfg: Any = None, *, overrides: list[str] | tuple[str, ...] = (), quiet: bool = False) -> Path:
    """Build a bundle and return its folder.

    `cfg` is a composed config (from `builder.config.compose_config`) or None to compose one from
    `overrides`, exactly as the command line would: `builder.build(overrides=["task=text-classification"])`.
    """
    from builder.config import compose_config
    from builder.make.driver import build_bundle

    if cfg is None:
        cfg = compose_config(overrides)
    return build_bundle(cfg, overrides=overrides, quiet=quiet)


def load(
    path: str | Path,
    *,
    revision: str | None = None,
    intra_op_threads: int | None = None,
    huge_pages: bool | None = None,
) -> Any:
    """Load a bundle folder or Hub repo id (manifest verified first); `bundle(...)` runs its task pipeline.
    intra_op_threads and huge_pages override the bundle's hardware profile."""
    from builder.runtime.loader import load as _load

    return _load(path, revision=revision, intra_op_threads=intra_op_threads, huge_pages=huge_pages)


def verify(path: str | Path) -> dict[str, Any]:
    """Check every file of a bundle against its manifest; return the manifest or raise BundleIntegrityError."""
    from builder.runtime.manifest import verify as _verify

    return _verify(path)
