"""Text generation: decoder bundles with a key/value cache for every decoder architecture, and a torch-free
generation loop that answers as transformers 5's pipeline("text-generation") and generate() do, token for token."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import onnx
import pytest
from conftest import (
    build_fp16_for_cuda,
    bundles_in,
    float_types,
    is_cache,
    read_json,
    run_builder,
    run_without_build_packages,
    selected,
    slow_beyond,
)
from tiny_models import DECODERS

import builder
from builder.cli.bundle_info import summary
from builder.make.report import collect
from builder.make.stages.benchmark import MIN_CALLS

PROMPTS = [
    "Hello, my name is",
    "A",
    "Café naïve résumé 🙂 — 日本語 and Ελληνικά:",
    " ".join(["George Washington was the first president of the United States."] * 5),
]
PARITY = ("gpt2", "llama", "qwen2")  # GPT-2 (Conv1D, learned positions), Llama (grouped-query), Qwen2
GREEDY = {"do_sample": False, "max_new_tokens": 12}


@pytest.fixture(scope="module")
def bundles(tiny_decoders: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("generation")
    return {
        arch: builder.build(
            overrides=[
                f"model.source={tiny_decoders[arch]}",
                "task=text-generation",
                "quantization=none",
                "evaluation=none",
                "benchmark=none",
                f"output_dir={out}",
            ],
            quiet=True,
        )
        for arch in PARITY
    }


@pytest.fixture(scope="module")
def references(tiny_decoders: dict) -> dict:
    from transformers import pipeline

    return {
        arch: pipeline("text-generation", model=str(tiny_decoders[arch]), device="cpu") for arch in PARITY
    }


@pytest.mark.parametrize("arch", PARITY)
def test_greedy_text_and_ids_equal_transformers(bundles: dict, references: dict, arch: str) -> None:
    import torch

    ours, theirs = builder.load(bundles[arch]), references[arch]
    for prompt in PROMPTS:
        for kwargs in (GREEDY, {**GREEDY, "return_full_text": False}, {**GREEDY, "repetition_penalty": 1.3}):
            assert ours(prompt, **kwargs) == theirs(prompt, **kwargs), (arch, prompt, kwargs)
        ids = ours.tokenizer.base.encode(prompt).ids
        settings = ours.pipeline.settings(GREEDY)
        with torch.no_grad():
            expected = theirs.model.generate(
                torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), **GREEDY
            )
        assert ours.pipeline.generate_ids([ids], settings) == [expected[0, len(ids) :].tolist()], (
            arch,
            prompt,
        )


SEARCHES = [  # beam search and the logits processors generate() applies, each against transformers
    {"num_beams": 2},
    {"num_beams": 4, "length_penalty": 2.0, "no_repeat_ngram_size": 2},
    {"num_beams": 3, "early_stopping": True, "num_return_sequences": 2},
    {"num_beams": 4, "early_stopping": "never", "length_penalty": 0.5, "repetition_penalty": 1.3},
    {"no_repeat_ngram_size": 1, "min_new_tokens": 8},
    {
        "num_beams": 2,
        "bad_words_ids": [[15], [17, 18]],
        "suppress_tokens": [11, 12],
        "begin_suppress_tokens": [13],
    },
]


@pytest.mark.parametrize("arch", PARITY)
def test_beam_search_and_processors_equal_transformers(bundles: dict, references: dict, arch: str) -> None:
    """Text through the pipeline and token ids through generate(): the same as transformers gives, for every
    sequence it returns; a batch as its prompts alone."""
    import torch

    ours, theirs = builder.load(bundles[arch]), references[arch]
    for kwargs in SEARCHES:
        call = {**GREEDY, **kwargs}
        for prompt in PROMPTS[:3]:
            assert ours(prompt, **call) == theirs(prompt, **call), (arch, prompt, kwargs)
            ids = ours.tokenizer.base.encode(prompt).ids
            with torch.no_grad():
                out = theirs.model.generate(
                    torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), **call
                )
            pad = theirs.model.generation_config.pad_token_id
            got = ours.pipeline.generate_ids([ids], ours.pipeline.settings(call))
            want = [row[len(ids) :].tolist() for row in out]
            assert [w[: len(g)] for w, g in zip(want, got, strict=True)] == got, (arch, prompt, kwargs)
            assert all(set(w[len(g) :]) <= {pad} for w, g in zip(want, got, strict=True))  # only padding cut
        assert ours(PROMPTS[:3], **call) == [ours(p, **call) for p in PROMPTS[:3]], (arch, kwargs)


def test_chat_goes_through_the_chat_template(bundles: dict, references: dict) -> None:
    ours, theirs = builder.load(bundles["llama"]), references["llama"]
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Who was the first president?"},
    ]
    assert ours(chat, **GREEDY) == theirs(chat, **GREEDY)
    prefill = [*chat, {"role": "assistant", "content": "It was"}]  # continued, not answered anew
    assert ours(prefill, **GREEDY) == theirs(prefill, **GREEDY)
    assert ours(chat, **GREEDY)[0]["generated_text"][-1]["role"] == "assistant"


def test_early_eos_stops_a_row(tiny_decoders: dict, tmp_path: Path) -> None:
    """A generation config whose eos is the third greedy token: the text stops before it, as in transformers."""
    from transformers import pipeline

    source = tmp_path / "model"
    import shutil

    shutil.copytree(tiny_decoders["qwen2"], source)
    probe = pipeline("text-generation", model=str(source), device="cpu")
    ids = probe.tokenizer("Hello, my name is")["input_ids"]
    third = probe.model.generate(__import__("torch").tensor([ids]), max_new_tokens=3, do_sample=False)[
        0, -1
    ].item()
    config = read_json(source / "generation_config.json")
    (source / "generation_config.json").write_text(json.dumps({**config, "eos_token_id": int(third)}))
    folder = builder.build(
        overrides=[f"model.source={source}", "task=text-generation", "quantization=none", "evaluation=none",
                   "benchmark=none", f"output_dir={tmp_path / 'out'}"],
        quiet=True,
    )  # fmt: skip
    ours, theirs = builder.load(folder), pipeline("text-generation", model=str(source), device="cpu")
    got = ours("Hello, my name is", max_new_tokens=10, do_sample=False)
    assert got == theirs("Hello, my name is", max_new_tokens=10, do_sample=False)
    assert ours.pipeline.generate_ids([ids], ours.pipeline.settings({"do_sample": False}))[0][-1] == third
    # in a batch, the stopped row waits with pad tokens while the other goes on
    batch = ours(["Hello, my name is", "The quick brown fox"], max_new_tokens=10, do_sample=False)
    assert batch == [got, ours("The quick brown fox", max_new_tokens=10, do_sample=False)]


@pytest.mark.parametrize("arch", PARITY)
def test_a_batch_gives_what_each_prompt_gives_alone(bundles: dict, arch: str) -> None:
    gen = builder.load(bundles[arch])
    assert gen(PROMPTS, **GREEDY) == [gen(p, **GREEDY) for p in PROMPTS]
    assert gen(PROMPTS, batch_size=2, **GREEDY) == gen(PROMPTS, **GREEDY)


def test_sampling_is_reproducible_with_a_seed(bundles: dict) -> None:
    gen = builder.load(bundles["llama"])
    kwargs = {"do_sample": True, "max_new_tokens": 16, "temperature": 0.9, "top_k": 40, "top_p": 0.95}
    first = gen(PROMPTS[0], seed=7, **kwargs)
    assert gen(PROMPTS[0], seed=7, **kwargs) == first
    assert gen(PROMPTS[0], seed=8, **kwargs) != first
    several = gen(PROMPTS[0], seed=7, num_return_sequences=3, **kwargs)
    assert len(several) == 3 and len({s["generated_text"] for s in several}) > 1
    assert all(s["generated_text"].startswith(PROMPTS[0]) for s in several)


def test_defaults_follow_the_pipeline_and_the_generation_config(bundles: dict) -> None:
    gen = builder.load(bundles["gpt2"])
    s = gen.pipeline.settings({})
    assert (s["do_sample"], s["temperature"], s["max_new_tokens"]) == (
        True,
        0.7,
        256,
    )  # the pipeline's defaults
    assert (
        gen.pipeline.settings({"do_sample": False})["temperature"] == 1.0
    )  # sampling defaults only when sampling
    with pytest.raises(ValueError, match="top_p"):
        gen("a", top_p=0)
    with pytest.raises(ValueError, match="unknown argument"):
        gen("a", max_tokens=3)


def test_stream_yields_the_new_text_in_whole_characters(bundles: dict) -> None:
    gen = builder.load(bundles["qwen2"])
    for prompt in PROMPTS:
        pieces = list(gen.pipeline.stream(prompt, **GREEDY))
        assert "".join(pieces) == gen(prompt, return_full_text=False, **GREEDY)[0]["generated_text"]
        assert all(p and "\ufffd" not in p[-1:] for p in pieces[:-1])


def test_iter_ids_yields_each_step_and_ends_where_generate_ids_does(bundles: dict) -> None:
    gen = builder.load(bundles["llama"]).pipeline
    rows = [gen.tok.base.encode(p).ids for p in PROMPTS[:2]]
    s = {**gen.settings({"do_sample": False}), "max_new_tokens": 6}
    states = [[list(r) for r in state] for state in gen.iter_ids(rows, s, ignore_eos=True)]
    assert [[len(r) for r in state] for state in states] == [[n, n] for n in range(1, 7)]
    pairs = zip(states, states[1:], strict=False)
    assert all(
        later[i][: len(r)] == r for earlier, later in pairs for i, r in enumerate(earlier)
    )  # grows only
    assert states[-1] == gen.generate_ids(rows, s, ignore_eos=True)


def test_stop_strings_end_the_text(bundles: dict) -> None:
    gen = builder.load(bundles["gpt2"])
    full = gen(PROMPTS[0], return_full_text=False, **GREEDY)[0]["generated_text"]
    stop = full[2:4]
    cut = gen(PROMPTS[0], return_full_text=False, stop=[stop], **GREEDY)[0]["generated_text"]
    assert cut == full[: full.index(stop) + len(stop)]


def test_the_context_bounds_prompt_and_generation(bundles: dict) -> None:
    gen = builder.load(bundles["llama"])
    context = gen.pipeline.max_positions
    long = "word " * (context + 10)
    with pytest.raises(ValueError, match="context is 128"):
        gen(long, **GREEDY)
    kept = gen(long, truncate=True, do_sample=False, max_new_tokens=50, return_full_text=False)
    assert kept[0]["generated_text"] != ""
    ids = gen.tokenizer.base.encode("Hello").ids
    new = gen.pipeline.generate_ids(
        [ids], {**gen.pipeline.settings({"do_sample": False}), "max_new_tokens": 500}, ignore_eos=True
    )
    assert len(new[0]) == context - len(ids)  # stops at the context's end


def test_predict_streams_json_lines(bundles: dict, tmp_path: Path) -> None:
    lines = tmp_path / "in.jsonl"
    lines.write_text(
        json.dumps({"inputs": PROMPTS[0], "parameters": {**GREEDY, "stream": True}}) + "\n"
        + json.dumps({"text_inputs": PROMPTS[1], **GREEDY}) + "\n"
        + json.dumps({"inputs": "a", "parameters": {"top_p": 0}}) + "\n"
    )  # fmt: skip
    proc = run_builder("predict", str(bundles["gpt2"]), "--input", str(lines))
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    expected = builder.load(bundles["gpt2"])(PROMPTS[0], return_full_text=False, **GREEDY)[0][
        "generated_text"
    ]
    tokens = [o["token"] for o in out if "token" in o]
    assert tokens and "".join(tokens) == expected and out[len(tokens)] == {"generated_text": expected}
    assert out[-1][0]["generated_text"].startswith(PROMPTS[1]) and "line 3: ValueError" in proc.stderr


def test_generation_runs_without_build_time_packages(bundles: dict) -> None:
    code = (
        "import builder\n"
        f"gen = builder.load({str(bundles['llama'])!r})\n"
        "gen('Hello', max_new_tokens=4, do_sample=False)\n"
        "gen([{'role': 'user', 'content': 'Hi'}], max_new_tokens=4, seed=1)\n"
        "list(gen.pipeline.stream('Hello', max_new_tokens=4))\n"
    )
    run_without_build_packages(code)


# --------------------------------------------------------------------------------------------- builds


@pytest.fixture(scope="module")
def decoder_builds(
    tiny_decoders: dict, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> dict[tuple[str, str], Path]:
    """Every decoder architecture the selected tests use, fp32 and int8, through the real CLI."""
    from concurrent.futures import ThreadPoolExecutor

    root = tmp_path_factory.mktemp("decoders")

    def build(arch: str) -> tuple[str, object, Path]:
        out = root / arch
        proc = run_builder(
            "-m", f"model.source={tiny_decoders[arch]}", "task=text-generation", "quantization=none,dynamic",
            "benchmark=quick", "benchmark.new_tokens=4", f"output_dir={out}",
            # every call exceeds a sixth of 0.5 ms: each side's 6 calls are cut to the floor (5)
            "benchmark.iterations=6", "benchmark.baseline_iterations=6", "benchmark.max_seconds=0.0005",
        )  # fmt: skip
        return arch, proc, out

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(build, selected(request, lambda item: item.callspec.params["arch"])))
    found = {}
    for arch, proc, out in results:
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (
            f"{arch}:\n{proc.stdout}\n{proc.stderr}"
        )
        for folder in bundles_in(out):
            found[(arch, read_json(folder / "manifest.json")["runtime"]["quantization"]["method"])] = folder
        for method in ("none", "dynamic"):
            assert (arch, method) in found, f"{arch} {method}: no bundle\n{proc.stderr[-3000:]}"
    return found


# GPT-2 (Conv1D, learned positions) and Llama (grouped-query) by default; every decoder in .ci/run
@pytest.mark.parametrize("arch", slow_beyond(DECODERS, ("gpt2", "llama")))
@pytest.mark.parametrize("quant", ["none", "dynamic"])
def test_decoder_bundle_has_one_cache_graph_and_is_measured(
    decoder_builds: dict, arch: str, quant: str
) -> None:
    folder = decoder_builds[(arch, quant)]
    manifest = builder.verify(folder)
    assert "generation_config.json" in manifest["files"]
    graph = manifest["runtime"]["graphs"]["model"]
    layers = manifest["runtime"]["options"]["num_layers"]
    past = [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    assert graph["inputs"] == ["input_ids", "attention_mask", "position_ids", *past]
    assert graph["outputs"] == ["logits", *(n.replace("past_key_values", "present") for n in past)]
    dims = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in onnx.load(str(folder / "model.onnx")).graph.input
    }
    assert dims["attention_mask"] == ["batch_size", "past_sequence_length + sequence_length"]
    kv_heads = manifest["runtime"]["options"]["num_kv_heads"]
    assert dims[past[0]][:3] == ["batch_size", kv_heads, "past_sequence_length"]
    config = read_json(folder / "config.json")
    if arch != "gpt2":  # grouped-query attention: fewer key/value heads than query heads
        assert kv_heads < config["num_attention_heads"]

    metrics = read_json(folder / "metrics.json")
    # one fused attention operator per layer (cache append, rotary, grouped heads, mask), Q/K/V in one MatMul
    assert metrics["export"]["graphs"]["model"]["attention"] == "GroupQueryAttention"
    ops = Counter(n.op_type for n in onnx.load(str(folder / "model.onnx")).graph.node)
    assert ops["GroupQueryAttention"] == layers and metrics["optimize"]["attention_fused"]
    # the cache outputs are the operator's own (one buffer as past and present), and the head can keep the last
    # positions only: through optimization and quantization
    assert graph["shared_cache"] is True
    inits = {i.name for i in onnx.load(str(folder / "model.onnx")).graph.initializer}
    assert "logits_to_keep" in inits and "logits_to_keep" in dims
    assert metrics["optimize"]["fused_operators"]["GroupQueryAttention"] == layers
    # what older ONNX Runtime releases load (tests/test_runtime_floor.py): inputs through attention_bias, and no
    # attribute the optimizer wrote out at its default
    gqa = [n for n in onnx.load(str(folder / "model.onnx")).graph.node if n.op_type == "GroupQueryAttention"]
    assert all(len(n.input) <= 11 for n in gqa)
    written = {a.name for n in gqa for a in n.attribute}
    assert written <= {"num_heads", "kv_num_heads", "scale", "do_rotary", "local_window_size"}, written
    linear = ops["MatMulInteger"] + ops["MatMul"] + ops["Gemm"] + ops["DynamicQuantizeMatMul"]
    assert linear <= 5 * layers + 1  # per layer: Q/K/V, output, MLP gate, up, down; then lm_head
    fidelity = metrics["fidelity"]
    assert fidelity["passed"] and fidelity["generation"]["prompts"] == 6
    if quant == "none":  # fp32: what PyTorch computes, and its greedy tokens
        assert (
            fidelity["outputs"]["logits"]["cosine_min"] > 0.9999
            and fidelity["generation"]["greedy_match"] == 1.0
        )
    else:
        assert metrics["quantize"]["quantized_nodes"] > 0 and metrics["size"]["ratio_to_fp32"] < 0.9
    ev = metrics["evaluation"]
    assert ev["metric"] == "perplexity" and ev["bundle"]["tokens"] == ev["baseline"]["tokens"] > 100
    if quant == "none":
        assert ev["bundle"]["perplexity"] == pytest.approx(ev["baseline"]["perplexity"], rel=1e-4)
    assert ev["retention_percent"] == pytest.approx(
        100 * ev["baseline"]["perplexity"] / ev["bundle"]["perplexity"]
    )
    rows = {r["workload"]: r for r in metrics["benchmark"]["results"]}
    assert set(rows) == {"prefill", "decode"}
    assert rows["decode"]["bundle"]["throughput_per_s"] > 0 and rows["decode"]["pytorch"]["p50_ms"] > 0
    card = (folder / "README.md").read_text()
    assert "pipeline_tag: text-generation" in card and "| decode |" in card
    assert all(r[side]["calls"] == MIN_CALLS for r in rows.values() for side in ("bundle", "pytorch"))
    assert f"decode at batch 1: {MIN_CALLS} bundle and {MIN_CALLS} PyTorch calls" in card
    # the decode rate after the first token: the 3 steps a decode call adds to the prefill call, per side
    steps = {s: rows["decode"][s]["p50_ms"] - rows["prefill"][s]["p50_ms"] for s in ("bundle", "pytorch")}
    after = rows["decode"].get("after_first_token")
    assert (after is not None) == (min(steps.values()) > 0)  # absent only when noise inverts the medians
    if after:
        assert after["bundle"]["step_ms"] == pytest.approx(steps["bundle"] / 3)
        assert after["speedup"] == pytest.approx(steps["pytorch"] / steps["bundle"])
        assert f"| {after['bundle']['tokens_per_s']:.1f} | {after['pytorch']['step_ms']:.2f} |" in card
        assert f"{after['bundle']['tokens_per_s']:.1f} tokens/s after the first token" in summary(folder)
        report_row = collect([folder])[0]  # a sweep's report
        assert report_row["decode_tokens_per_s"] == after["bundle"]["tokens_per_s"]
    base, ours = ev["baseline"]["perplexity"], ev["bundle"]["perplexity"]
    assert (
        f"| perplexity (primary) | {base:.4f} | {ours:.4f} | {100 * base / ours:.2f}% |" in card
    )  # lower is better
    assert f"{100 * fidelity['generation']['greedy_match']:.1f}% of the first 16 tokens" in card


def test_decoder_gate_and_summary(tiny_decoders: dict, tmp_path: Path) -> None:
    common = [f"model.source={tiny_decoders['qwen3']}", "task=text-generation", "benchmark=none"]
    proc = run_builder(
        *common, "quantization=none", "evaluation.gate.max_relative_drop=0.01", f"output_dir={tmp_path / 'a'}"
    )
    assert proc.returncode == 0 and "perplexity" in proc.stdout and "greedy    100.0%" in proc.stdout, (
        proc.stderr
    )
    assert "Warning" not in proc.stderr, proc.stderr  # a fused build's export check included
    proc = run_builder(
        *common, "quantization=none", "evaluation.gate.max_relative_drop=-0.5", f"output_dir={tmp_path / 'b'}"
    )
    assert proc.returncode != 0 and "quality gate" in proc.stderr and "above" in proc.stderr
    proc = run_builder(*common, "quantization=static", f"output_dir={tmp_path / 'c'}")
    assert proc.returncode == 2 and "quantization=static with task=text-generation" in proc.stderr


def test_perplexity_of_a_local_text_file(tiny_decoders: dict, tmp_path: Path) -> None:
    text = tmp_path / "essay.txt"
    text.write_text("The quick brown fox jumps over the lazy dog.\n\nParis is the capital of France.\n\n\n")
    proc = run_builder(
        f"model.source={tiny_decoders['gpt2']}", "task=text-generation", "quantization=none", "benchmark=none",
        f"evaluation.dataset={text}", f"output_dir={tmp_path / 'out'}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (folder,) = bundles_in(tmp_path / "out")
    ev = read_json(folder / "metrics.json")["evaluation"]
    assert ev["examples"] == 2 and ev["format"] == "text"
    scored = builder.load(folder).pipeline.score([p for p in text.read_text().split("\n\n") if p.strip()])
    nll, tokens = sum(s for s, _ in scored), sum(n for _, n in scored)
    assert ev["bundle"]["perplexity"] == pytest.approx(math.exp(nll / tokens), rel=1e-6)


def test_concurrent_generation_equals_sequential(bundles: dict) -> None:
    import threading

    gen = builder.load(bundles["llama"])
    jobs = [(p, {**GREEDY, "repetition_penalty": 1.0 + i / 10}) for i, p in enumerate(PROMPTS * 2)]
    sequential = [gen(p, **kw) for p, kw in jobs]
    results: dict = {}
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, gen(jobs[i][0], **jobs[i][1])))
        for i in range(len(jobs))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(len(jobs))] == sequential


def test_fp16_for_cuda_keeps_the_greedy_tokens(bundles: dict, tiny_decoders: dict, tmp_path: Path) -> None:
    """hardware=cuda optimization=O4 on a decoder: weights in float16; the key/value cache in float16 both ways (a
    step feeds back what the last one gave, with no Cast copying it), every other input and output float32;
    attention as transformers writes it (ONNX Runtime's CUDA GroupQueryAttention refuses the fused graph's bias).
    On this CPU host the graph still runs, fidelity's greedy tokens equal PyTorch's and the runtime generates the
    fp32 bundle's text on the trained model."""
    folder = build_fp16_for_cuda(tiny_decoders["llama"], "text-generation", tmp_path)
    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    weights, io = float_types(graph)
    assert weights == {onnx.TensorProto.FLOAT16}
    half = {name for name, t in io.items() if t == onnx.TensorProto.FLOAT16}
    assert half == {name for name in io if is_cache(name)} and len(half) == 8, (
        io
    )  # 2 layers x key, value x in, out
    assert io["logits"] == onnx.TensorProto.FLOAT
    assert not Counter(n.op_type for n in graph.node)["GroupQueryAttention"]
    assert not any(n.op_type == "Cast" and n.output[0].startswith("present.") for n in graph.node)
    genai = read_json(folder / "genai_config.json")["model"]["decoder"]["session_options"]
    assert genai["provider_options"] == [{"cuda": {}}]  # onnxruntime-genai runs it on its CUDA provider
    generation = read_json(folder / "metrics.json")["fidelity"]["generation"]
    assert generation["greedy_match"] == 1.0, generation
    fp16, fp32 = builder.load(folder), builder.load(bundles["llama"])
    assert fp16(PROMPTS, **GREEDY) == fp32(PROMPTS, **GREEDY)
    bound = builder.load(folder)
    bound.engine.io_binding = (
        True  # a GPU's path (the cache kept as the session's values), host memory as device
    )
    assert bound(PROMPTS, **GREEDY) == fp32(PROMPTS, **GREEDY)
    # scoring feeds float32 zeros as the empty past, which the runtime casts to the cache's float16
    for (nll16, n16), (nll32, n32) in zip(
        fp16.pipeline.score(PROMPTS), fp32.pipeline.score(PROMPTS), strict=True
    ):
        assert n16 == n32 and math.isclose(nll16, nll32, rel_tol=0.02, abs_tol=0.05), (nll16, nll32)
