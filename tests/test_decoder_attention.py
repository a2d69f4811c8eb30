"""Fused decoder attention (builder.tasks.decoder_attention): one GroupQueryAttention per layer, what transformers
computes token for token, a sliding window included; export.attention chooses it, and says why when it cannot."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import transformers
from conftest import read_json, run_builder
from tiny_models import decoder_config, decoder_tokenizer

import builder
from builder.runtime.kv_cache import CopiedCache, SharedCache

PROMPTS = ["Hello, my name is George and", "The quick brown fox jumps over the lazy dog because", "A"]
GREEDY = {"do_sample": False, "max_new_tokens": 12}


def _decoder(root: Path, model_type: str, name: str, **config: object) -> Path:
    tok = decoder_tokenizer(bos=True)
    settings = decoder_config(model_type, tok)
    for key, value in config.items():
        setattr(settings, key, value)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(settings).eval()
    folder = root / name
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _build(source: Path, out: Path, *extra: str) -> Path:
    return builder.build(
        overrides=[
            f"model.source={source}",
            "task=text-generation",
            "quantization=none",
            "evaluation=none",
            "benchmark=none",
            f"output_dir={out}",
            *extra,
        ],
        quiet=True,
    )


def _generate(folder: Path, prompt: str) -> list[int]:
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    ids = torch.tensor([tok(prompt)["input_ids"]])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), pad_token_id=0, **GREEDY)
    return out[0, ids.shape[1] :].tolist()


def _ops(folder: Path) -> Counter:
    return Counter(n.op_type for n in onnx.load(str(folder / "model.onnx")).graph.node)


def test_a_sliding_window_shorter_than_the_prompt_answers_as_transformers(tmp_path: Path) -> None:
    """Mistral with a 4-token window (a query sees itself and the 3 positions before it): greedy tokens as
    generate() gives them, alone and in a left-padded batch."""
    source = _decoder(tmp_path, "mistral", "windowed", sliding_window=4)
    folder = _build(source, tmp_path / "out")
    assert _ops(folder)["GroupQueryAttention"] == 2
    attention = [
        n for n in onnx.load(str(folder / "model.onnx")).graph.node if n.op_type == "GroupQueryAttention"
    ]
    assert {a.i for n in attention for a in n.attribute if a.name == "local_window_size"} == {4}
    bundle = builder.load(folder)
    settings = bundle.pipeline.settings(GREEDY)
    rows = [bundle.tokenizer.base.encode(p).ids for p in PROMPTS]
    alone = [bundle.pipeline.generate_ids([r], settings)[0] for r in rows]
    assert alone == [_generate(source, p) for p in PROMPTS]
    assert bundle.pipeline.generate_ids(rows, settings) == alone  # left-padded rows: as alone
    # the window matters here: without it, transformers' tokens differ
    unwindowed = _decoder(tmp_path, "mistral", "unwindowed", sliding_window=None)
    assert [_generate(unwindowed, p) for p in PROMPTS] != alone


@pytest.fixture(scope="module")
def qwen2(tiny_decoders: dict, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny Qwen2 built fused (the default) and plain."""
    out = tmp_path_factory.mktemp("qwen2")
    return (
        _build(tiny_decoders["qwen2"], out / "fused"),
        _build(tiny_decoders["qwen2"], out / "plain", "export.attention=plain"),
    )


def test_plain_attention_on_request_and_fused_refused_where_it_cannot_be(
    qwen2: tuple[Path, Path], tmp_path: Path
) -> None:
    fused, plain = qwen2
    assert _ops(fused)["GroupQueryAttention"] == 2 and not _ops(plain)["GroupQueryAttention"]
    record = read_json(plain / "metrics.json")["export"]["graphs"]["model"]
    assert record["attention"] == "plain" and record["why"] == "export.attention=plain"
    for folder in (fused, plain):  # the contract is the same: position_ids stays an input of the fused graph
        names = [i.name for i in onnx.load(str(folder / "model.onnx")).graph.input]
        assert names[:3] == ["input_ids", "attention_mask", "position_ids"]
    a, b = builder.load(fused), builder.load(plain)
    for prompt in PROMPTS:
        assert a(prompt, **GREEDY) == b(prompt, **GREEDY)
    assert a(PROMPTS, **GREEDY) == b(PROMPTS, **GREEDY)

    # heads of 8: the operator takes multiples of 16; auto falls back (and says why), fused refuses
    narrow = _decoder(
        tmp_path, "llama", "narrow", hidden_size=32, num_attention_heads=4, num_key_value_heads=2, head_dim=8
    )
    auto = _build(narrow, tmp_path / "auto")
    record = read_json(auto / "metrics.json")["export"]["graphs"]["model"]
    assert record["attention"] == "plain" and "multiples of 16" in record["why"]
    proc = run_builder(
        f"model.source={narrow}", "task=text-generation", "export.attention=fused", "quantization=none",
        "evaluation=none", "benchmark=none", f"output_dir={tmp_path / 'refused'}",
    )  # fmt: skip
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "export.attention=fused" in proc.stderr and "head size 8" in proc.stderr, proc.stderr


def test_cuda_builds_keep_attention_plain(tiny_decoders: dict, tmp_path: Path) -> None:
    """ONNX Runtime's CUDA GroupQueryAttention refuses the attention bias the fused graph masks padding with (and
    float32): a cuda build, fp32 (O2) or fp16 (O4), exports attention as transformers writes it and says why; both
    generate the CPU bundle's tokens."""
    cpu = _build(tiny_decoders["qwen2"], tmp_path / "cpu")
    expected = builder.load(cpu)(PROMPTS, **GREEDY)
    for level in ("O2", "O4"):
        folder = _build(tiny_decoders["qwen2"], tmp_path / level, "hardware=cuda", f"optimization={level}")
        record = read_json(folder / "metrics.json")["export"]["graphs"]["model"]
        assert record["attention"] == "plain" and "refuses the attention bias" in record["why"], record
        assert not _ops(folder)["GroupQueryAttention"]
        assert builder.load(folder)(PROMPTS, **GREEDY) == expected, level


def test_a_bfloat16_checkpoint_builds_in_float32(tmp_path: Path) -> None:
    """SmolLM2 and Qwen2.5 ship bfloat16 weights, which transformers loads as they are: the build exports and
    compares the model in float32, fused, and generates what transformers does with the model in float32."""
    source = _decoder(tmp_path, "llama", "bf16")
    model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    model.to(torch.bfloat16).save_pretrained(source)
    assert transformers.AutoModelForCausalLM.from_pretrained(source).dtype == torch.bfloat16
    folder = _build(source, tmp_path / "out")
    graph = onnx.load(str(folder / "model.onnx")).graph
    assert {t.data_type for t in graph.initializer if t.data_type != onnx.TensorProto.INT64} <= {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.INT32,
    }
    assert _ops(folder)["GroupQueryAttention"] == 2
    bundle, tok = builder.load(folder), transformers.AutoTokenizer.from_pretrained(source)
    upcast = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
    for prompt in PROMPTS:
        ids = torch.tensor([tok(prompt)["input_ids"]])
        with torch.no_grad():
            out = upcast.generate(ids, attention_mask=torch.ones_like(ids), pad_token_id=0, **GREEDY)
        assert bundle.pipeline.generate_ids([ids[0].tolist()], bundle.pipeline.settings(GREEDY)) == [
            out[0, ids.shape[1] :].tolist()
        ]


@pytest.mark.parametrize("value", ["fast", "none"])
def test_an_unknown_attention_setting_is_refused_before_work(
    value: str, tiny_decoders: dict, tmp_path: Path
) -> None:
    proc = run_builder(
        f"model.source={tiny_decoders['llama']}", "task=text-generation", f"export.attention={value}",
        f"output_dir={tmp_path}",
    )  # fmt: skip
    assert (
        proc.returncode == 2
        and f"export.attention={value!r} is not one of: auto, fused, plain" in proc.stderr
    )


def _cache_inputs(bundle: builder.Bundle, rows: list[list[int]]) -> dict:
    """A left-padded prompt batch as the generation loop feeds it."""
    longest = max(len(r) for r in rows)
    ids = np.zeros((len(rows), longest), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, longest - len(r) :], mask[i, longest - len(r) :] = r, 1
    return {"input_ids": ids, "attention_mask": mask, "position_ids": np.maximum(mask.cumsum(-1) - 1, 0)}


def test_a_fused_bundle_appends_to_one_cache_buffer_in_place(qwen2: tuple[Path, Path]) -> None:
    """The fused graph's cache outputs are GroupQueryAttention's own: the manifest says so, and the runtime binds
    one buffer per layer as past and present. Its logits and cache equal the copied cache's step by step, the
    buffer holds the positions run so far and nothing past them; a plain graph keeps the copied cache."""
    fused, plain = (builder.load(f) for f in qwen2)
    graphs = [read_json(f / "manifest.json")["runtime"]["graphs"]["model"] for f in qwen2]
    assert graphs[0]["shared_cache"] is True and "shared_cache" not in graphs[1]
    gen = fused.pipeline
    rows = [fused.tokenizer.base.encode(p).ids for p in PROMPTS]
    feeds = _cache_inputs(fused, rows)
    batch, longest = feeds["input_ids"].shape
    shape = (batch, gen.kv_heads, longest + 3, gen.head_dim)
    shared = fused.engine.kv_cache(gen.past_names, gen.present_names, shape)
    copied = CopiedCache(fused.engine, gen.past_names, gen.present_names, shape)
    assert isinstance(shared, SharedCache)
    assert isinstance(plain.engine.kv_cache(gen.past_names, gen.present_names, shape), CopiedCache)
    for _ in range(3):
        a, b = shared.step(feeds), copied.step(feeds)
        np.testing.assert_allclose(a, b, atol=1e-5)
        total = feeds["attention_mask"].shape[1]
        for buffer, name in zip(shared.buffers, gen.past_names, strict=True):
            held = buffer.numpy()
            np.testing.assert_allclose(held[:, :, :total], copied.past[name], atol=1e-5)
            assert not held[:, :, total:].any()  # written in place, only where the steps reached
        token = a[:, -1].argmax(-1)[:, None]
        mask = np.concatenate([feeds["attention_mask"], np.ones((batch, 1), dtype=np.int64)], axis=1)
        feeds = {"input_ids": token, "attention_mask": mask, "position_ids": mask.sum(-1, keepdims=True) - 1}


def test_the_io_binding_paths_generate_what_session_run_does(qwen2: tuple[Path, Path]) -> None:
    """On a GPU the engine runs through IOBinding: a plain graph's presents (what cuda builds export) stay the
    session's OrtValues, bound back as the next step's past; a shared-cache graph's buffers would live on the device.
    The same code runs here with host memory as the device, and generates what session.run does: greedy, sampled,
    beam search (rows gathered), a batch, and scoring through engine.run."""
    calls = [
        (PROMPTS, GREEDY),
        (PROMPTS[1], {**GREEDY, "num_beams": 3, "num_return_sequences": 2}),
        (
            PROMPTS[:2],
            {"max_new_tokens": 6, "do_sample": True, "top_k": 5, "seed": 3, "num_return_sequences": 2},
        ),
    ]
    for folder, form in zip(qwen2, (SharedCache, CopiedCache), strict=True):
        plain_run, bound = builder.load(folder), builder.load(folder)
        bound.engine.io_binding = True
        gen = bound.pipeline
        rows = [bound.tokenizer.base.encode(p).ids for p in PROMPTS]
        feeds = _cache_inputs(bound, rows)
        shape = (len(rows), gen.kv_heads, feeds["input_ids"].shape[1] + 1, gen.head_dim)
        cache = bound.engine.kv_cache(gen.past_names, gen.present_names, shape)
        assert isinstance(cache, form)
        cache.step(feeds)
        held = cache.buffers if form is SharedCache else list(cache.past.values())
        assert all(isinstance(v, ort.OrtValue) for v in held), folder.name
        for inputs, kwargs in calls:
            assert bound(inputs, **kwargs) == plain_run(inputs, **kwargs), (folder.name, kwargs)
        for (a, n), (b, m) in zip(
            bound.pipeline.score(PROMPTS), plain_run.pipeline.score(PROMPTS), strict=True
        ):
            assert n == m and abs(a - b) < 1e-3


@pytest.mark.parametrize("which", ["fused", "plain"])
def test_logits_to_keep_is_an_input_that_defaults_to_every_position(
    qwen2: tuple[Path, Path], which: str
) -> None:
    """Callers that do not know logits_to_keep (Optimum, onnxruntime-genai, perplexity scoring) get every
    position; the generation loop asks for the last one only."""
    bundle = builder.load(qwen2[0] if which == "fused" else qwen2[1])
    session = bundle.engine.session
    assert [i.name for i in session.get_overridable_initializers()] == ["logits_to_keep"]
    assert "logits_to_keep" not in [i.name for i in session.get_inputs()]
    gen = bundle.pipeline
    feeds = _cache_inputs(bundle, [bundle.tokenizer.base.encode(p).ids for p in PROMPTS])
    empty = np.zeros((len(PROMPTS), gen.kv_heads, 0, gen.head_dim), dtype=np.float32)
    feeds |= {name: empty for name in gen.past_names}
    (every,) = session.run(["logits"], feeds)
    assert every.shape[1] == feeds["input_ids"].shape[1]
    for keep in (1, 2):
        (kept,) = session.run(["logits"], {**feeds, "logits_to_keep": np.array([keep], dtype=np.int64)})
        np.testing.assert_allclose(kept, every[:, -keep:], atol=1e-5)
