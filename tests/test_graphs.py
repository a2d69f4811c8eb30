"""A bundle of several graphs: every stage runs on each graph, the stage cache records each, the manifest names
them by role, and the runtime opens one session per role. Shown with feature extraction split in two graphs
(token states, and the pooled embedding beside them) through a task that says so: what seq2seq and decoder
tasks will do with encoder and decoder graphs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import read_json

import builder
from builder.tasks import TASKS, Graph
from builder.tasks.feature_extraction import FeatureExtraction


class TwoGraphs(FeatureExtraction):
    def graphs(self, config: dict) -> tuple[Graph, ...]:
        hidden, embedding = self.outputs
        return (Graph("model", (hidden,)), Graph("pooled", (embedding,)))

    def forward(self, outputs, inputs, options, graph):  # type: ignore[no-untyped-def]
        hidden, embedding = super().forward(outputs, inputs, options, graph)
        return (hidden,) if graph.role == "model" else (embedding,)


@pytest.fixture()
def two_graph_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TASKS, "feature-extraction", TwoGraphs())


def test_every_stage_runs_on_every_graph(two_graph_task: None, tiny_models: dict, tmp_path: Path) -> None:
    source = Path(shutil.copytree(tiny_models[("bert", "feature-extraction")], tmp_path / "model"))
    overrides = [
        f"model.source={source}",
        "evaluation=none",
        "benchmark=quick",
        f"output_dir={tmp_path / 'out'}",
    ]
    folder = builder.build(overrides=overrides, quiet=True)
    manifest = read_json(folder / "manifest.json")
    graphs = manifest["runtime"]["graphs"]
    assert set(graphs) == {"model", "pooled"}
    assert graphs["model"]["file"] == "model.onnx" and graphs["model"]["outputs"] == ["last_hidden_state"]
    assert graphs["pooled"]["file"] == "pooled.onnx" and graphs["pooled"]["outputs"] == ["sentence_embedding"]
    assert {"model.onnx", "pooled.onnx"} <= set(manifest["files"])

    metrics = read_json(folder / "metrics.json")
    assert set(metrics["export"]["graphs"]) == set(metrics["optimize"]["graphs"]) == {"model", "pooled"}
    for path in (folder / "model.onnx", folder / "pooled.onnx"):  # optimized and quantized, each
        ops = {n.op_type for n in onnx.load(str(path)).graph.node}
        assert "SkipLayerNormalization" in ops and ops & {
            "DynamicQuantizeMatMul",
            "MatMulInteger",
            "QAttention",
        }
    assert set(metrics["fidelity"]["outputs"]) == {"model.last_hidden_state", "pooled.sentence_embedding"}
    assert metrics["fidelity"]["passed"] and metrics["benchmark"]["measured"]

    bundle = builder.load(folder)
    assert set(bundle.engine.sessions) == {"model", "pooled"}
    encodings = bundle.tokenizer.encode(["hello world", "a second text"])
    (hidden,) = bundle.engine.infer(encodings, ["last_hidden_state"], graph="model")
    (embedding,) = bundle.engine.infer(encodings, ["sentence_embedding"], graph="pooled")
    for h, e in zip(hidden, embedding, strict=True):  # the pooled graph pools what the model graph computes
        mean = h.mean(axis=0)
        np.testing.assert_allclose(e, mean / np.linalg.norm(mean), atol=0.05)

    first = {name: (folder / name).read_bytes() for name in ("model.onnx", "pooled.onnx")}
    again = builder.build(overrides=overrides, quiet=True)  # the cache holds both graphs of each stage
    stages = read_json(again / "metrics.json")["stages"]
    assert [stages[s]["status"] for s in ("export", "optimize", "quantize")] == ["reused"] * 3
    assert {name: (again / name).read_bytes() for name in first} == first
