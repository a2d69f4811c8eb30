"""Real builds through the real CLI: every task on every architecture (tiny BERT, RoBERTa, DistilBERT, DeBERTa-v3,
MPNet, ModernBERT), fp32 and int8. The default suite builds the representatives (every task on BERT, feature
extraction on every architecture); `.ci/run` builds the whole matrix."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import yaml
from conftest import ARCHITECTURES, FAMILIES, TASKS, bundles_in, read_json, run_builder, selected

from builder.runtime.manifest import verify
from builder.tasks import tasks_of

QUICK = ["benchmark=quick", "fidelity.min_agreement=0.5"]  # tiny random models: near-tied logits may flip


PAIRS = [(a, t) for a in ARCHITECTURES + FAMILIES for t in TASKS if t in tasks_of(a)]
REPRESENTATIVES = {("bert", t) for t in tasks_of("bert")} | {(a, "feature-extraction") for a, _ in PAIRS}


def _pair(item: pytest.Item) -> tuple[str, str]:
    spec = getattr(item, "callspec", None)
    if spec is None:  # a test over the whole matrix: two bundles of one representative at least
        return ("bert", "feature-extraction")
    return (spec.params["arch"], spec.params["task"])


def _cases(pairs: list[tuple[str, str]], *quantizations: str) -> list:
    """The matrix's test cases, those outside the representatives marked slow."""
    return [
        pytest.param(*(p + q if q else p), marks=() if p in REPRESENTATIVES else pytest.mark.slow)
        for p in pairs
        for q in ([(m,) for m in quantizations] or [()])
    ]


@pytest.fixture(scope="module")
def matrix(
    tiny_models: dict, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> dict[tuple[str, str, str], Path]:
    """(arch, task, quantization) -> bundle folder; one `builder -m` process per (arch, task) the selected tests
    use."""
    root = tmp_path_factory.mktemp("matrix")

    def build(key: tuple[str, str]) -> tuple[tuple[str, str], object, Path]:
        arch, task = key
        out = root / f"{arch}-{task}"
        proc = run_builder(
            "-m",
            f"model.source={tiny_models[key]}",
            f"task={task}",
            "quantization=none,dynamic",
            f"output_dir={out}",
            *QUICK,
        )
        return key, proc, out

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(build, selected(request, _pair)))
    found = {}
    for (arch, task), proc, out in results:
        assert proc.returncode == 0, f"{arch} {task}:\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr
        for folder in bundles_in(out):
            method = read_json(folder / "manifest.json")["runtime"]["quantization"]["method"]
            found[(arch, task, method)] = folder
        for method in ("none", "dynamic"):  # a rejected sweep job still exits 0 (issue 15): say which one
            assert (arch, task, method) in found, f"{arch} {task} {method}: no bundle\n{proc.stderr[-3000:]}"
    return found


@pytest.mark.parametrize(("arch", "task", "quant"), _cases(PAIRS, "none", "dynamic"))
def test_bundle_is_complete_verified_and_faithful(matrix: dict, arch: str, task: str, quant: str) -> None:
    folder = matrix[(arch, task, quant)]
    manifest = verify(folder)
    for name in ("model.onnx", "tokenizer.json", "config.json", "build.yaml", "metrics.json", "README.md"):
        assert name in manifest["files"], name
    assert folder.name.endswith(manifest["bundle_id"][:8])
    metrics = read_json(folder / "metrics.json")

    assert metrics["export"]["max_abs_diff"] < 1e-4
    fused = metrics["optimize"]["fused_operators"]
    if arch in ARCHITECTURES:  # BERT attention: ONNX Runtime fuses it
        assert metrics["optimize"]["attention_fused"], metrics["optimize"]
    else:  # disentangled (DeBERTa), position-biased (MPNet), rotary local/global (ModernBERT): not fused, and said so
        assert not metrics["optimize"]["attention_fused"] and "Attention" not in fused, fused
    assert fused["SkipLayerNormalization"] >= 2

    fidelity = metrics["fidelity"]
    assert fidelity["measured"] and fidelity["passed"]
    for output, m in fidelity["outputs"].items():
        if quant == "none":  # fp32: fused graph equals PyTorch up to float rounding
            assert m["max_abs_diff"] < 1e-4, output
            assert m["cosine_min"] > 0.9999, output
            assert m.get("argmax_agreement", 1.0) >= 0.99, output
        else:
            assert m["cosine_mean"] > 0.99, output
    if quant == "dynamic":
        assert metrics["quantize"]["quantized_nodes"] > 0
        # DeBERTa: export folds each layer's projections of the relative-position table into fp32 constants,
        # a large share of a tiny model (about 5% of DeBERTa-v3-base, see docs/benchmarks.md).
        assert metrics["size"]["ratio_to_fp32"] < (0.75 if arch == "deberta-v2" else 0.6)
        ops = {n.op_type for n in onnx.load(str(folder / "model.onnx")).graph.node}
        assert ops & {"QAttention", "DynamicQuantizeMatMul", "MatMulInteger"}
    else:
        assert metrics["size"]["ratio_to_fp32"] <= 1.01  # fusion may drop shape subgraphs

    evaluation = metrics[
        "evaluation"
    ]  # the shipped set for the task, baseline and bundle on the same examples
    assert evaluation["dataset"] == "builtin" and evaluation["examples"] >= 40
    primary = evaluation["metric"]
    assert set(evaluation["baseline"]) == set(evaluation["bundle"])
    if quant == "none":  # the same predictions as PyTorch: the same score
        assert evaluation["bundle"][primary] == pytest.approx(evaluation["baseline"][primary], abs=1e-6)
    if evaluation["baseline"][primary]:
        ratio = 100 * evaluation["bundle"][primary] / evaluation["baseline"][primary]
        assert evaluation["retention_percent"] == pytest.approx(ratio)

    bench = metrics["benchmark"]
    assert bench["measured"] and bench["results"][0]["bundle"]["p50_ms"] > 0
    assert bench["results"][0]["pytorch"]["p50_ms"] > 0
    assert bench["results"][0]["bundle"]["calls"] == bench["iterations"]
    assert bench["results"][0]["pytorch"]["calls"] == bench["baseline_iterations"]
    assert metrics["host"]["cpu"] and metrics["host"]["versions"]["onnxruntime"] == ort.__version__

    record = yaml.safe_load((folder / "build.yaml").read_text())
    assert record["config"]["task"]["name"] == task
    assert f"task={task}" in record["overrides"]
    assert record["choices"]["quantization"] == quant
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "model-index" in card and f"pipeline_tag: {task}" in card
    assert "library_name: onnx" in card


@pytest.mark.parametrize(
    ("arch", "task"), _cases([p for p in PAIRS if p[1] in ("feature-extraction", "question-answering")])
)
def test_fused_graph_matches_pytorch_with_left_padding(
    matrix: dict, tiny_models: dict, arch: str, task: str
) -> None:
    """Fused attention with the raw mask stays exact when batches are padded on the left."""
    import torch
    import transformers
    from tiny_models import HEADS

    folder = matrix[(arch, task, "none")]
    session = ort.InferenceSession(str(folder / "model.onnx"))
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model = getattr(transformers, HEADS[task]).from_pretrained(tiny_models[(arch, task)]).eval()
    names = [i.name for i in session.get_inputs()]
    tok.padding_side = "left"
    texts = ["short", "a somewhat longer text with several more tokens in it"]
    enc = (
        tok(texts, texts[::-1], padding=True, return_tensors="np")
        if task == "question-answering"
        else tok(texts, padding=True, return_tensors="np")
    )
    feeds = {n: enc[n].astype(np.int64) for n in names}
    got = session.run(None, feeds)[0]
    with torch.no_grad():
        out = model(**{n: torch.from_numpy(v) for n, v in feeds.items()})
    expected = (out.last_hidden_state if task == "feature-extraction" else out.start_logits).numpy()
    mask = feeds["attention_mask"].astype(bool)
    np.testing.assert_allclose(got[mask], expected[mask], atol=1e-4)


def test_rebuild_gives_same_id_and_bytes(tiny_models: dict, tmp_path: Path) -> None:
    model = tiny_models[("bert", "text-classification")]
    ids, blobs = [], []
    for run in ("a", "b"):
        out = tmp_path / run
        proc = run_builder(
            f"model.source={model}",
            "task=text-classification",
            f"output_dir={out}",
            "benchmark=none",
            *QUICK[1:],
        )
        assert proc.returncode == 0, proc.stderr
        (folder,) = bundles_in(out)
        ids.append(read_json(folder / "manifest.json")["bundle_id"])
        blobs.append((folder / "model.onnx").read_bytes())
    assert ids[0] == ids[1]
    assert blobs[0] == blobs[1]


def test_a_changed_setting_changes_the_id(matrix: dict) -> None:
    ids = {read_json(f / "manifest.json")["bundle_id"] for f in matrix.values()}
    assert len(matrix) >= 2 and len(ids) == len(matrix)
