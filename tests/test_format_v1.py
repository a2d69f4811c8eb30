"""Bundles of format 1 (one graph, built before graphs had roles) keep loading and answering exactly as they did:
two committed tiny bundles and the outputs the format-1 runtime gave on them (tests/fixtures/v1_golden.json,
written by that runtime when the fixtures were built)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import read_json, run_builder

import builder
from builder.runtime.manifest import runtime_section

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = json.loads((FIXTURES / "v1_golden.json").read_text(encoding="utf-8"))
FE, QA = FIXTURES / "v1-feature-extraction", FIXTURES / "v1-question-answering"


def same(ours, theirs, path=""):  # type: ignore[no-untyped-def]
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and set(ours) == set(theirs), path
        for k in theirs:
            same(ours[k], theirs[k], f"{path}.{k}")
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs), path
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            same(a, b, f"{path}[{i}]")
    elif isinstance(theirs, float):
        assert float(ours) == pytest.approx(theirs, abs=1e-6), path
    else:
        assert ours == theirs, path


@pytest.mark.parametrize("folder", [FE, QA], ids=["feature-extraction", "question-answering"])
def test_format_1_bundles_verify_and_read_as_one_graph(folder: Path) -> None:
    manifest = builder.verify(folder)
    assert manifest["format_version"] == 1 and "graphs" not in manifest["runtime"]
    runtime = runtime_section(manifest)
    graph = runtime["graphs"]["model"]
    assert graph["file"] == "model.onnx" and graph["inputs"] == manifest["runtime"]["inputs"]
    assert (
        graph["outputs"] == manifest["runtime"]["outputs"]
        and runtime["pipeline"] == manifest["runtime"]["task"]
    )
    proc = run_builder("verify", str(folder))
    assert proc.returncode == 0, proc.stderr
    proc = run_builder("info", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert "format        1" in proc.stdout and "graph         model (model.onnx)" in proc.stdout


def test_format_1_feature_extraction_answers_as_before() -> None:
    embed = builder.load(FE)
    assert embed.runtime["options"] == {"pooling": "mean", "normalize": True}
    np.testing.assert_allclose(embed(GOLDEN["texts"]), np.array(GOLDEN["embeddings"]), rtol=0, atol=1e-6)
    for got, expected in zip(
        embed(GOLDEN["texts"][:2], token_features=True), GOLDEN["token_features"], strict=True
    ):
        np.testing.assert_allclose(got, np.array(expected), rtol=0, atol=1e-6)


def test_format_1_question_answering_answers_as_before(tmp_path: Path) -> None:
    qa = builder.load(QA)
    for case, expected in zip(GOLDEN["qa_cases"], GOLDEN["qa"], strict=True):
        same(qa(**case), expected, case["question"])
    lines = tmp_path / "in.jsonl"
    lines.write_text("".join(json.dumps(case) + "\n" for case in GOLDEN["qa_cases"]))
    proc = run_builder("predict", str(QA), "--input", str(lines))
    assert proc.returncode == 0, proc.stderr
    same([json.loads(line) for line in proc.stdout.splitlines()], GOLDEN["qa"])


def test_new_bundles_are_format_2(tiny_models: dict, tmp_path: Path) -> None:
    folder = builder.build(
        overrides=[
            f"model.source={tiny_models[('bert', 'text-classification')]}",
            "task=text-classification",
            "benchmark=none",
            "evaluation=none",
            f"output_dir={tmp_path}",
        ],
        quiet=True,
    )
    manifest = read_json(folder / "manifest.json")
    assert manifest["format_version"] == 2
    graphs = manifest["runtime"]["graphs"]
    assert list(graphs) == ["model"] and graphs["model"]["file"] == "model.onnx"
    assert graphs["model"]["outputs"] == ["logits"] and graphs["model"]["token_outputs"] == []
    assert manifest["runtime"]["pipeline"] == "text-classification"
