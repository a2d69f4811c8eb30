"""Text generation on a GPU (issue 12): builds decoder bundles ON the GPU machine with `hardware=cuda
optimization=O4` (fp16) and checks what they claim, then times a decoder against PyTorch on the same GPU.

On the GPU machine (ONNX Runtime's CUDA build unpacked in /tmp/ortgpu as ../shared/gpu/README.md says; hydra,
omegaconf and antlr4 carried in `.devpy/`, made here by `benchmarks/cuda_build_check.py --prepare`):

    ln -sfn ../conf builder/conf   # the source tree, not installed: builder.conf is the top-level conf/
    PYTHONPATH=/tmp/ortgpu:.:.devpy python3 benchmarks/cuda_generation_check.py --out $OUT

Checks, on the tests' tiny Llama, trained (greedy tokens with real margins):
- it builds; export says why attention is not fused (ONNX Runtime's CUDA GroupQueryAttention refuses the fused
  graph's attention bias); fidelity runs on CUDAExecutionProvider and passes with a greedy match of 1.0; the
  key/value cache inputs and outputs are float16, every other input and output float32;
- the build's benchmark timed time to first token and decode against PyTorch in fp16 on the same GPU;
- `builder.load` runs on CUDA through IOBinding, and each step's cache stays on the device (float16 OrtValues
  bound back as the next step's past);
- its greedy tokens equal PyTorch's (fp32) for every prompt, and a batch equals its prompts alone;
- a tiny BART summarization bundle (three graphs, fp16): greedy and 4-beam tokens equal PyTorch's, and its caches
  stay on the device between steps.

Timing, on SmolLM2-135M's exact shape with random weights: the fp16 bundle against PyTorch `generate` on the
same GPU in fp32 and in fp16, a 128-token prompt and 128 new tokens at batch 1 and 8, every side in each round
(order alternating), medians over rounds: time to first token and decode tokens/s (the tokens after the first,
over the time after it). GPU memory is not compared: both sides share one process.

`--dry-run` runs it all on this CPU host (the tiny model for the timing, a few tokens; CUDA checks reported as
skipped), to check the script before spending device time; it passes with transformers 5.17 and onnxruntime 1.30
(what the H100 machine had) as with this project's pins. Writes cuda_generation_check.{json,md} after each part
(decoder checks, BART checks, timing), each part running even if one before it raised; exits 1 if a check fails.

The device calls, back to back (each carries at most 64 MiB; `bash ../shared/gpu/prepare-ort-gpu.sh` and
`.venv/bin/python benchmarks/cuda_build_check.py --prepare` first):
  1-3. carry [.ortgpu/partNN]: mkdir -p /tmp/parts && cp .ortgpu/partNN /tmp/parts/
  4.   carry [.ortgpu/part03, .ortgpu/sum.txt, .ortgpu/unpack-ort-gpu.sh, .devpy]: cp .ortgpu/part03 /tmp/parts/
       && bash .ortgpu/unpack-ort-gpu.sh && ln -sfn ../conf builder/conf
       && PYTHONPATH=/tmp/ortgpu:.:.devpy timeout 500 python3 benchmarks/cuda_generation_check.py --out $OUT
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
WORK = Path("/tmp/cuda-generation-check")
PROMPTS = [
    "Hello, my name is George and",
    "The quick brown fox jumps over the lazy dog because",
    "A",
    "Once upon a time",
]


def build(source: Path, out: Path, *extra: str) -> Path:
    import builder

    return builder.build(
        overrides=[
            f"model.source={source}",
            "task=text-generation",
            "hardware=cuda",
            "optimization=O4",
            "quantization=none",
            "evaluation=none",  # the datasets package is not on the GPU machine
            "fidelity.min_greedy_match=0",  # measured and checked below, so a bundle comes out to be looked at
            f"output_dir={out}",
            f"cache_dir={WORK / 'cache'}",
            *extra,
        ],
        quiet=True,
    )


def io_types(folder: Path) -> dict[str, list[str]]:
    """The graph's float inputs and outputs, by element type."""
    import onnx

    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    names = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16"}
    types: dict[str, list[str]] = {"float32": [], "float16": []}
    for v in (*graph.input, *graph.output):
        kind = names.get(v.type.tensor_type.elem_type)
        if kind:
            types[kind].append(v.name)
    return types


def metrics_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "metrics.json").read_text())


def check_bundle(folder: Path, model: Any, cuda: bool) -> dict[str, Any]:
    """What one cuda bundle claims, and what it does when loaded here."""
    import torch

    import builder
    from builder.runtime.kv_cache import SharedCache

    attention = metrics_of(folder)["export"]["graphs"]["model"]
    fidelity = metrics_of(folder)["fidelity"]
    types = io_types(folder)
    bundle = builder.load(folder)
    gen, engine = bundle.pipeline, bundle.engine
    if not cuda:  # a dry run: the GPU's binding code, with host memory as the device
        engine.io_binding = True
    cache = engine.kv_cache(gen.past_names, gen.present_names, (1, gen.kv_heads, 8, gen.head_dim))
    settings = gen.settings({"do_sample": False, "max_new_tokens": 16})
    rows = [bundle.tokenizer.base.encode(p).ids for p in PROMPTS]
    expected = []
    with torch.no_grad():
        for ids in rows:
            out = model.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                do_sample=False,
                max_new_tokens=16,
            )
            expected.append(out[0, len(ids) :].tolist())
    alone = [gen.generate_ids([ids], settings)[0] for ids in rows]
    record = {
        "bundle": folder.name,
        "attention": {k: attention.get(k) for k in ("attention", "why")},
        "fidelity": {k: fidelity.get(k) for k in ("measured", "provider", "passed")}
        | {"greedy_match": fidelity.get("generation", {}).get("greedy_match")},
        "float16_io": types["float16"],
        "float32_io": types["float32"],
        "provider": engine.session.get_providers()[0],
        "io_binding": engine.io_binding,
        "cache": type(cache).__name__,
        "greedy_equals_pytorch": alone == expected,
        "batch_equals_alone": gen.generate_ids(rows, settings) == alone,
    }
    if isinstance(cache, SharedCache):
        held = cache.buffers
    else:  # the copied cache, after a step: what the session gave back
        cache.step(
            {
                "input_ids": np.array([rows[0]], dtype=np.int64),
                "attention_mask": np.ones((1, len(rows[0])), dtype=np.int64),
                "position_ids": np.arange(len(rows[0]), dtype=np.int64)[None],
            }
        )
        held = list(cache.past.values())
    record["cache_buffers"] = sorted(
        {
            f"{v.device_name()} {v.data_type()}" if hasattr(v, "device_name") else f"host {v.dtype}"
            for v in held
        }
    )
    cache_io = {
        n for n in types["float16"] + types["float32"] if n.startswith(("past_key_values.", "present."))
    }
    failures = [
        name
        for name, ok in (
            (
                "attention plain, and why",
                attention.get("attention") == "plain" and bool(attention.get("why")),
            ),
            ("fidelity passed", fidelity.get("passed") is True),
            ("greedy match 1.0", record["fidelity"]["greedy_match"] == 1.0),
            ("cache i/o float16", cache_io and set(types["float16"]) == cache_io),
            ("greedy tokens equal PyTorch's", record["greedy_equals_pytorch"]),
            ("a batch equals its prompts alone", record["batch_equals_alone"]),
        )
        if not ok
    ]
    if cuda:
        failures += [
            name
            for name, ok in (
                ("fidelity on CUDA", fidelity.get("provider") == "CUDAExecutionProvider"),
                ("session on CUDA", record["provider"] == "CUDAExecutionProvider"),
                ("IOBinding", record["io_binding"] is True),
                ("cache on the device", record["cache_buffers"] == ["cuda tensor(float16)"]),
            )
            if not ok
        ]
    record["failures"] = failures
    return record


def check_seq2seq(cuda: bool) -> dict[str, Any]:
    """A tiny BART summarization bundle built here with hardware=cuda optimization=O4: its searches against PyTorch
    (fp32), and where its caches live between steps."""
    import torch
    import transformers
    from tiny_models import make_seq2seq

    import builder
    from builder.runtime.pipelines.text2text_generation import Seq2SeqSteps

    source = make_seq2seq(WORK / "models", "bart")
    folder = builder.build(
        overrides=[f"model.source={source}", "task=summarization", "hardware=cuda", "optimization=O4",
                   "quantization=none", "evaluation=none", "benchmark=none", "fidelity.min_greedy_match=0",
                   f"output_dir={WORK / 'out' / 'bart'}", f"cache_dir={WORK / 'cache'}"],
        quiet=True,
    )  # fmt: skip
    bundle = builder.load(folder)
    gen = bundle.pipeline
    if not cuda:
        bundle.engine.io_binding = True
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(source, dtype=torch.float32).eval()
    tok = transformers.AutoTokenizer.from_pretrained(source)
    texts = [
        "The quick brown fox jumps over the lazy dog.",
        "Paris is the capital and largest city of France.",
    ]
    same = {}
    for beams in (1, 4):
        settings = gen.settings({"num_beams": beams, "max_new_tokens": 12})
        ours = gen.generate_ids(texts, settings)
        theirs = []
        for text in texts:
            with torch.no_grad():
                out = model.generate(**tok([text], return_tensors="pt"), num_beams=beams, max_new_tokens=12)
            row = out[0, 1:].tolist()  # without the decoder start token; to its first eos, which it keeps
            eos = model.generation_config.eos_token_id
            theirs.append(row[: row.index(eos) + 1] if eos in row else row)
        same[f"{beams} beam(s)"] = ours == theirs
    steps = Seq2SeqSteps(gen, [gen.tok.base.encode(t).ids for t in texts])
    steps.first()
    steps.next(np.array([5, 6]))
    places = sorted(
        {f"{v.device_name()} {v.data_type()}" for v in steps.own + steps.cross if hasattr(v, "device_name")}
    )
    record = {"bundle": folder.name, "provider": bundle.engine.sessions["decoder_model"].get_providers()[0],
              "equal_to_pytorch": same, "caches": places}  # fmt: skip
    failures = [f"{k} tokens equal PyTorch's" for k, ok in same.items() if not ok]
    expected = "cuda tensor(float16)" if cuda else "cpu tensor(float16)"
    failures += [] if places == [expected] else [f"caches kept as {expected}"]
    if cuda and record["provider"] != "CUDAExecutionProvider":
        failures.append("decoder on CUDA")
    record["failures"] = failures
    return record


def benchmark_record(folder: Path) -> dict[str, Any]:
    b = json.loads((folder / "metrics.json").read_text())["benchmark"]
    keep = ("measured", "reason", "provider", "baseline_device", "baseline_dtype")
    return {k: b.get(k) for k in keep} | {
        "results": [
            {
                "workload": r.get("workload"),
                "batch": r.get("batch_size"),
                "bundle_p50_ms": r.get("bundle", {}).get("p50_ms"),
                "pytorch_p50_ms": r.get("pytorch", {}).get("p50_ms"),
                "speedup_p50": r.get("speedup_p50"),
            }
            for r in b.get("results", [])
        ]
    }


def make_shape(folder: Path) -> Path:
    """A decoder in SmolLM2-135M's exact shape, random weights, with the tiny models' tokenizer (its ids fit the
    vocabulary; the timed prompts are ids)."""
    import torch
    import transformers
    from generation_latency import SMOLLM2_135M
    from tiny_models import decoder_tokenizer

    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        config = transformers.AutoConfig.for_model("llama", **SMOLLM2_135M)
        transformers.AutoModelForCausalLM.from_config(config).eval().save_pretrained(folder)
        tok = decoder_tokenizer(bos=True)
        tok.model_max_length = config.max_position_embeddings
        tok.save_pretrained(folder)
    return folder


def random_prompts(vocab: int, prompt: int) -> dict[int, list[list[int]]]:
    """The timed prompts, batch 1 and 8: random ids of `prompt` tokens (no padding)."""
    return {b: np.random.default_rng(0).integers(3, vocab, size=(b, prompt)).tolist() for b in (1, 8)}


def runtime_call(gen: Any, prompts: dict[int, list[list[int]]], new: int) -> Any:
    """One timed generation through the runtime's loop: (seconds to the first token, seconds in all)."""
    greedy = {**gen.settings({"do_sample": False}), "max_new_tokens": new}

    def call(batch: int) -> tuple[float, float]:
        start, first = time.perf_counter(), None
        for _ in gen.iter_ids(prompts[batch], greedy, ignore_eos=True):
            first = first or time.perf_counter() - start
        return first, time.perf_counter() - start

    return call


def time_generation(
    bundle: Path,
    source: Path,
    device: str,
    prompt: int,
    new: int,
    rounds: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Time to first token and decode tokens/s, batch 1 and 8: the bundle vs PyTorch fp32 and fp16 on `device`
    (and `extra` pipelines, by name, timed in the same rounds against the bundle)."""
    import torch
    import transformers

    import builder

    gen = builder.load(bundle).pipeline
    prompts = random_prompts(int(gen.engine.model_config["vocab_size"]), prompt)
    ours = runtime_call(gen, prompts, new)

    def pytorch(dtype: Any) -> Any:
        model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=dtype).to(device).eval()
        tensors = {b: torch.tensor(p, device=device) for b, p in prompts.items()}

        class FirstToken:  # generate() puts the prompt, then each new token as it is chosen
            def __init__(self) -> None:
                self.puts, self.first = 0, 0.0

            def put(self, value: Any) -> None:
                self.puts += 1
                if self.puts == 2:
                    if device == "cuda":
                        torch.cuda.synchronize()
                    self.first = time.perf_counter()

            def end(self) -> None:
                pass

        def call(batch: int) -> tuple[float, float]:
            streamer = FirstToken()
            start = time.perf_counter()
            with torch.inference_mode():
                model.generate(tensors[batch], attention_mask=torch.ones_like(tensors[batch]),
                               max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0,
                               streamer=streamer)  # fmt: skip
            if device == "cuda":
                torch.cuda.synchronize()
            return streamer.first - start, time.perf_counter() - start

        return call

    sides = {
        "bundle fp16": ours,
        "PyTorch fp32": pytorch(torch.float32),
        "PyTorch fp16": pytorch(torch.float16),
    } | {name: runtime_call(other, prompts, new) for name, other in (extra or {}).items()}
    for call in sides.values():  # warm: kernels chosen, memory pools grown
        call(1), call(8)
    times: dict[str, dict[int, list[tuple[float, float]]]] = {s: {1: [], 8: []} for s in sides}
    for r in range(rounds):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for batch in (1, 8):
            for side in order:
                times[side][batch].append(sides[side](batch))
    table: dict[str, Any] = {}
    for side, by_batch in times.items():
        for batch, calls in by_batch.items():
            table.setdefault(side, {})[f"b{batch}"] = {
                "first_token_ms": statistics.median(f for f, _ in calls) * 1000,
                "decode_tokens_per_s": statistics.median(batch * (new - 1) / (t - f) for f, t in calls),
            }
    ratios = {}
    for name in extra or {}:
        for b in ("b1", "b8"):
            theirs, ours_ = table[name][b], table["bundle fp16"][b]
            ratios[f"decode {b}, {name} vs bundle fp16"] = (
                theirs["decode_tokens_per_s"] / ours_["decode_tokens_per_s"]
            )
            ratios[f"first token {b}, {name} vs bundle fp16"] = (
                theirs["first_token_ms"] / ours_["first_token_ms"]
            )
    for peer in ("PyTorch fp32", "PyTorch fp16"):
        for b in ("b1", "b8"):
            ours_, theirs = table["bundle fp16"][b], table[peer][b]
            ratios[f"decode {b} vs {peer}"] = ours_["decode_tokens_per_s"] / theirs["decode_tokens_per_s"]
            ratios[f"first token {b} vs {peer}"] = ours_["first_token_ms"] / theirs["first_token_ms"]
    return {"prompt": prompt, "new_tokens": new, "rounds": rounds, "device": device, "sides": table,
            "ratios": ratios}  # fmt: skip


def fused_probe(source: Path, out: Path, device: str) -> tuple[Any, dict[str, Any]]:
    """What a fused decoder would gain on this GPU: builder's GroupQueryAttention graph (built for a CPU, fp32),
    turned float16 (cache I/O float16, as O4 does) and without its attention_bias input (which ONNX Runtime's CUDA
    kernel refuses), as a text-generation pipeline (the runtime's own loop, its shared cache on the device). Without
    the bias it is exact only for rows without padding, which is all the timing feeds (random prompts of equal
    length); a real cuda fused bundle needs right-padded batches (docs/benchmarks.md). Timed, not checked."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.transformers.onnx_model import OnnxModel

    from builder.make.files import keep_inputs
    from builder.runtime.engine import OnnxEngine
    from builder.runtime.pipelines import PIPELINES

    relaxed = ["fidelity.min_agreement=0", "fidelity.min_cosine=0", "fidelity.min_greedy_match=0"]
    cpu = builder_cpu_build(source, out, *relaxed)
    model = onnx.load(str(cpu / "model.onnx"))
    declared = list(model.graph.input)
    dropped = 0
    for node in model.graph.node:
        if node.op_type == "GroupQueryAttention" and len(node.input) > 10 and node.input[10]:
            node.input[10] = ""  # attention_bias
            dropped += 1
    names = [v.name for v in (*model.graph.input, *model.graph.output)]
    keep = [n for n in names if not n.startswith(("past_key_values.", "present."))]
    half = OnnxModel(model)
    half.convert_float_to_float16(keep_io_types=keep)
    half.prune_graph()  # the bias' nodes; it drops position_ids too, which the runtime feeds: back it goes
    keep_inputs(half.model, declared)
    probe = out / "fused-fp16-probe.onnx"
    onnx.save(half.model, str(probe))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers = ["CUDAExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(probe), options, providers=providers)
    runtime = json.loads((cpu / "manifest.json").read_text())["runtime"]
    engine = OnnxEngine(cpu, runtime, sessions={"model": session})
    gen = PIPELINES["text-generation"](engine)
    cache = engine.kv_cache(gen.past_names, gen.present_names, (1, gen.kv_heads, 8, gen.head_dim))
    record = {"provider": session.get_providers()[0], "attention_bias_dropped": dropped,
              "cache": type(cache).__name__, "failures": []}  # fmt: skip
    return gen, record


def builder_cpu_build(source: Path, out: Path, *extra: str) -> Path:
    """The fused fp32 bundle for a CPU (what the probe starts from)."""
    import builder

    return builder.build(
        overrides=[f"model.source={source}", "task=text-generation", "hardware=avx2", "optimization=O2",
                   "quantization=none", "export.attention=fused", "evaluation=none", "benchmark=none",
                   f"output_dir={out}", f"cache_dir={WORK / 'cache'}", *extra],
        quiet=True,
    )  # fmt: skip


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# cuda_generation_check ({report['device']}, onnxruntime {report['onnxruntime']})", ""]
    r = report.get("decoder", {})
    lines.append(f"- decoder: attention {r.get('attention')}, cache {r.get('cache')} {r.get('cache_buffers')}, "
                 f"fidelity {r.get('fidelity')}, failures {r.get('failures') or 'none'}")  # fmt: skip
    lines.append(f"- the decoder build's benchmark: {r.get('benchmark')}")
    b = report.get("bart", {})
    lines.append(f"- bart: caches {b.get('caches')}, equal to PyTorch {b.get('equal_to_pytorch')}, "
                 f"failures {b.get('failures') or 'none'}")  # fmt: skip
    t = report.get("timing")
    if t and "sides" in t:
        lines += ["", f"prompt {t['prompt']}, {t['new_tokens']} new tokens, {t['rounds']} rounds, medians", "",
                  "| side | first token b1 (ms) | decode b1 (tok/s) | first token b8 (ms) | decode b8 (tok/s) |",
                  "| --- | --- | --- | --- | --- |"]  # fmt: skip
        for side, row in t["sides"].items():
            lines.append(f"| {side} | {row['b1']['first_token_ms']:.1f} | {row['b1']['decode_tokens_per_s']:.0f} "
                         f"| {row['b8']['first_token_ms']:.1f} | {row['b8']['decode_tokens_per_s']:.0f} |")  # fmt: skip
        lines += ["", *(f"- {k}: {v:.2f}x" for k, v in t["ratios"].items())]
        probe = report.get("fused_probe") or {}
        if probe.get("provider"):
            lines += ["", f"fused probe: {probe['provider']}, {probe['cache']}, attention_bias dropped from "
                      f"{probe['attention_bias_dropped']} layers (fp16 GroupQueryAttention; see fused_probe)"]  # fmt: skip
    lines += ["", f"failed: {report.get('failed') or 'none'}"]
    lines += [f"\n{key}'s traceback:\n```\n{report[key]['traceback']}```" for key in report
              if isinstance(report[key], dict) and "traceback" in report[key]]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument(
        "--dry-run", action="store_true", help="on a CPU host: tiny timing, CUDA checks skipped"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-timing", dest="timing", action="store_false")
    args = parser.parse_args()
    import onnxruntime
    import torch
    import transformers
    from tiny_models import make_decoder

    cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers() and torch.cuda.is_available()
    if not cuda and not args.dry_run:
        sys.exit("no CUDA here (onnxruntime or torch): run on the GPU machine, or pass --dry-run")
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if cuda else "cpu (dry run)",
        "onnxruntime": onnxruntime.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    start = time.perf_counter()
    tiny = make_decoder(WORK / "models", "llama")
    quick = ["benchmark=quick", "benchmark.new_tokens=8"]

    def decoder_checks() -> dict[str, Any]:
        model = transformers.AutoModelForCausalLM.from_pretrained(tiny).eval()
        folder = build(tiny, WORK / "out" / "decoder", *quick)
        record = check_bundle(folder, model, cuda)
        bench = record["benchmark"] = benchmark_record(folder)
        if cuda and not (
            bench["measured"] and bench["baseline_device"] == "cuda" and bench["baseline_dtype"] == "float16"
        ):
            record["failures"].append("benchmark against PyTorch fp16 on the GPU")
        return record

    def timing() -> dict[str, Any]:
        if args.dry_run:
            source, device, sizes = tiny, "cpu", (16, 6, 1)
            bundle = build(tiny, WORK / "out" / "decoder", *quick)
        else:
            source, device, sizes = (
                make_shape(WORK / "models" / "smollm2-135m-shape"),
                "cuda",
                (128, 128, args.rounds),
            )
            relaxed = ["fidelity.min_agreement=0", "fidelity.min_cosine=0", "fidelity.min_greedy_match=0"]
            bundle = build(
                source, WORK / "out" / "shape", "benchmark=none", "model.name=smollm2-135m-shape", *relaxed
            )
        extra = {}
        try:  # a side of its own in the same rounds; if it cannot be made, the rest is timed without it
            extra["fused probe fp16"], report["fused_probe"] = fused_probe(
                source, WORK / "out" / "probe", device
            )
        except Exception as error:
            report["fused_probe"] = {"failures": [f"raised {type(error).__name__}: {error}"[:2000]],
                                     "traceback": traceback.format_exc()[-6000:]}  # fmt: skip
        return time_generation(bundle, source, device, *sizes, extra=extra)

    # Each part runs even when one before it fails, and the report is written after each: device time is scarce,
    # and a run cut short by its time limit still leaves what it measured.
    parts = {"decoder": decoder_checks, "bart": lambda: check_seq2seq(cuda)}

    parts |= {"timing": timing} if args.timing else {}
    for key, part in parts.items():
        try:
            report[key] = part()
        except Exception as error:  # recorded, so the parts after it still run
            report[key] = {"failures": [f"raised {type(error).__name__}: {error}"[:2000]],
                           "traceback": traceback.format_exc()[-6000:]}  # fmt: skip
        report["failed"] = [f"{k}: {f}" for k in parts if k in report for f in report[k].get("failures", [])]
        report["seconds"] = round(time.perf_counter() - start, 1)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "cuda_generation_check.json").write_text(json.dumps(report, indent=2, default=str))
        (args.out / "cuda_generation_check.md").write_text(markdown(report))
    print(markdown(report))
    sys.exit(1 if report["failed"] else 0)


if __name__ == "__main__":
    main()
