from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import HEADS, make_model  # noqa: E402

ARCHITECTURES = ("bert", "roberta", "distilbert")
TASKS = tuple(HEADS)
BUILDER = Path(sys.executable).with_name("builder")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Every (architecture, task) pair as a saved tiny random model, built once per session."""
    root = tmp_path_factory.mktemp("tiny-models")
    return {(arch, task): make_model(root, arch, task) for arch in ARCHITECTURES for task in TASKS}


def run_builder(
    *args: str, env: dict[str, str] | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """The real `builder` console command in a fresh process."""
    full_env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None) if "HYDRA_FULL_ERROR" not in (env or {}) else None
    exe = [str(BUILDER)] if BUILDER.exists() else [sys.executable, "-m", "builder.cli"]
    return subprocess.run([*exe, *args], capture_output=True, text=True, env=full_env, timeout=timeout)


def bundles_in(root: Path) -> list[Path]:
    return (
        sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if root.exists()
        else []
    )


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


BUILD_TIME_PACKAGES = ("torch", "transformers", "hydra", "datasets", "omegaconf")


def run_without_build_packages(code: str) -> None:
    """Run `code` in a fresh interpreter, then assert no build-time package was imported by it."""
    check = f"\nheavy = [m for m in {BUILD_TIME_PACKAGES!r} if m in sys.modules]\nassert not heavy, heavy\n"
    result = subprocess.run(
        [sys.executable, "-c", "import sys\n" + code + check], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
