"""Bundles load in the libraries users already have, with the same answers as builder's runtime: Optimum's
ORTModelFor* classes in transformers pipelines, and sentence-transformers' ONNX backend with the bundle's own
length limit and pooling. The peers run in their own virtualenv (Optimum needs transformers < 4.58), at the
versions the model card names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import run_peer, same
from tiny_models import MAX_POSITIONS, sentence_transformers_folder

import builder
from builder.make.peers import PEER_VERSIONS
from builder.tasks import TASKS

TEXT = "George Washington visited Apple Inc. in Cupertino, California."
TEXTS = [TEXT, "I absolutely loved this film; the acting was superb!"]
LONG = " ".join(["A long text that goes well past the model's maximum length, and on."] * 40)

SENTENCE_TRANSFORMERS = """
import json, sys
from sentence_transformers import SentenceTransformer
request = json.load(sys.stdin)
model = SentenceTransformer(request["folder"], backend="onnx", device="cpu")
print(json.dumps({"max_seq_length": model.max_seq_length, "modules": [type(m).__name__ for m in model],
                  "embeddings": model.encode(request["texts"]).tolist()}))
"""

OPTIMUM = """
import json, sys
import optimum.onnxruntime
from transformers import AutoTokenizer, pipeline
request = json.load(sys.stdin)
model = getattr(optimum.onnxruntime, request["class"]).from_pretrained(request["folder"])
pipe = pipeline(request["task"], model=model, tokenizer=AutoTokenizer.from_pretrained(request["folder"]))
print(json.dumps([pipe(*args, **kwargs) for args, kwargs in request["calls"]], default=lambda x: x.item()))
"""

# Per task: the calls (positional args, keyword args) both pipelines answer.
CALLS = {
    "text-classification": [
        ([TEXTS], {}),
        ([TEXTS], {"top_k": None}),
        ([{"text": TEXTS[0], "text_pair": TEXTS[1]}], {}),
    ],
    "token-classification": [([TEXT], {}), ([TEXTS], {"aggregation_strategy": "simple"})],
    "question-answering": [
        ([], {"question": "Who visited Apple?", "context": TEXT}),
        ([], {"question": "Where?", "context": LONG + " " + TEXT, "top_k": 2}),
    ],
    "zero-shot-classification": [
        ([TEXT, ["politics", "technology", "travel"]], {}),
        ([TEXTS, ["politics", "technology"]], {"multi_label": True}),
    ],
}


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.slow
@pytest.mark.parametrize("quantization", ["none", "dynamic"])
@pytest.mark.parametrize("task", sorted(CALLS))
def test_optimum_pipelines_answer_as_builder(
    peer_python: Path, tiny_models: dict, tmp_path: Path, task: str, quantization: str
) -> None:
    """A bundle in Optimum's ORTModelFor* and a transformers 4.57 pipeline: the same labels, spans and scores
    (within 1e-4) as builder.load on the same calls. Dynamic int8 scales activations by the whole batch's range,
    so its scores move (~1e-3) with what a text is batched with: its calls run one window at a time on both sides,
    as transformers' pipelines do by default."""
    folder = builder.build(
        overrides=[
            f"model.source={tiny_models[('bert', task)]}",
            f"task={task}",
            f"quantization={quantization}",
            "evaluation=none",
            "benchmark=none",
            f"output_dir={tmp_path}",
        ],  # fmt: skip
        quiet=True,
    )
    one_by_one = {"batch_size": 1} if quantization == "dynamic" else {}
    calls = [(args, {**kwargs, **one_by_one}) for args, kwargs in CALLS[task]]
    request = {"folder": str(folder), "class": TASKS[task].optimum_class, "task": task, "calls": calls}
    theirs = run_peer(peer_python, OPTIMUM, request)
    ours = builder.load(folder)
    for (args, kwargs), answer in zip(calls, theirs, strict=True):
        same(ours(*args, **kwargs), answer, f"{task} {kwargs}")


@pytest.mark.slow
@pytest.mark.parametrize(
    "pooling,normalize,quantization",
    [("auto", True, "dynamic"), ("max", False, "none"), ("mean", True, "none")],
)
def test_sentence_transformers_loads_the_bundle(
    peer_python: Path, tiny_models: dict, tmp_path: Path, pooling: str, normalize: bool, quantization: str
) -> None:
    """SentenceTransformer(bundle, backend="onnx") truncates where the bundle does (the source's max_seq_length
    when it has one), pools and normalizes as the bundle does: cosine >= 0.9999 on texts past that length."""
    source = tiny_models[("bert", "feature-extraction")]
    if pooling == "auto":  # the source's own sentence-transformers config: CLS pooling, 32 tokens
        source = sentence_transformers_folder(source, tmp_path / "st", "cls", max_seq_length=32)
    folder = builder.build(
        overrides=[
            f"model.source={source}",
            f"task.pooling={pooling}",
            f"task.normalize={normalize}",
            f"quantization={quantization}",
            "evaluation=none",
            "benchmark=none",
            f"output_dir={tmp_path / 'out'}",
        ],  # fmt: skip
        quiet=True,
    )
    embed = builder.load(folder)
    assert embed.runtime["max_length"] == (32 if pooling == "auto" else MAX_POSITIONS)
    texts = [LONG, TEXT, LONG[: len(LONG) // 3]]
    theirs = run_peer(peer_python, SENTENCE_TRANSFORMERS, {"folder": str(folder), "texts": texts})
    assert theirs["max_seq_length"] == embed.runtime["max_length"]
    assert theirs["modules"] == ["Transformer", "Pooling", *(["Normalize"] if normalize else [])]
    ours, st = np.asarray(embed(texts)), np.asarray(theirs["embeddings"])
    assert cosines(ours, st).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(st, axis=1), np.linalg.norm(ours, axis=1), rtol=1e-4)


def test_model_card_names_the_peer_versions(bert_bundles: dict) -> None:
    """The card's usage snippets name the versions tests run and a task's own Optimum class; an embedding bundle
    lists sentence-transformers' files in its manifest."""
    for task in ("feature-extraction", "question-answering"):
        card = (bert_bundles[task] / "README.md").read_text()
        for name, version in PEER_VERSIONS.items():
            if task != "feature-extraction" and name == "sentence-transformers":
                assert name not in card
                continue
            assert f'"{name}=={version}"' in card, (task, name)
    assert (
        "ORTModelForQuestionAnswering.from_pretrained("
        in (bert_bundles["question-answering"] / "README.md").read_text()
    )
    assert 'backend="onnx"' in (bert_bundles["feature-extraction"] / "README.md").read_text()
    files = builder.verify(bert_bundles["feature-extraction"])["files"]
    assert {"modules.json", "sentence_bert_config.json", "1_Pooling/config.json"} <= set(files)
