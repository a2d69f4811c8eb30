from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n 2`: each worker's builds share a host lock with that worker's builds only, so one worker's quick
    # benchmark stages do not wait for the other's exports (the tests assert no timings; a sweep's jobs all run
    # in one worker and still time alone among themselves)
    import tempfile

    os.environ.setdefault(
        "BUILDER_HOST_LOCK_DIR",
        tempfile.mkdtemp(prefix=f"builder-locks-{os.environ['PYTEST_XDIST_WORKER']}-"),
    )

import warm_cli  # noqa: E402
from tiny_models import DECODERS, HEADS, SEQ2SEQ, make_decoder, make_model, make_seq2seq  # noqa: E402

from builder.tasks import tasks_of  # noqa: E402

ARCHITECTURES = ("bert", "roberta", "distilbert")  # tested against transformers' pipelines
FAMILIES = ("deberta-v2", "mpnet", "modernbert")  # DeBERTa-v3, all-mpnet-base-v2, ModernBERT
TASKS = tuple(HEADS)
BUILDER = Path(sys.executable).with_name("builder")


def slow_beyond(values: Any, representatives: Any) -> list:
    """Parameters for a test matrix: the representatives run in the default suite, every other value is marked
    `slow` (`.ci/run` runs them all)."""
    keep = set(representatives)
    return [v if v in keep else pytest.param(v, marks=pytest.mark.slow) for v in values]


def selected(request: pytest.FixtureRequest, key: Any) -> list:
    """What the tests selected in this run need from a module fixture that builds a matrix: `key(item)` of every
    selected test of the fixture's module that uses it (None: it needs nothing), in collection order. A module
    fixture builds these only, so deselecting slow cases also skips their builds."""
    found: list = []
    for item in request.session.items:
        if item.module is request.module and request.fixturename in getattr(item, "fixturenames", ()):
            wanted = key(item)
            if wanted is not None and wanted not in found:
                found.append(wanted)
    return found


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Every (architecture, task) pair as a saved tiny random model, built once per session."""
    root = tmp_path_factory.mktemp("tiny-models")
    return {
        (arch, task): make_model(root, arch, task)
        for arch in ARCHITECTURES + FAMILIES
        for task in TASKS
        if task in tasks_of(arch)
    }


@pytest.fixture(scope="session")
def tiny_decoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every decoder architecture as a tiny random causal language model with a byte-level BPE tokenizer."""
    root = tmp_path_factory.mktemp("tiny-decoders")
    return {arch: make_decoder(root, arch) for arch in DECODERS}


@pytest.fixture(scope="session")
def tiny_seq2seq(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every encoder-decoder architecture as a tiny model trained briefly on the corpus (its words reversed)."""
    root = tmp_path_factory.mktemp("tiny-seq2seq")
    return {arch: make_seq2seq(root, arch) for arch in SEQ2SEQ}


@pytest.fixture(scope="session")
def peer_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the peers users load bundles with (Optimum, sentence-transformers, transformers 4.x, the
    CPU torch they need), at the versions the model card names; onnxruntime at ours."""
    import onnxruntime

    from builder.make.peers import PEER_VERSIONS

    venv = tmp_path_factory.mktemp("peer-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    wanted = [f"{name}=={version}" for name, version in PEER_VERSIONS.items()]
    for step in (["torch==2.13.0"], [*wanted, f"onnxruntime=={onnxruntime.__version__}"]):  # CPU torch first
        proc = subprocess.run([*pip, *step], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return venv / "bin" / "python"


@pytest.fixture(scope="session")
def genai_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with onnxruntime-genai at the version the model card names, beside our onnxruntime (genai's
    own dependencies are not installed: it runs on the onnxruntime it finds)."""
    import onnxruntime

    from builder.make.peers import GENAI_VERSION

    venv = tmp_path_factory.mktemp("genai-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    for step in (
        [f"onnxruntime=={onnxruntime.__version__}", "numpy"],
        ["--no-deps", f"onnxruntime-genai=={GENAI_VERSION}"],
    ):
        proc = subprocess.run([*pip, *step], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return venv / "bin" / "python"


def run_peer(python: Path, code: str, request: Any) -> Any:
    """Run code in the peer virtualenv with `request` as JSON on stdin; its last stdout line, as JSON."""
    proc = subprocess.run(
        [str(python), "-c", code],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def build_fp16_for_cuda(source: Path, task: str, out: Path) -> Path:
    """hardware=cuda optimization=O4 (fp16), nothing evaluated or timed: on this CPU host the graphs still run."""
    import builder

    return builder.build(
        overrides=[f"model.source={source}", f"task={task}", "hardware=cuda", "optimization=O4",
                   "quantization=none", "evaluation=none", "benchmark=none", f"output_dir={out}"],
        quiet=True,
    )  # fmt: skip


def float_types(graph: Any) -> tuple[set[int], dict[str, int]]:
    """The element types of a graph's float initializers, and its float inputs and outputs by name (onnx.TensorProto
    codes)."""
    import onnx

    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    io = {v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.output)}
    return (
        {t.data_type for t in graph.initializer if t.data_type in floats},
        {name: t for name, t in io.items() if t in floats},
    )


def is_cache(name: str) -> bool:
    """A key/value cache input or output, by the names decoder and sequence-to-sequence graphs give them."""
    return name.startswith(("past_key_values.", "present."))


def run_builder(
    *args: str, env: dict[str, str] | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """The real `builder` console command in a fresh process: forked from a warm server that has imported the
    build-time packages (`warm_cli`), or started cold (an environment's first use, BUILDER_TESTS_COLD_CLI=1)."""
    full_env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None) if "HYDRA_FULL_ERROR" not in (env or {}) else None
    if warm_cli.usable(full_env):
        return warm_cli.run([str(BUILDER), *args], full_env, timeout)
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


BUILD_TIME_PACKAGES = ("torch", "transformers", "hydra", "datasets", "omegaconf", "onnx", "evaluate")


def run_without_build_packages(code: str) -> None:
    """Run `code` in a fresh interpreter, then assert no build-time package was imported by it."""
    check = f"\nheavy = [m for m in {BUILD_TIME_PACKAGES!r} if m in sys.modules]\nassert not heavy, heavy\n"
    result = subprocess.run(
        [sys.executable, "-c", "import sys\n" + code + check], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def same(ours: Any, theirs: Any, path: str = "") -> None:
    """Equal structures; floats within 1e-4; numpy scalars compared as numbers."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and set(ours) == set(theirs), f"{path}: {ours} vs {theirs}"
        for k in theirs:
            same(ours[k], theirs[k], f"{path}.{k}")
    elif isinstance(theirs, (list, tuple)):
        assert isinstance(ours, (list, tuple)) and len(ours) == len(theirs), f"{path}: {ours} vs {theirs}"
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            same(a, b, f"{path}[{i}]")
    elif isinstance(theirs, (float, np.floating)):
        assert abs(float(ours) - float(theirs)) <= 1e-4, f"{path}: {ours} vs {theirs}"
    else:
        assert ours == (theirs.item() if hasattr(theirs, "item") else theirs), (
            f"{path}: {ours!r} vs {theirs!r}"
        )


class RecordingSession:
    """Passes every call to the real onnxruntime session and records the batch sizes it was given."""

    def __init__(self, session: Any):
        self.session, self.batches = session, []

    def run(self, outputs: Any, feeds: dict) -> Any:
        self.batches.append(len(feeds["input_ids"]))
        return self.session.run(outputs, feeds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


class Lazy(dict):
    """A dict whose values are made on first access."""

    def __init__(self, make: Any, keys: tuple[str, ...]):
        super().__init__()
        self.make, self.known = make, keys

    def __missing__(self, key: str) -> Any:
        if key not in self.known:
            raise KeyError(key)
        self[key] = self.make(key)
        return self[key]


@pytest.fixture(scope="session")
def bert_bundles(tiny_models: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One fp32 bundle of the tiny BERT per encoder task (no evaluation or benchmark), each built once per session
    when first used."""
    import builder

    out = tmp_path_factory.mktemp("bert-bundles")

    def make(task: str) -> Path:
        overrides = [f"model.source={tiny_models[('bert', task)]}", f"task={task}", "quantization=none",
                     "evaluation=none", "benchmark=none", f"output_dir={out}"]  # fmt: skip
        return builder.build(overrides=overrides, quiet=True)

    return Lazy(
        make, ("feature-extraction", "text-classification", "token-classification", "question-answering")
    )
