"""The GPU check of cuda bundles (issue 3), prepared here and run on the GPU machine in one call.

Here, with the build tools:

    .venv/bin/python benchmarks/cuda_check.py prepare [--default-model]

writes `.gpucheck/` (git-ignored): a `hardware=cuda optimization=O4 quantization=none` (fp16) bundle of a tiny
random model per task, and the raw outputs of the same models' fp32 CPU bundles on fixed inputs. With
--default-model it also builds the default MiniLM as a cuda bundle (~45 MB: carry it in a call of its own).

On the GPU machine, after unpacking ONNX Runtime's CUDA build (../shared/gpu/README.md):

    PYTHONPATH=/tmp/ortgpu:. python3 benchmarks/cuda_check.py run .gpucheck --out $OUT

checks per bundle: CUDAExecutionProvider active with IOBinding, no CPU fallback warning; raw outputs against the
fp32 CPU outputs (cosine per example); the task pipeline from 4 threads equals sequential calls; and latency of
`session.run` vs IOBinding at batch 1 and 32, interleaved. Needs only onnxruntime, tokenizers and numpy there.
Writes cuda_check.json; exits 1 if a check fails. Checked here on the CPU: every bundle reports on_gpu false.

The device calls, back to back (each carries at most 64 MiB; `bash ../shared/gpu/prepare-ort-gpu.sh` first):
  1-3. carry [.ortgpu/partNN]: mkdir -p /tmp/parts && cp .ortgpu/partNN /tmp/parts/
  4.   carry [.gpucheck/bundles/minilm_l6-...] (only with --default-model): mkdir -p /tmp/gc && cp -r .gpucheck /tmp/gc/
  5.   carry [.ortgpu/part03, .ortgpu/sum.txt, .ortgpu/unpack-ort-gpu.sh, .gpucheck/expected.json, and each
       tiny bundle folder]: cp .ortgpu/part03 /tmp/parts/ && bash .ortgpu/unpack-ort-gpu.sh
       && { cp -r /tmp/gc/.gpucheck/bundles/* .gpucheck/bundles/ 2>/dev/null; true; }
       && PYTHONPATH=/tmp/ortgpu:. python3 benchmarks/cuda_check.py run .gpucheck --out $OUT
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

TASK_INPUTS = {
    "feature-extraction": [
        "Hello world.",
        "A much longer sentence about the weather in the mountains today.",
        "",
    ],
    "text-classification": ["I loved it.", "Terrible service, never again!", "   "],
    "token-classification": ["George Washington lived in Virginia.", "Apple is in Cupertino, California."],
    "question-answering": [
        {"question": "Who lived in Virginia?", "context": "George Washington lived in Virginia for years."},
        {"question": "Where is Apple?", "context": "Apple is headquartered in Cupertino, California."},
    ],
}
MIN_COSINE = 0.995  # fp16 on the GPU vs fp32 on the CPU, per example and output


def encodings(bundle, task: str) -> list:  # type: ignore[no-untyped-def]
    items = TASK_INPUTS[task]
    if task == "question-answering":
        return bundle.tokenizer.encode(
            [i["question"] for i in items], [i["context"] for i in items], strategy="only_second"
        )
    return bundle.tokenizer.encode(items)


def raw_outputs(bundle, task: str) -> dict[str, list[np.ndarray]]:  # type: ignore[no-untyped-def]
    names = [o.name for o in bundle.session.get_outputs()]
    values = bundle.engine.infer(encodings(bundle, task), names)
    return dict(zip(names, values, strict=True))


# ----------------------------------------------------------------------------------------------- prepare


def prepare(out: Path, default_model: bool) -> None:
    sys.path.insert(0, str(HERE.parent / "tests"))
    from tiny_models import make_model

    import builder

    models = out / "models"
    cases = [("bert", task) for task in TASK_INPUTS]
    sources = {task: make_model(models, arch, task) for arch, task in cases}
    if default_model:
        sources["default"] = None
    expected = {}
    for name, source in sources.items():
        # tiny random models have near-tied logits: fp16 may flip an argmax without being wrong
        common = [f"model.source={source}", f"task={name}", "fidelity.min_agreement=0.5"] if source else []
        common += ["benchmark=none", "evaluation=none", f"cache_dir={out / '.cache'}"]
        cuda = builder.build(
            overrides=[
                *common,
                "hardware=cuda",
                "optimization=O4",
                "quantization=none",
                f"output_dir={out / 'bundles'}",
            ],
            quiet=True,
        )
        cpu = builder.build(
            overrides=[
                *common,
                "hardware=avx2",
                "optimization=O2",
                "quantization=none",
                f"output_dir={out / 'cpu'}",
            ],
            quiet=True,
        )
        reference = builder.load(cpu)
        expected[cuda.name] = {
            "task": reference.task,
            "outputs": {
                k: [v.tolist() for v in vs] for k, vs in raw_outputs(reference, reference.task).items()
            },
        }
    (out / "expected.json").write_text(json.dumps(expected))
    print(f"prepared {out}: {', '.join(expected)}")


# ---------------------------------------------------------------------------------------------------- run


def run(folder: Path, out: Path) -> int:
    import onnxruntime as ort

    import builder

    expected = json.loads((folder / "expected.json").read_text())
    report = {"onnxruntime": ort.__version__, "providers": ort.get_available_providers(), "bundles": {}}
    failed = []
    for name, want in expected.items():
        path = folder / "bundles" / name
        if not path.is_dir():
            report["bundles"][name] = {"skipped": "not carried"}
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                bundle = builder.load(path)
                raw_outputs(bundle, bundle.task)
        except Exception as e:  # e.g. fp16 kernels missing where the CUDA build is not on PYTHONPATH
            report["bundles"][name] = {"error": f"{type(e).__name__}: {e}"[:500]}
            failed.append(name)
            continue
        r: dict = {
            "task": bundle.task,
            "provider": bundle.session.get_providers()[0],
            "io_binding": bundle.engine.io_binding,
            "fallback_warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
        }
        r["on_gpu"] = (
            r["provider"] == "CUDAExecutionProvider" and r["io_binding"] and not r["fallback_warnings"]
        )
        got = raw_outputs(bundle, bundle.task)
        r["cosine_min"] = {}
        for output, rows in want["outputs"].items():
            cos = [
                _cosine(np.asarray(a, dtype=np.float64), g) for a, g in zip(rows, got[output], strict=True)
            ]
            r["cosine_min"][output] = min(cos)
        r["matches_fp32"] = all(c >= MIN_COSINE for c in r["cosine_min"].values())
        r["threads_equal_sequential"] = _threads_equal(bundle)
        r["latency_ms"] = _latency(bundle) if r["on_gpu"] else None
        report["bundles"][name] = r
        if not (r["on_gpu"] and r["matches_fp32"] and r["threads_equal_sequential"]):
            failed.append(name)
    report["failed"] = failed
    out.mkdir(parents=True, exist_ok=True)
    (out / "cuda_check.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))
    return 1 if failed or not report["bundles"] else 0


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), np.asarray(b, dtype=np.float64).ravel()
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    return 1.0 if denominator == 0 else float(a @ b / denominator)


def _threads_equal(bundle) -> bool:  # type: ignore[no-untyped-def]
    inputs = TASK_INPUTS[bundle.task]
    call = (lambda x: bundle(**x)) if bundle.task == "question-answering" else bundle
    sequential = [json.dumps(call(x), default=_plain, sort_keys=True) for x in inputs * 4]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda x: json.dumps(call(x), default=_plain, sort_keys=True), inputs * 4))
    return parallel == sequential


def _plain(value):  # type: ignore[no-untyped-def]
    return np.round(np.asarray(value, dtype=np.float64), 4).tolist()


def _latency(bundle, rounds: int = 5, calls: int = 50) -> dict:  # type: ignore[no-untyped-def]
    """session.run vs IOBinding, interleaved round by round, medians of round medians (ms)."""
    engine = bundle.engine
    names = [o.name for o in bundle.session.get_outputs()]
    result = {}
    for batch in (1, 32):
        feeds = {
            "input_ids": np.full((batch, 128), 5, dtype=np.int64),
            "attention_mask": np.ones((batch, 128), dtype=np.int64),
            "token_type_ids": np.zeros((batch, 128), dtype=np.int64),
        }
        feeds = {n: feeds[n] for n in engine.input_names}
        medians: dict[str, list[float]] = {"run": [], "io_binding": []}
        for r in range(rounds + 1):  # round 0 warms up
            for mode in ("run", "io_binding") if r % 2 else ("io_binding", "run"):
                engine.io_binding = mode == "io_binding"
                times = []
                for _ in range(calls):
                    start = time.perf_counter()
                    engine.run(names, feeds)
                    times.append(time.perf_counter() - start)
                if r:
                    medians[mode].append(statistics.median(times) * 1000)
        engine.io_binding = True
        result[f"batch_{batch}"] = {mode: statistics.median(v) for mode, v in medians.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", type=Path, default=HERE.parent / ".gpucheck")
    p.add_argument("--default-model", action="store_true")
    r = sub.add_parser("run")
    r.add_argument("folder", type=Path)
    r.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.out, args.default_model)
    else:
        sys.exit(run(args.folder, args.out))


if __name__ == "__main__":
    main()
