"""`builder report DIR...`: one table, CSV and plot of the bundles in output folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from builder.cli.fail import fail
from builder.errors import BuilderError


def report(argv: list[str]) -> int:
    from builder.make import report as sweep_report

    parser = argparse.ArgumentParser(prog="builder report", description="one table, CSV and plot of bundles")
    parser.add_argument("folders", type=Path, nargs="+", help="output folders (or bundle folders)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the first folder)")
    args = parser.parse_args(argv)
    rows = sweep_report.collect(args.folders, skipped := [])
    for where, why in skipped:
        print(f"skipped {where}: {why}", file=sys.stderr)
    if not rows:
        return fail(BuilderError(f"no bundles in {', '.join(map(str, args.folders))}"))
    out = args.out or args.folders[0]
    try:
        paths = sweep_report.write(rows, out)
    except OSError as e:
        return fail(
            BuilderError(f"report --out {out}: cannot write there ({e.strerror}). Give another --out")
        )
    print(paths["markdown"].read_text(), end="")
    print(f"\nwrote {paths['markdown']}, {paths['csv']}, {paths['plot']}")
    return 0
