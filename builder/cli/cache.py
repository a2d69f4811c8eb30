"""`builder cache info|clear`: the stage cache."""

from __future__ import annotations

import argparse
from pathlib import Path

from builder.cli.fail import fail
from builder.errors import BuilderError


def cache(argv: list[str]) -> int:
    from builder.make.cache import StageCache

    parser = argparse.ArgumentParser(prog="builder cache")
    parser.add_argument("action", choices=("info", "clear"))
    parser.add_argument("--dir", type=Path, default=Path("artifacts/.cache"), help="cache folder (cache_dir)")
    args = parser.parse_args(argv)
    store = StageCache(args.dir)
    if args.action == "clear":
        from builder.make.workspace import remove_dead

        try:
            removed = store.clear()
        except BuilderError as e:
            return fail(e)
        kept = f"; kept {store.kept_in_use} in use by running builds" if store.kept_in_use else ""
        print(f"removed {removed} cache entries from {args.dir}{kept}")
        # The default cache lies in the output folder, beside the work folders of builds.
        for folder in dict.fromkeys((args.dir, args.dir.parent)):
            gone = remove_dead(folder)
            if gone:
                print(f"removed {gone} work folder(s) of builds that died in {folder}")
        return 0
    info = store.info()
    print(f"stage cache {info['root']}")
    width = max((len(stage) for stage in info["stages"]), default=0)
    for stage, s in info["stages"].items():
        print(f"  {stage:<{width}} {s['entries']:>4} entries  {s['bytes'] / 1e6:8.1f} MB")
    if not info["stages"]:
        print("  (empty)")
    return 0
