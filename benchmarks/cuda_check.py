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
`session.run` vs IOBinding at batch 1 and 32, interleaved. Needs only onnxruntime, tokenizers and numpy there;
where torch and transformers are there too, it times each bundle against the same architecture in PyTorch fp16 on
the same GPU. Writes cuda_check.json; exits 1 if a check fails. If the provider is compiled in but does not start,
it retries once with pip's nvidia library folders on LD_LIBRARY_PATH. Checked here on the CPU: every bundle
reports on_gpu false.

    PYTHONPATH=/tmp/ortgpu:. python3 benchmarks/cuda_check.py bindings .gpucheck --out $OUT

times five ways of moving host inputs and outputs through a CUDA session (run, IOBinding with inputs/outputs on
host or device, run_with_ort_values), interleaved, and checks they give the same outputs. Writes bindings.json.

Results: docs/benchmarks.md.

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
import functools
import json
import os
import statistics
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from interleave import interleaved

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


def run(folder: Path, out: Path, torch_side: bool = True) -> int:
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
    on_gpu = [n for n, r in report["bundles"].items() if r.get("on_gpu")]
    if on_gpu and torch_side:
        report["vs_torch_fp16"] = _vs_torch(folder, on_gpu)
    (out / "cuda_check.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))
    code = 1 if failed or not report["bundles"] else 0
    if not on_gpu and "CUDAExecutionProvider" in report["providers"] and "CUDA_CHECK_RETRY" not in os.environ:
        # The provider is compiled in but did not start: retry once with pip's CUDA libraries on the path.
        lib_dirs = [str(d) for e in sys.path if e for d in sorted(Path(e).glob("nvidia/*/lib")) if d.is_dir()]
        env = {**os.environ, "CUDA_CHECK_RETRY": "1"}
        env["LD_LIBRARY_PATH"] = ":".join([*lib_dirs, env.get("LD_LIBRARY_PATH", "")])
        print(f"retrying with LD_LIBRARY_PATH of {len(lib_dirs)} nvidia library folders", flush=True)
        args = [sys.executable, __file__, "run", str(folder), "--out", str(out / "with_nvidia_libs")]
        code = subprocess.run(args + ([] if torch_side else ["--no-torch"]), env=env).returncode
    return code


TORCH_CLASSES = {
    "feature-extraction": "AutoModel",
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
}


def _vs_torch(folder: Path, names: list[str], rounds: int = 5, calls: int = 50) -> dict:
    """Bundle (IOBinding) vs the same architecture in PyTorch fp16 on the same GPU, interleaved.

    PyTorch gets the bundle's config.json with random weights (timing does not depend on them);
    both sides take host inputs and return host outputs, as a pipeline call does.
    """
    try:
        import torch
        import transformers
    except ImportError as e:
        return {"skipped": f"{e}"}
    if not torch.cuda.is_available():
        return {"skipped": "torch sees no GPU"}
    import builder

    result: dict = {"torch": torch.__version__, "transformers": transformers.__version__}
    for name in names:
        bundle = builder.load(folder / "bundles" / name)
        config = transformers.AutoConfig.from_pretrained(folder / "bundles" / name)
        model_class = getattr(transformers, TORCH_CLASSES[bundle.task])
        model = model_class.from_config(config).to("cuda", torch.float16).eval()
        result[name] = _time_vs_torch(bundle, model, torch, rounds, calls)
        del model
    return result


def _time_vs_torch(bundle, model, torch, rounds: int, calls: int, device: str = "cuda") -> dict:  # type: ignore[no-untyped-def]
    outputs = [o.name for o in bundle.session.get_outputs()]
    result = {}
    for batch in (1, 32):
        feeds = _feeds(bundle.engine.input_names, batch)

        def torch_call() -> list[np.ndarray]:
            with torch.inference_mode():
                out = model(**{k: torch.from_numpy(v).to(device) for k, v in feeds.items()})  # noqa: B023
                return [t.float().cpu().numpy() for t in out.values() if isinstance(t, torch.Tensor)]

        sides = {"bundle": lambda: bundle.engine.run(outputs, feeds), "torch_fp16": torch_call}  # noqa: B023
        ms = {k: statistics.median(v) for k, v in interleaved(sides, rounds, calls).items()}
        result[f"batch_{batch}"] = {**ms, "bundle_over_torch": ms["bundle"] / ms["torch_fp16"]}
    return result


def bindings(folder: Path, out: Path, rounds: int = 5, calls: int = 100, only: str = "") -> int:
    """Ways to move host inputs and outputs through a CUDA session, interleaved; medians in ms."""
    import onnxruntime as ort

    import builder

    def plain(session, names, feeds):  # type: ignore[no-untyped-def]
        return session.run(names, feeds)

    def bind(session, names, feeds, out_device="cuda", in_device=None):  # type: ignore[no-untyped-def]
        binding = session.io_binding()
        for name, array in feeds.items():
            if in_device:
                binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, in_device, 0))
            else:
                binding.bind_cpu_input(name, array)
        for name in names:
            binding.bind_output(name, out_device)
        session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()

    def ort_values(session, names, feeds):  # type: ignore[no-untyped-def]
        values = {k: ort.OrtValue.ortvalue_from_numpy(v, "cuda", 0) for k, v in feeds.items()}
        return [v.numpy() for v in session.run_with_ort_values(names, values)]

    ways = {
        "run": plain,
        "bind_cpu_in_cuda_out": bind,
        "bind_cpu_in_cpu_out": lambda s, n, f: bind(s, n, f, out_device="cpu"),
        "bind_cuda_in_cuda_out": lambda s, n, f: bind(s, n, f, in_device="cuda"),
        "run_with_ort_values": ort_values,
    }
    report: dict = {"onnxruntime": ort.__version__}
    for path in sorted((folder / "bundles").glob(f"*{only}*" if only else "*")):
        bundle = builder.load(path)
        if bundle.session.get_providers()[0] != "CUDAExecutionProvider":
            report[path.name] = {"skipped": "not on the GPU"}
            continue
        session, names = bundle.session, [o.name for o in bundle.session.get_outputs()]
        report[path.name] = {}
        for batch in (1, 32):
            feeds = _feeds(bundle.engine.input_names, batch)
            reference = plain(session, names, feeds)
            same = {
                w: all(
                    np.allclose(a, b, atol=1e-3)
                    for a, b in zip(reference, f(session, names, feeds), strict=True)
                )
                for w, f in ways.items()
            }
            runners = {w: functools.partial(f, session, names, feeds) for w, f in ways.items()}
            medians = interleaved(runners, rounds, calls)
            report[path.name][f"batch_{batch}"] = {
                w: {"ms": statistics.median(v), "same_outputs": same[w]} for w, v in medians.items()
            }
    out.mkdir(parents=True, exist_ok=True)
    (out / "bindings.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


def _feeds(input_names: list[str], batch: int, length: int = 128) -> dict[str, np.ndarray]:
    feeds = {
        "input_ids": np.full((batch, length), 5, dtype=np.int64),
        "attention_mask": np.ones((batch, length), dtype=np.int64),
        "token_type_ids": np.zeros((batch, length), dtype=np.int64),
    }
    return {n: feeds[n] for n in input_names}


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
        feeds = _feeds(engine.input_names, batch)
        runners = {
            "run": functools.partial(engine.session.run, names, feeds),
            "io_binding": functools.partial(engine.run, names, feeds),  # the engine binds on the GPU
        }
        medians = interleaved(runners, rounds, calls)
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
    r.add_argument(
        "--no-torch", dest="torch_side", action="store_false", help="skip the PyTorch fp16 comparison"
    )
    b = sub.add_parser("bindings")
    b.add_argument("folder", type=Path)
    b.add_argument("--out", type=Path, default=Path("."))
    b.add_argument("--rounds", type=int, default=5)
    b.add_argument("--calls", type=int, default=100)
    b.add_argument("--only", default="", help="bundles whose folder name contains this")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.out, args.default_model)
    elif args.command == "bindings":
        sys.exit(bindings(args.folder, args.out, args.rounds, args.calls, args.only))
    else:
        sys.exit(run(args.folder, args.out, args.torch_side))


if __name__ == "__main__":
    main()
