"""Bundles load in the libraries users already have, with the same answers as builder's runtime: Optimum's
ORTModelFor* classes in transformers pipelines, sentence-transformers' ONNX backend with the bundle's own
length limit and pooling, and onnxruntime-genai's generation loop on decoder bundles. The peers run in their own virtualenv (Optimum needs transformers < 4.58), at the
versions the model card names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import run_peer, same
from tiny_models import DECODERS, MAX_POSITIONS, SEQ2SEQ, sentence_transformers_folder

import builder
from builder.make.peers import GENAI_VERSION, PEER_VERSIONS
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


GENAI = """
import json, sys
import numpy as np
import onnxruntime_genai as og
request = json.load(sys.stdin)
model = og.Model(request["folder"])
rows = []
for prompt in request["prompts"]:
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=len(prompt) + request["new"])
    generator = og.Generator(model, params)
    generator.append_tokens(np.array([prompt], dtype=np.int32))
    while not generator.is_done():
        generator.generate_next_token()
    rows.append([int(t) for t in generator.get_sequence(0)][len(prompt):])
print(json.dumps(rows))
"""

OPTIMUM_GENERATE = """
import json, sys
import torch
from optimum.onnxruntime import ORTModelForCausalLM
request = json.load(sys.stdin)
model = ORTModelForCausalLM.from_pretrained(request["folder"])
prompts, pad, new = request["prompts"], request["pad"], request["new"]
longest = max(len(p) for p in prompts)
ids = torch.tensor([[pad] * (longest - len(p)) + p for p in prompts])  # one left-padded batch
mask = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in prompts])
out = model.generate(ids, attention_mask=mask, max_new_tokens=new, do_sample=False, pad_token_id=pad)
alone = [model.generate(torch.tensor([p]), max_new_tokens=new, do_sample=False, pad_token_id=pad)[0, len(p):]
         for p in prompts]
print(json.dumps({"batch": out[:, longest:].tolist(), "alone": [a.tolist() for a in alone]}))
"""

# Optimum 0.1.0 sizes the empty first-step cache from the config its own way, which these graphs do not have, so
# its first step fails on any such graph, ours included: Qwen3 sets head_dim apart from hidden_size / heads
# (Qwen3-0.6B: 128, not 64); for Phi-3 it takes num_attention_heads as the key/value heads, wrong under
# grouped-query attention (Phi-3-medium: 40 heads, 10 key/value heads; our tiny Phi-3 has 4 and 2).
OPTIMUM_CACHE_MISSIZED = ("qwen3", "phi3")

PROMPTS = ["Once upon a time", "The quick brown fox jumps over", "Café 日本語 🙂"]


def _until_eos(row: list[int], eos: list[int]) -> list[int]:
    """generate()'s row as builder returns it: up to the first eos, included (the rest is padding)."""
    for i, token in enumerate(row):
        if token in eos:
            return row[: i + 1]
    return row


@pytest.mark.slow
@pytest.mark.parametrize("quantization", ["none", "int4"])
@pytest.mark.parametrize("arch", DECODERS)
def test_genai_and_optimum_generate_as_builder(
    genai_python: Path,
    peer_python: Path,
    tiny_decoders: dict,
    tmp_path: Path,
    arch: str,
    quantization: str,
) -> None:
    """A decoder bundle in onnxruntime-genai (`og.Model(bundle)`, its own loop, from genai_config.json) and in
    Optimum's ORTModelForCausalLM `generate` (prompts alone and as one left-padded batch): greedy tokens equal to
    builder's for each prompt. The decoders are briefly trained, so int4 does not flip near-tied tokens."""
    folder = builder.build(
        overrides=[
            f"model.source={tiny_decoders[arch]}",
            "task=text-generation",
            f"quantization={quantization}",
            "evaluation=none",
            "benchmark=none",
            f"output_dir={tmp_path}",
        ],  # fmt: skip
        quiet=True,
    )
    gen = builder.load(folder).pipeline
    prompts = [gen._encode(p, False) for p in PROMPTS]
    greedy = {**gen.settings({"do_sample": False}), "max_new_tokens": 12}
    ours = [gen.generate_ids([p], greedy)[0] for p in prompts]
    request = {"folder": str(folder), "prompts": prompts, "new": 12, "pad": gen.pad}
    assert [_until_eos(r, gen.eos) for r in run_peer(genai_python, GENAI, request)] == ours
    if arch in OPTIMUM_CACHE_MISSIZED:
        with pytest.raises(AssertionError, match="Got invalid dimensions for input: past_key_values"):
            run_peer(peer_python, OPTIMUM_GENERATE, request)
        return
    optimum = run_peer(peer_python, OPTIMUM_GENERATE, request)
    assert [_until_eos(r, gen.eos) for r in optimum["alone"]] == ours
    assert [_until_eos(r, gen.eos) for r in optimum["batch"]] == ours


OPTIMUM_SEQ2SEQ = """
import json, sys
import torch
from optimum.onnxruntime import ORTModelForSeq2SeqLM
request = json.load(sys.stdin)
model = ORTModelForSeq2SeqLM.from_pretrained(request["folder"])
rows = []
for ids, settings in request["calls"]:
    out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), **settings)
    rows.append([row[1:].tolist() for row in out])
print(json.dumps(rows))
"""


@pytest.mark.slow
@pytest.mark.parametrize("quantization", ["none", "dynamic"])
@pytest.mark.parametrize("arch", SEQ2SEQ)
def test_optimum_seq2seq_generates_as_builder(
    peer_python: Path, tiny_seq2seq: dict, tmp_path: Path, arch: str, quantization: str
) -> None:
    """A sequence-to-sequence bundle in Optimum's ORTModelForSeq2SeqLM (its three files: encoder_model,
    decoder_model, decoder_with_past_model): greedy and beam search give builder's tokens."""
    folder = builder.build(
        overrides=[f"model.source={tiny_seq2seq[arch]}", "task=text2text-generation", f"quantization={quantization}",
                   "evaluation=none", "benchmark=none", f"output_dir={tmp_path}"],
        quiet=True,
    )  # fmt: skip
    gen = builder.load(folder).pipeline
    texts = [
        "The quick brown fox jumps over the lazy dog.",
        "Paris is the capital and largest city of France.",
    ]
    searches = [{"num_beams": 1, "max_new_tokens": 10}, {"num_beams": 3, "max_new_tokens": 10}]
    calls = [(gen.encode([t])[0], s) for t in texts for s in searches]
    optimum = run_peer(peer_python, OPTIMUM_SEQ2SEQ, {"folder": str(folder), "calls": calls})
    for (ids, settings), theirs in zip(calls, optimum, strict=True):
        ours = gen.generate_ids([ids], gen.settings(settings), encoded=True)
        assert [_until_eos(r, gen.eos) for r in theirs] == ours, (texts, settings)


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


def test_a_decoder_bundle_describes_itself_to_genai_and_optimum(tiny_decoders: dict, tmp_path: Path) -> None:
    """genai_config.json names the graph's inputs, outputs and cache layout as the bundle's manifest has them,
    with the generation defaults of the source's generation_config.json; the card shows both peers."""
    import json

    folder = builder.build(
        overrides=[
            f"model.source={tiny_decoders['qwen2']}",
            "task=text-generation",
            "quantization=none",
            "evaluation=none",
            "benchmark=none",
            f"output_dir={tmp_path}",
        ],  # fmt: skip
        quiet=True,
    )
    manifest = builder.verify(folder)
    assert "genai_config.json" in manifest["files"]
    genai = json.loads((folder / "genai_config.json").read_text())
    graph = manifest["runtime"]["graphs"]["model"]
    layout = manifest["runtime"]["options"]
    decoder = genai["model"]["decoder"]
    assert decoder["filename"] == graph["file"]
    names = decoder["inputs"] | decoder["outputs"]
    layers = decoder["num_hidden_layers"]
    assert layers == layout["num_layers"] and decoder["num_key_value_heads"] == layout["num_kv_heads"]
    expanded = {v % i if "%d" in v else v for v in names.values() for i in range(layers)}
    assert expanded == set(graph["inputs"]) | set(graph["outputs"])
    assert decoder["head_size"] == layout["head_dim"]
    assert decoder["num_key_value_heads"] < decoder["num_attention_heads"]  # grouped-query attention
    source = json.loads((tiny_decoders["qwen2"] / "generation_config.json").read_text())
    assert genai["model"]["eos_token_id"] == source["eos_token_id"]
    assert genai["model"]["context_length"] == manifest["runtime"]["max_length"]
    assert genai["search"]["past_present_share_buffer"] is False  # present = past + the new token's entries
    assert decoder["session_options"]["provider_options"] == []  # genai's CPU provider
    card = (folder / "README.md").read_text()
    assert "ORTModelForCausalLM.from_pretrained(" in card and "og.Model(" in card
    assert f"onnxruntime-genai=={GENAI_VERSION}" in card
