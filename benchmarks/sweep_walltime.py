"""Wall time of a 6-bundle sweep of the default model (2 hardware x 3 quantization, one `builder -m`, shared
stage cache) vs the same 6 bundles as separate fresh builds (one process each, no cache), in one run.

    .venv/bin/python benchmarks/sweep_walltime.py [--launcher basic|joblib] [--rounds 3] [OVERRIDE ...]

Target (issue 5): sweep <= 0.4x the separate builds. Writes benchmarks/results/sweep_walltime.{json,md}.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from interleave import interleaved

RESULTS = Path(__file__).parent / "results"
BUILDER = Path(sys.executable).with_name("builder")
HARDWARE = ("avx2", "avx512_vnni")
QUANTIZATION = ("none", "dynamic", "static")


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([str(BUILDER), *args], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--launcher", choices=("basic", "joblib"), default="basic")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds; each runs both sides, order alternating"
    )
    parser.add_argument("overrides", nargs="*", help="config overrides for every build, e.g. benchmark=none")
    args = parser.parse_intermixed_args()
    root = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    launcher = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if args.launcher == "joblib" else []
    fresh = itertools.count()
    per_build: list[list[float]] = []

    def separate() -> None:  # one process per bundle, no stage cache
        out = root / f"separate-{next(fresh)}"
        per_build.append(
            [
                timed(
                    [
                        f"hardware={hw}",
                        f"quantization={q}",
                        "cache_dir=null",
                        f"output_dir={out / f'{hw}-{q}'}",
                        *args.overrides,
                    ]
                )
                for hw, q in itertools.product(HARDWARE, QUANTIZATION)
            ]
        )
        shutil.rmtree(out, ignore_errors=True)

    def sweep() -> None:  # one -m run, a fresh stage cache
        out = root / f"sweep-{next(fresh)}"
        timed(
            [
                "-m",
                *launcher,
                f"hardware={','.join(HARDWARE)}",
                f"quantization={','.join(QUANTIZATION)}",
                f"output_dir={out}",
                *args.overrides,
            ]
        )
        shutil.rmtree(out, ignore_errors=True)

    try:
        rounds = interleaved({"separate": separate, "sweep": sweep}, args.rounds, calls=1, warmup=0)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    seconds = {name: [ms / 1000 for ms in values] for name, values in rounds.items()}
    ratios = [w / s for w, s in zip(seconds["sweep"], seconds["separate"], strict=True)]
    result = {
        "launcher": args.launcher,
        "overrides": args.overrides,
        "rounds": args.rounds,
        "separate_s": seconds["separate"],
        "separate_per_build_s": per_build,
        "sweep_s": seconds["sweep"],
        "round_ratios": ratios,
        "ratio": statistics.median(seconds["sweep"]) / statistics.median(seconds["separate"]),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "sweep_walltime" + "".join(f"-{o.replace('=', '_')}" for o in args.overrides)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2))
    md = (
        f"6 bundles (hardware {'/'.join(HARDWARE)} x quantization {'/'.join(QUANTIZATION)}), default model"
        f"{' with ' + ' '.join(args.overrides) if args.overrides else ''}, "
        f"{args.rounds} rounds in alternating order: separate fresh builds median "
        f"{statistics.median(seconds['separate']):.1f} s ({', '.join(f'{s:.1f}' for s in seconds['separate'])}); "
        f"one sweep ({args.launcher} launcher, shared stage cache) median {statistics.median(seconds['sweep']):.1f} s "
        f"({', '.join(f'{s:.1f}' for s in seconds['sweep'])}) = {result['ratio']:.2f}x "
        f"(per round {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    (RESULTS / f"{stem}.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
