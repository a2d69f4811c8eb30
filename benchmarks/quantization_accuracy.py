"""Accuracy and speed of the default model's quantization choices, in one table: the embedding-similarity
metric (Spearman on builder's shipped STS pairs) of fp32, dynamic int8 and static int8 (each calibration
method) bundles against the PyTorch baseline, and their end-to-end latencies measured interleaved in one run.

    .venv/bin/python benchmarks/quantization_accuracy.py [--rounds 7] [--calls 20] [--threads 2]

Target (issue 4): dynamic int8 keeps >= 99.5% of the baseline's Spearman correlation.
Writes benchmarks/results/quantization_accuracy.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from interleave import add_timing_args, interleaved, timing_record

import builder

RESULTS = Path(__file__).parent / "results"
TEXT = (
    "The Amazon rainforest is the largest tropical rainforest on Earth. It spans nine nations and holds an "
    "estimated 390 billion trees divided into 16,000 species, sheltering countless animals and insects."
)
VARIANTS = {
    "fp32": ["quantization=none"],
    "dynamic int8": ["quantization=dynamic"],
    "static int8 (minmax)": ["quantization=static", "quantization.calibration.method=minmax"],
    "static int8 (entropy)": ["quantization=static", "quantization.calibration.method=entropy"],
    "static int8 (percentile)": ["quantization=static", "quantization.calibration.method=percentile"],
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_timing_args(parser, calls=20)
    args = parser.parse_args()
    out = RESULTS / "artifacts"
    folders = {
        name: builder.build(overrides=[*o, "benchmark=none", f"output_dir={out}"], quiet=True)
        for name, o in VARIANTS.items()
    }
    bundles = {name: builder.load(f, intra_op_threads=args.threads) for name, f in folders.items()}
    rounds = interleaved({k: (lambda b=b: b(TEXT)) for k, b in bundles.items()}, args.rounds, args.calls)
    timing = timing_record(args, rounds)
    rows = {}
    for name, folder in folders.items():
        metrics = json.loads((folder / "metrics.json").read_text())
        ev = metrics["evaluation"]
        rows[name] = {
            "spearman": ev["bundle"]["spearman"],
            "baseline_spearman": ev["baseline"]["spearman"],
            "retention_percent": ev["retention_percent"],
            "embedding_cosine": metrics["fidelity"]["outputs"]["sentence_embedding"]["cosine_mean"],
            "p50_ms": timing["median_ms"][name],
            "size_mb": metrics["size"]["bundle_model_bytes"] / 1e6,
        }
    fp32 = rows["fp32"]["p50_ms"]
    md = [
        f"all-MiniLM-L6-v2, builder's 110 STS pairs; latency: end-to-end, batch 1, one ~45-token text, "
        f"{args.threads} threads, {args.rounds} interleaved rounds x {args.calls} calls",
        "",
        "| bundle | Spearman | PyTorch Spearman | kept | embedding cosine | p50 ms | vs fp32 | size MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *(
            f"| {n} | {r['spearman']:.4f} | {r['baseline_spearman']:.4f} | {r['retention_percent']:.2f}% | "
            f"{r['embedding_cosine']:.4f} | {r['p50_ms']:.2f} | {r['p50_ms'] / fp32:.2f}x | {r['size_mb']:.1f} |"
            for n, r in rows.items()
        ),
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quantization_accuracy.json").write_text(json.dumps(rows, indent=2))
    (RESULTS / "quantization_accuracy.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
