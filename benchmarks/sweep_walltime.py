"""Wall time of a 6-bundle sweep of the default model (2 hardware x 3 quantization, one `builder -m`, shared
stage cache) vs the same 6 bundles as separate fresh builds (one process each, no cache), in one run.

    .venv/bin/python benchmarks/sweep_walltime.py [--launcher basic|joblib]

Target (issue 5): sweep <= 0.4x the separate builds. Writes benchmarks/results/sweep_walltime.{json,md}.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    try:
        separate = []
        for hw, q in itertools.product(HARDWARE, QUANTIZATION):
            separate.append(
                timed(
                    [
                        f"hardware={hw}",
                        f"quantization={q}",
                        "cache_dir=null",
                        f"output_dir={root / 'separate' / f'{hw}-{q}'}",
                    ]
                )
            )
        launcher = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if args.launcher == "joblib" else []
        sweep = timed(
            [
                "-m",
                *launcher,
                f"hardware={','.join(HARDWARE)}",
                f"quantization={','.join(QUANTIZATION)}",
                f"output_dir={root / 'sweep'}",
            ]
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "launcher": args.launcher,
        "separate_s": separate,
        "separate_total_s": sum(separate),
        "sweep_s": sweep,
        "ratio": sweep / sum(separate),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sweep_walltime.json").write_text(json.dumps(result, indent=2))
    md = (
        f"6 bundles (hardware {'/'.join(HARDWARE)} x quantization {'/'.join(QUANTIZATION)}), default model: "
        f"separate fresh builds {sum(separate):.1f} s ({', '.join(f'{s:.1f}' for s in separate)}); "
        f"one sweep ({args.launcher} launcher, shared stage cache) {sweep:.1f} s = {result['ratio']:.2f}x"
    )
    (RESULTS / "sweep_walltime.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
