"""Builds cuda bundles ON a GPU machine and checks what their metrics claim (issues 3 and 5).

On the GPU machine (no network, no install: pure-Python build tools carried in `.devpy/`, ONNX Runtime's CUDA
build unpacked in /tmp/ortgpu as ../shared/gpu/README.md says):

    ln -sfn ../conf builder/conf   # the source tree, not installed: builder.conf is the top-level conf/
    PYTHONPATH=/tmp/ortgpu:.:.devpy python3 benchmarks/cuda_build_check.py --out $OUT

Prepare `.devpy/` here: `.venv/bin/python benchmarks/cuda_build_check.py --prepare` (hydra, omegaconf, antlr4).

Checks, on tiny random models (feature extraction, question answering) built there:
- `hardware=cuda optimization=O4 quantization=none` builds; fidelity runs on CUDAExecutionProvider and
  passes; the benchmark is measured on the GPU against PyTorch on the same GPU (baseline_device cuda).
- The benchmark held the host lock and recorded the load of other processes while it timed.
- `hardware=auto` with O4 picks the cuda profile on that host.
- The same build under an onnxruntime without CUDA (the machine's own CPU build, in a subprocess without
  /tmp/ortgpu) is honest: its benchmark says it was not measured, and why.
Writes cuda_build_check.json; exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = Path("/tmp/cuda-build-check")


def prepare() -> None:
    import antlr4
    import hydra
    import omegaconf

    target = ROOT / ".devpy"
    shutil.rmtree(target, ignore_errors=True)
    for module in (hydra, omegaconf, antlr4):
        source = Path(module.__file__).parent
        shutil.copytree(source, target / source.name, ignore=shutil.ignore_patterns("__pycache__"))
    print(f"prepared {target}")


def build(task: str, hardware: str, out: Path) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_models import make_model

    import builder

    source = make_model(WORK / "models", "bert", task)
    folder = builder.build(
        overrides=[
            f"model.source={source}",
            f"task={task}",
            f"hardware={hardware}",
            "optimization=O4",
            "quantization=none",
            "evaluation=none",  # the datasets package is not on the GPU machine
            "fidelity.min_agreement=0.5",  # random tiny models have near-tied logits; fp16 may flip one
            f"output_dir={out}",
            f"cache_dir={WORK / 'cache'}",
        ],
        quiet=True,
    )
    metrics = json.loads((folder / "metrics.json").read_text())
    runtime = json.loads((folder / "manifest.json").read_text())["runtime"]
    return {
        "bundle": folder.name,
        "hardware": runtime["hardware"]["name"],
        "fidelity": {k: metrics["fidelity"].get(k) for k in ("measured", "provider", "passed", "reason")},
        "benchmark": {
            k: metrics["benchmark"].get(k)
            for k in (
                "measured",
                "reason",
                "provider",
                "baseline_device",
                "threads",
                "host_exclusive",
                "waited_for_host_s",
                "host_load_by_others",
                "warmup_calls",
            )
        }
        | {
            "results": [
                {
                    "batch": r["batch_size"],
                    "tokens": r["sequence_length"],
                    "bundle_p50_ms": r["bundle"]["p50_ms"],
                    "pytorch_p50_ms": r.get("pytorch", {}).get("p50_ms"),
                    "speedup_p50": r.get("speedup_p50"),
                }
                for r in metrics["benchmark"].get("results", [])
            ]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prepare", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--one", nargs=2, metavar=("TASK", "HARDWARE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        return prepare()
    if args.one:  # one build, reported as JSON on stdout (used for the subprocess without CUDA)
        print("RESULT " + json.dumps(build(*args.one, WORK / "out-no-cuda")))
        return
    import onnxruntime

    report: dict = {
        "onnxruntime": onnxruntime.__version__,
        "providers": onnxruntime.get_available_providers(),
    }
    failed = []
    for task in ("feature-extraction", "question-answering"):
        r = report[f"cuda {task}"] = build(task, "cuda", WORK / "out")
        ok = (
            r["fidelity"]["provider"] == "CUDAExecutionProvider"
            and r["fidelity"]["passed"]
            and r["benchmark"]["measured"]
            and r["benchmark"]["provider"] == "CUDAExecutionProvider"
            and r["benchmark"]["baseline_device"] == "cuda"
            and r["benchmark"]["host_exclusive"] is True  # timed holding the host lock (builder/host_lock.py)
            and isinstance(r["benchmark"]["host_load_by_others"], float)
        )
        failed += [] if ok else [f"cuda {task}"]
    try:
        r = report["auto feature-extraction"] = build("feature-extraction", "auto", WORK / "out-auto")
        failed += [] if r["hardware"] == "cuda" else ["auto picks cuda"]
    except Exception as e:  # e.g. no profile this host runs supports O4
        report["auto feature-extraction"] = {"error": f"{type(e).__name__}: {e}"}
        failed.append("auto picks cuda")
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p and "ortgpu" not in p)}
    proc = subprocess.run(
        [sys.executable, __file__, "--one", "feature-extraction", "cuda"],
        env=env,
        capture_output=True,
        text=True,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if lines:
        r = report["cuda feature-extraction, onnxruntime without CUDA"] = json.loads(lines[-1][7:])
        failed += [] if r["benchmark"]["measured"] is False else ["no-CUDA build claims measurements"]
    else:
        report["cuda feature-extraction, onnxruntime without CUDA"] = {"error": proc.stderr[-2000:]}
        failed.append("no-CUDA build")
    report["failed"] = failed
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cuda_build_check.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
