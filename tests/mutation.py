"""Mutation audit of the code where a silent change costs users most: break it one small change at a time
(cosmic-ray), run the tests that claim to guard it, and list the changes no test noticed (survivors).

    .venv/bin/pip install cosmic-ray==8.7.0
    .venv/bin/python tests/mutation.py                 # every target below (about an hour on 2 cores)
    .venv/bin/python tests/mutation.py manifest cache  # some of them
    .venv/bin/python tests/mutation.py --recheck metrics  # only the last run's survivors, against today's tests

cosmic-ray edits the source files in place, one mutant at a time, and restores them: run it on a clean
checkout with nothing else running from it (a clone: `PYTHONPATH=<clone>` and `ln -s ../conf builder/conf`
there, or its tests read another checkout's configs; check_imports() refuses to start otherwise). Only the functions named per target are mutated (their lines
are found afresh each run). Results: tests/.mutation/<target>.txt (a survivor report) and a summary line per
target; docs/benchmarks.md keeps the last counts and why each kept survivor is harmless.
"""

from __future__ import annotations

import ast
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / ".mutation"
# Its own temp root: pytest sessions started side by side delete each other's /tmp/pytest-of-<user> folders.
PYTEST = f"{sys.executable} -m pytest -x -q -p no:cacheprovider -m 'not slow' --basetemp={OUT / 'tmp'}"

# target: (module, the functions to mutate, the tests that guard them)
TARGETS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "manifest": (
        "builder/runtime/manifest.py",
        ("read_manifest", "_shape_problems", "verify", "_external_data_problems"),
        # node ids, not -k: a -k applies to every file named and would deselect test_bundle.py's tests too
        "tests/test_hostile.py::test_tampering tests/test_bundle.py tests/test_format_v1.py "
        "tests/test_hub.py::test_links_outside_the_cache_and_unknown_files_are_still_refused "
        "tests/test_hub.py::test_a_local_dir_download_loads",
    ),
    "external-data": (
        "builder/runtime/external_data.py",
        (
            "_tensor_locations",
            "_sparse_locations",
            "_attribute_locations",
            "_graph_locations",
            "_function_locations",
            "external_data_locations",
        ),  # fmt: skip
        "tests/test_hostile.py::test_tampering tests/test_bundle.py::test_external_data_leading_outside_is_refused "
        "tests/test_bundle.py::test_external_data_inside_the_bundle_loads",
    ),
    "bundle-id": ("builder/make/writer.py", ("bundle_id",), "tests/test_honesty.py -k bundle_id"),
    "fidelity": (
        "builder/make/stages/fidelity.py",
        ("_gate",),
        "tests/test_honesty.py -k 'fidelity or hair'",
    ),
    "metrics": (
        "builder/metrics/functions.py",
        (
            "normalize_answer",
            "exact_match",
            "token_f1",
            "squad_v2",
            "accuracy_macro_f1",
            "_end_of_chunk",
            "_start_of_chunk",
            "entities",
            "entity_f1",
            "_prf",
            "rank",
            "pearson",
            "similarity_correlation",
            "perplexity",
        ),
        # node ids, not -k: -k would deselect test_metrics.py as well
        "tests/test_metrics.py tests/test_honesty.py::test_evaluation_scores_the_gold_answers_perfectly "
        "tests/test_honesty.py::test_minilm_spearman_on_the_shipped_sts_set_matches_an_independent_computation",
    ),
    "report": ("builder/make/report.py", ("pareto", "best_per_hardware"), "tests/test_honesty.py -k report"),
    "cache": (
        "builder/make/cache.py",
        ("load", "store", "entries", "unfinished", "clear"),
        "tests/test_cache.py",
    ),
    "host-lock": (
        "builder/make/host_lock.py",
        ("_acquire", "_release", "computing", "measuring"),
        "tests/test_host_lock.py tests/test_honesty.py -k lock",
    ),
}


def function_lines(module: Path, names: tuple[str, ...]) -> list[str]:
    """'start-end' line ranges of the named functions (methods included) as the file is now."""
    tree = ast.parse(module.read_text())
    found = {
        node.name: f"{node.lineno}-{node.end_lineno}"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names
    }
    missing = sorted(set(names) - set(found))
    if missing:
        sys.exit(f"{module}: no function {', '.join(missing)} (update TARGETS in {Path(__file__).name})")
    return list(found.values())


def check_imports() -> None:
    """The tests must import this checkout's builder and its conf/: an editable install of another checkout maps
    `builder.conf` to that checkout's conf/ (a clone run with PYTHONPATH=<clone> reads the wrong configs, every
    build fails, and every mutant counts as killed). A clone gets its own with `ln -s ../conf builder/conf`."""
    code = "import builder, importlib.resources as r; print(builder.__file__); print(r.files('builder.conf'))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    outside = [p for p in found.split() if not Path(p).resolve().is_relative_to(ROOT)]
    if outside:
        sys.exit(
            f"the tests would import {', '.join(outside)}, not this checkout ({ROOT}): set PYTHONPATH={ROOT} "
            "and, in a clone, run `ln -s ../conf builder/conf`"
        )


def check_clean(module: str) -> None:
    """The module must be as committed: a run whose last mutant was never restored (its process killed) leaves that
    mutant in the file, and the next run would test every mutant on a broken base, each one "killed"."""
    changed = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", module], cwd=ROOT).returncode
    if changed:
        sys.exit(
            f"{module} differs from the last commit (a mutant left behind?): `git checkout {module}` first"
        )


def run(target: str) -> tuple[int, int]:
    module, names, tests = TARGETS[target]
    check_clean(module)
    OUT.mkdir(exist_ok=True)
    config, session = OUT / f"{target}.toml", OUT / f"{target}.sqlite"
    session.unlink(missing_ok=True)
    lines = ", ".join(f'"{r}"' for r in function_lines(ROOT / module, names))
    config.write_text(
        "[cosmic-ray]\n"
        f'module-path = "{module}"\n'
        "timeout = 150.0\n"  # a test run takes at most ~50 s; mutants that deadlock a lock wait this long
        "excluded-modules = []\n"
        f'test-command = "{PYTEST} {tests}"\n\n'
        '[cosmic-ray.distributor]\nname = "local"\n\n'
        f'[cosmic-ray.filters.line-filter.lines]\n"{module}" = [{lines}]\n'
    )
    bin_dir = Path(sys.executable).parent
    for step in (
        ["cosmic-ray", "init", str(config), str(session)],
        ["cr-filter-lines", "--config", str(config), str(session)],
        ["cosmic-ray", "exec", str(config), str(session)],
    ):
        subprocess.run([str(bin_dir / step[0]), *step[1:]], cwd=ROOT, check=True)
    dump = subprocess.run(
        [str(bin_dir / "cosmic-ray"), "dump", str(session)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    source = (ROOT / module).read_text().splitlines()
    survivors, tested = [], 0
    for line in dump.splitlines():
        item, result = json.loads(line)
        if result is None or result["worker_outcome"] == "skipped":
            continue
        tested += 1
        if result["test_outcome"] == "survived":
            (m,) = item["mutations"]
            row = m["start_pos"][0]
            survivors.append(
                f"{module}:{row} in {m['definition_name']}: {m['operator_name']} #{m['occurrence']}\n"
                f"    {source[row - 1].strip()}\n{result['diff'] or ''}"
            )
    (OUT / f"{target}.txt").write_text(
        f"{len(survivors)} of {tested} mutants survived\n\n" + "\n".join(survivors)
    )
    return len(survivors), tested


def recheck(target: str) -> tuple[int, int]:
    """The last run's survivors of a target, each applied again to the module (by its line number) and tested
    with the target's tests as they are now: after tests are added, without a whole new run."""
    module, _, tests = TARGETS[target]
    check_clean(module)
    path, session = ROOT / module, OUT / f"{target}.sqlite"
    original = path.read_text()
    rows = sqlite3.connect(session).execute("select diff from work_results where test_outcome = 'SURVIVED'")
    diffs = [d for (d,) in rows]
    still = []
    for diff in diffs:
        lines = diff.splitlines()  # cosmic-ray's diff: one hunk, its context can run past the end of the file
        hunk = next(i for i, line in enumerate(lines) if line.startswith("@@"))
        body = lines[hunk + 1 :]
        at = (
            int(re.match(r"@@ -(\d+)", lines[hunk]).group(1))
            - 1
            + next(i for i, line in enumerate(body) if line[:1] in "+-")
        )
        old = [line[1:] for line in body if line[:1] == "-"]
        text = original.split("\n")
        if text[at : at + len(old)] != old:
            sys.exit(f"{module} changed where a survivor applies (line {at + 1}): run the whole target again")
        text[at : at + len(old)] = [line[1:] for line in body if line[:1] == "+"]
        try:
            path.write_text("\n".join(text))
            passed = (
                subprocess.run(f"{PYTEST} {tests}", shell=True, cwd=ROOT, capture_output=True).returncode == 0
            )
        finally:
            path.write_text(original)
        if passed:
            still.append("\n".join(line for line in body if line[:1] in "+-"))
    (OUT / f"{target}.recheck.txt").write_text(
        f"{len(still)} of {len(diffs)} survivors still survive\n\n" + "\n\n".join(still)
    )
    return len(still), len(diffs)


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--recheck"]:
        check_imports()
        for target in args[1:]:
            survived, total = recheck(target)
            print(
                f"{target}: {survived} of {total} survivors still survive (tests/.mutation/{target}.recheck.txt)"
            )
        return
    targets = args or list(TARGETS)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        sys.exit(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    check_imports()
    for target in targets:
        survived, total = run(target)
        print(f"{target}: {survived} of {total} mutants survived (tests/.mutation/{target}.txt)", flush=True)


if __name__ == "__main__":
    main()
