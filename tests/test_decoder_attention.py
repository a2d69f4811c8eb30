"""Fused decoder attention (builder.tasks.decoder_attention): one GroupQueryAttention per layer, what transformers
computes token for token, a sliding window included; export.attention chooses it, and says why when it cannot."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx
import pytest
import torch
import transformers
from conftest import read_json, run_builder
from tiny_models import decoder_config, decoder_tokenizer

import builder

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


def test_plain_attention_on_request_and_fused_refused_where_it_cannot_be(
    tiny_decoders: dict, tmp_path: Path
) -> None:
    fused = _build(tiny_decoders["qwen2"], tmp_path / "fused")
    plain = _build(tiny_decoders["qwen2"], tmp_path / "plain", "export.attention=plain")
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
