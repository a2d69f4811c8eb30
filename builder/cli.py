"""The `builder` command.

builder [OVERRIDES...] [-m]      build a bundle from composed configs (a Hydra app)
builder verify PATH              check every file of a bundle against its manifest
builder info PATH                what a bundle is and what was measured
builder predict PATH             run the bundle's pipeline on JSON lines
builder report DIR...            one table, CSV and plot of bundles
builder cache info|clear         the stage cache
builder tasks                    the tasks builder builds, their settings and architectures

verify, info and predict need only the runtime (onnxruntime, tokenizers, numpy).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from builder.errors import BuilderError, Interrupted

SUBCOMMANDS = ("verify", "info", "predict", "push", "cache", "report", "tasks")


DISTRIBUTION = (
    "ort-bundle-builder"  # the name on PyPI (`builder` there is another project); imports stay `builder`
)
GROUPS = ("model", "task", "hardware", "optimization", "quantization", "evaluation", "benchmark")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        sys.exit(_subcommand(argv))
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        sys.exit(0)
    if argv and argv[0] in ("-V", "--version"):
        print(versions())
        sys.exit(0)
    _build_app(argv)


def usage() -> str:
    """`builder --help`: what the command does, its subcommands, and the config groups with their options."""
    from importlib import resources

    conf = resources.files("builder.conf")
    lines = [
        "usage: builder [GROUP=OPTION ...] [KEY=VALUE ...] [-m]   build a bundle (-m: a sweep over comma lists)",
        "       builder SUBCOMMAND ...",
        "",
        "subcommands (runtime only; each has --help):",
        "  verify PATH        check every file of a bundle against its manifest",
        "  info PATH          what a bundle is and what was measured",
        "  predict PATH       run the bundle's pipeline on JSON lines (or --text lines) from stdin or --input",
        "  push PATH REPO     verify a bundle and upload it to a Hugging Face Hub repo (--dry-run, --private)",
        "  report DIR...      one table, CSV and plot of the bundles in output folders",
        "  cache info|clear   the stage cache (--dir, default artifacts/.cache)",
        "  tasks              the tasks builder builds, their settings and architectures",
        "",
        "config groups (GROUP=OPTION):",
    ]
    for group in GROUPS:
        options = sorted(
            p.name.removesuffix(".yaml") for p in conf.joinpath(group).iterdir() if p.name.endswith(".yaml")
        )
        lines.append(f"  {group:<13} {', '.join(options)}")
    lines += [
        "",
        "examples:",
        "  builder                                          the embedded all-MiniLM-L6-v2, this host's profile",
        "  builder model.source=./my-model task=text-classification quantization=static",
        "  builder -m hardware=avx2,avx512_vnni quantization=none,dynamic     a sweep, one report",
        "  builder --cfg job model=distilbert_sst2          print the composed config, build nothing",
        "",
        "every key and its default: builder --cfg job; Hydra's own flags: builder --hydra-help;",
        'shell completion: eval "$(builder -sc install=bash)" (zsh: install=zsh). Version: builder --version.',
    ]
    return "\n".join(lines)


def versions() -> str:
    """builder's version and the versions of the tools it runs on (read from metadata: nothing is imported)."""
    from importlib import metadata

    from builder.version import __version__

    tools = ("onnxruntime", "tokenizers", "numpy", "torch", "transformers", "onnx", "hydra-core")
    found = []
    for name in tools:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return f"builder {__version__} ({DISTRIBUTION})\n" + ", ".join(found)


def _fail(e: BuilderError) -> int:
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise e
    print(f"error: {e}", file=sys.stderr)
    return e.exit_code


# --------------------------------------------------------------------------------------------------- build


def _build_app(argv: list[str]) -> None:
    try:
        import hydra
        import torch  # noqa: F401
    except ImportError as e:
        sys.exit(
            _fail(
                BuilderError(
                    f"building bundles needs the build tools ({e.name} is not installed): "
                    f"pip install '{DISTRIBUTION}[build]' (torch as a CPU build first: pip install torch==2.13.0). "
                    "Loading and running bundles (builder verify | info | predict) works without them."
                )
            )
        )

    import builder.make.report  # noqa: F401  (registers the resolver that names sweep folders)
    from builder.config import CONF_DIR, override_problems
    from builder.errors import ConfigError

    problems = _stray_words(argv) + override_problems(argv)
    if problems:
        sys.exit(_fail(ConfigError(problems)))

    @hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
    def app(cfg: Any) -> None:
        started.append(True)
        from builder.make import host_lock

        try:
            with host_lock.computing():  # the whole job, imports included: see builder/host_lock.py
                _job(cfg)
        except BuilderError as e:  # the host lock could not be taken (the job's own errors end in _job)
            sys.exit(_fail(e))

    def stop(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    started: list[bool] = []
    sys.argv = [sys.argv[0], *argv]
    try:
        app()
    except ValueError as e:  # Hydra's own command-line checks (e.g. -m with --cfg) raise before any job
        if started or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        sys.exit(_fail(ConfigError([f"{e}. See `builder --help`."])))


# Hydra's flags that take the next word as their value.
HYDRA_VALUE_FLAGS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--experimental-rerun",
                     "--cfg", "-c", "--package", "-p", "--info", "-i")  # fmt: skip


def _stray_words(argv: list[str]) -> list[str]:
    """Words that are neither a subcommand nor an override (Hydra would report a grammar error)."""
    import difflib

    problems = []
    for i, arg in enumerate(argv):
        if arg.startswith(("-", "~")) or "=" in arg or (i and argv[i - 1] in HYDRA_VALUE_FLAGS):
            continue
        close = difflib.get_close_matches(arg, SUBCOMMANDS, n=1)
        hint = f"did you mean `builder {close[0]}`? " if close else ""
        if i and "=" in argv[i - 1]:  # a value with a space, split by the shell
            hint += f"if it belongs to the value before it, quote the whole override: '{argv[i - 1]} {arg}'. "
        problems.append(
            f"{arg}: not a subcommand ({', '.join(SUBCOMMANDS)}) nor a key=value override; {hint}"
            "see `builder --help`"
        )
    return problems


def _job(cfg: Any) -> None:
    """One build (a sweep runs one per job): bundle and summary, or one clear error."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from builder.config import config_from_hydra, validate

    sweeping = HydraConfig.get().mode == RunMode.MULTIRUN
    if sweeping:  # replaced when the job ends; left "running" if its process dies
        _job_result({"status": "running", "config": _plain_config(cfg)})
    try:
        final, overrides, choices = config_from_hydra(cfg)
        validate(final)  # every config problem, before torch is even imported
        from builder.make.driver import build_bundle

        prefix = f"[job {HydraConfig.get().job.num}] " if sweeping else None
        path = build_bundle(final, overrides=overrides, choices=choices, prefix=prefix)
    except Exception as e:  # a BuilderError is the user's to fix; anything else is a bug, reported as one
        if not isinstance(e, BuilderError):
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            full = _no_space(e)
            e = BuilderError(
                f"no space left on the device while writing {full.filename or 'a file'} (output_dir={cfg.output_dir}, "
                f"cache_dir={cfg.cache_dir}): nothing was published. Free space there, or choose other folders"
                if full
                else _crash_message(e)
            )
            e.exit_code = 2 if full else 1
        if not sweeping:
            sys.exit(_fail(e))
        print(f"error: {e}", file=sys.stderr)  # one failed job does not end the sweep
        report = getattr(e, "report", None)
        _job_result(
            {"status": "rejected", "report": str(report)}
            if report
            else {"status": "failed", "error": str(e), "config": _plain_config(cfg)}
        )
        return
    except (KeyboardInterrupt, Interrupted) as e:
        signum = getattr(e, "signum", signal.SIGINT)
        stage = getattr(e, "stage", None)
        where = f" during the {stage} stage" if stage else ""
        print(
            f"interrupted by {signal.Signals(signum).name}{where}: no bundle was written, its work folder removed",
            file=sys.stderr,
        )
        sys.exit(128 + signum)
    text = summary(path)
    print(
        "\n".join(f"[job {HydraConfig.get().job.num}] {line}" for line in text.splitlines())
        if sweeping
        else text
    )
    if sweeping:
        _job_result({"status": "published", "bundle": str(path)})


def _no_space(e: BaseException | None) -> OSError | None:
    """The disk-full error behind e, if any (libraries wrap it in their own errors)."""
    import errno

    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return e
        e = e.__cause__ or e.__context__
    return None


def _crash_message(e: BaseException) -> str:
    """A failure builder did not foresee: one line with where it happened, and how to see the whole trace."""
    import traceback

    frames = traceback.extract_tb(e.__traceback__)
    mine = [f for f in frames if "/builder/" in f.filename.replace("\\", "/")] or frames
    where = f" (in {Path(mine[-1].filename).name}:{mine[-1].lineno})" if mine else ""
    return (
        f"the build failed unexpectedly: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}{where}. "
        "No bundle was written. Run again with HYDRA_FULL_ERROR=1 for the traceback, and report it."
    )


def _plain_config(cfg: Any) -> dict[str, Any]:
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except Exception:  # an unresolvable value: that is the job's error, reported on its own
        return {}


def _job_result(result: dict[str, Any]) -> None:
    """What a sweep job leaves for the sweep report (read in on_multirun_end, maybe in another process)."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    folder = Path(hc.runtime.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    record = {"job": hc.job.num, "overrides": list(hc.overrides.task), **result}
    tmp = folder / "result.json.tmp"
    tmp.write_text(json.dumps(record, default=str), encoding="utf-8")
    tmp.replace(folder / "result.json")


def summary(path: Path) -> str:
    from builder.make.card import busy_host_note, fidelity_rows

    metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    lines = [f"bundle    {path}", f"id        {manifest['bundle_id']}"]
    s = metrics["size"]
    lines.append(
        f"size      {s['bundle_model_bytes'] / 1e6:.1f} MB vs fp32 {s['fp32_model_bytes'] / 1e6:.1f} MB "
        f"({s['ratio_to_fp32']:.2f}x)"
    )
    bench = metrics.get("benchmark", {})
    on_gpu = " on the GPU" if bench.get("baseline_device") == "cuda" else ""
    for r in bench.get("results", []):
        workload = r.get("workload", "forward")
        shape = f"batch {r['batch_size']}, {r['sequence_length']} tokens, {bench['threads']} thread(s)"
        if workload == "decode":  # text generation: tokens per second
            label, ours, theirs = (
                "decode",
                r["bundle"]["throughput_per_s"],
                r.get("pytorch", {}).get("throughput_per_s"),
            )
            text = f"{ours:.1f} tokens/s" + (f" vs PyTorch{on_gpu} {theirs:.1f}" if theirs else "")
            lines.append(f"{label:<9} {text} [{shape}, {bench.get('new_tokens')} new tokens]")
            continue
        label = "ttft" if workload == "prefill" else "latency"
        if "pytorch" in r:
            lines.append(
                f"{label:<9} p50 {r['bundle']['p50_ms']:.2f} ms vs PyTorch{on_gpu} {r['pytorch']['p50_ms']:.2f} ms "
                f"({r['speedup_p50']:.2f}x faster) [{shape}]"
            )
        else:
            lines.append(f"{label:<9} p50 {r['bundle']['p50_ms']:.2f} ms [{shape}]")
    note = busy_host_note(bench) if bench.get("measured") else None
    if note:
        lines.append(f"latency   note: {note}")
    if bench and not bench.get("measured", True):
        lines.append(f"latency   not measured: {bench['reason']}")
    ev = metrics.get("evaluation", {})
    if ev.get("bundle"):
        m = ev["metric"]
        kept = f" ({ev['retention_percent']:.2f}% kept)" if ev.get("retention_percent") is not None else ""
        lines.append(
            f"{m:<9} {ev['bundle'][m]:.4f} vs PyTorch {ev['baseline'][m]:.4f}{kept} "
            f"[{ev['examples']} examples, {ev['dataset']}]"
        )
    fid = metrics.get("fidelity", {})
    if fid.get("generation"):
        g = fid["generation"]
        lines.append(
            f"greedy    {g['greedy_match']:.1%} of the first {g['tokens']} greedy tokens as PyTorch's "
            f"({g['prompts']} prompts, {g['exact']:.0%} identical)"
        )
    if fid.get("measured"):
        parts = []
        for out, m in fidelity_rows(fid["outputs"]).items():
            text = f"{out} cosine {m['cosine_mean']:.4f} (min {m['cosine_min']:.4f})"
            if "argmax_agreement" in m:
                text += f", argmax agreement {m['argmax_agreement']:.1%}"
            parts.append(text)
        lines.append("fidelity  " + "; ".join(parts) + " vs PyTorch")
    elif fid:
        lines.append(f"fidelity  not measured: {fid.get('reason')}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- subcommands


def _subcommand(argv: list[str]) -> int:
    if argv[0] == "cache":
        return _cache(argv[1:])
    if argv[0] == "tasks":
        return _tasks(argv[1:])
    if argv[0] == "report":
        return _report(argv[1:])
    if argv[0] == "push":
        return _push(argv[1:])
    parser = argparse.ArgumentParser(prog=f"builder {argv[0]}")
    parser.add_argument("path", type=Path, help="bundle folder")
    if argv[0] == "info":
        parser.add_argument("--json", action="store_true", help="print manifest and metrics as JSON")
    if argv[0] == "predict":
        parser.add_argument("--input", type=Path, help="JSON lines file (default: standard input)")
        parser.add_argument("--text", action="store_true", help="each line is one input text, not JSON")
        parser.add_argument(
            "--batch-size", type=int, default=32, help="lines run together when they are ready (default 32)"
        )
        parser.add_argument("--strict", action="store_true", help="exit non-zero if any line was skipped")
    args = parser.parse_args(argv[1:])
    try:
        if argv[0] == "verify":
            return _verify(args.path)
        if argv[0] == "info":
            return _info(args.path, args.json)
        return _predict(args.path, args.input, args.strict, args.text, args.batch_size)
    except BuilderError as e:
        return _fail(e)


def _push(argv: list[str]) -> int:
    """Verify a bundle, then upload it to a Hub model repo: its card is the repo's README; the bundle id is the
    commit message and a tag, so a pulled bundle names the build it came from."""
    from builder.runtime.loader import hub_reachable
    from builder.runtime.manifest import verify

    parser = argparse.ArgumentParser(prog="builder push", description=_push.__doc__)
    parser.add_argument("path", type=Path, help="bundle folder")
    parser.add_argument("repo_id", help="Hub model repo, e.g. org/name (created if missing)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", help="branch to push to (created if missing; default main)")
    parser.add_argument("--dry-run", action="store_true", help="verify and show what would be uploaded")
    args = parser.parse_args(argv)
    try:
        manifest = verify(args.path)
    except BuilderError as e:
        return _fail(e)
    bid = manifest["bundle_id"]
    files = [*sorted(manifest["files"]), "manifest.json"]
    message, tag = f"builder bundle {bid}", f"bundle-{bid[:12]}"
    where = f"{args.repo_id}{'@' + args.revision if args.revision else ''}"
    plan = [
        f"push {args.path} -> {where} ({'private' if args.private else 'public'} if created)",
        f"commit message: {message}",
        f"tag: {tag}",
        f"files ({len(files)}):",
        *(f"  {name}" for name in files),
    ]
    if args.dry_run:
        print("\n".join(plan))
        return 0
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE or not hub_reachable(constants.ENDPOINT):
        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else constants.ENDPOINT
        return _fail(
            BuilderError(
                f"builder push {args.repo_id}: the Hugging Face Hub is unreachable from this machine ({why}). "
                "Copy the bundle folder to a machine that reaches it and push from there (builder verify checks "
                "the copy)."
            )
        )
    api = HfApi()
    try:
        api.create_repo(args.repo_id, private=args.private, exist_ok=True, repo_type="model")
        if args.revision:
            api.create_branch(args.repo_id, branch=args.revision, exist_ok=True)
        commit = api.upload_folder(
            folder_path=str(args.path),
            repo_id=args.repo_id,
            revision=args.revision,
            commit_message=message,
            allow_patterns=files,
        )
        api.create_tag(args.repo_id, tag=tag, revision=commit.oid, exist_ok=True)
    except Exception as e:  # no token, no permission, a network failure
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        return _fail(
            BuilderError(
                f"builder push {where}: the Hub refused it ({type(e).__name__}: {first}). Log in with "
                "`hf auth login` (or set HF_TOKEN) with write access to the repo."
            )
        )
    print(f"pushed {len(files)} files to {commit.commit_url} (tag {tag})")
    return 0


def _report(argv: list[str]) -> int:
    from builder.make import report

    parser = argparse.ArgumentParser(prog="builder report", description="one table, CSV and plot of bundles")
    parser.add_argument("folders", type=Path, nargs="+", help="output folders (or bundle folders)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the first folder)")
    args = parser.parse_args(argv)
    rows = report.collect(args.folders, skipped := [])
    for where, why in skipped:
        print(f"skipped {where}: {why}", file=sys.stderr)
    if not rows:
        return _fail(BuilderError(f"no bundles in {', '.join(map(str, args.folders))}"))
    out = args.out or args.folders[0]
    try:
        paths = report.write(rows, out)
    except OSError as e:
        return _fail(
            BuilderError(f"report --out {out}: cannot write there ({e.strerror}). Give another --out")
        )
    print(paths["markdown"].read_text(), end="")
    print(f"\nwrote {paths['markdown']}, {paths['csv']}, {paths['plot']}")
    return 0


def _tasks(argv: list[str]) -> int:
    """The task registry as users see it: `task=<name>`, its settings (task.*), and who has it."""
    import dataclasses

    from builder.tasks import TASKS, tasks_of
    from builder.tasks.architectures import ARCHITECTURES

    argparse.ArgumentParser(prog="builder tasks", description=_tasks.__doc__).parse_args(argv)
    for name, task in TASKS.items():
        settings = ", ".join(f"task.{f.name}={_yaml(f.default)}" for f in dataclasses.fields(task.Options))
        archs = ", ".join(a for a in ARCHITECTURES if name in tasks_of(a))
        print(f"{name}\n  {task.summary}\n  settings: {settings or 'none'}")
        print(f"  evaluation: {', '.join(task.fields)} -> {task.gate_metric}")
        print(f"  architectures: {archs}")
    return 0


def _yaml(value: Any) -> str:
    return (
        str(value).lower()
        if isinstance(value, bool)
        else repr(value)
        if isinstance(value, str)
        else str(value)
    )


def _cache(argv: list[str]) -> int:
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
            return _fail(e)
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


def _predict(path: Path, source: Path | None, strict: bool, text: bool = False, batch_size: int = 32) -> int:
    """Each line: a JSON value (the input), {"inputs": ..., "parameters": {...}}, or the task's own object
    ({"question": ..., "context": ..., "top_k": 2} for QA, {"text": ..., "text_pair": ...} for pairs): the
    task's pipeline reads it (predict_request). --text: each line is one input text. Lines that are ready
    together go through the pipeline as batches of up to batch_size; a line waits for no later line."""
    from builder.runtime.loader import load

    if batch_size < 1:
        raise BuilderError(f"--batch-size {batch_size}: give 1 or more lines per batch")
    if source and not source.is_file():
        raise BuilderError(
            f"--input {source}: no such file. Give a JSON lines file, or omit --input to read stdin"
        )
    bundle = load(path)
    pipeline = bundle.pipeline
    if text and not pipeline.takes_text:
        raise BuilderError(
            f"--text: a {bundle.task} bundle needs more than a text per input; give JSON lines instead "
            f"(e.g. {_EXAMPLE_LINE.get(bundle.task, '{...}')})"
        )
    fd = os.open(source, os.O_RDONLY) if source else sys.stdin.fileno()
    skipped = 0

    def skip(number: int, why: str) -> None:
        nonlocal skipped
        print(f"line {number}: {why}; skipped", file=sys.stderr, flush=True)
        skipped += 1

    def emit(number: int, result: Any) -> None:
        if isinstance(result, types.GeneratorType):  # a stream: one line per piece as it comes
            for part in result:
                print(json.dumps(_plain(part), ensure_ascii=False), flush=True)
        else:
            print(json.dumps(_plain(result), ensure_ascii=False), flush=True)

    def run(batch: list[tuple[int, Any]]) -> None:
        try:
            results = pipeline.predict_many([item for _, item in batch]) if len(batch) > 1 else None
        except Exception:  # some line of the batch is bad: each alone, to say which
            results = None
        for i, (number, item) in enumerate(batch):
            try:
                emit(number, results[i] if results is not None else pipeline.predict_request(item))
            except Exception as e:  # one bad line never ends the stream
                skip(number, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": "))

    batch: list[tuple[int, Any]] = []
    try:
        for number, (raw, more) in enumerate(_lines(fd), 1):
            try:
                line = raw.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError as e:
                skip(number, f"not valid UTF-8 (byte {raw[e.start]:#04x} at column {e.start + 1})")
                line = None
            if line is not None and line.strip():
                if text:
                    batch.append((number, line))
                else:
                    try:
                        batch.append((number, json.loads(line)))
                    except json.JSONDecodeError as e:
                        skip(
                            number,
                            f"not valid JSON ({e.msg} at column {e.colno}); for plain text lines use --text",
                        )
            if batch and (len(batch) >= batch_size or not more):
                run(batch)
                batch = []
        if batch:
            run(batch)
    finally:
        if source:
            os.close(fd)
    if skipped:
        print(f"{skipped} line(s) skipped", file=sys.stderr)
    return 1 if strict and skipped else 0


_EXAMPLE_LINE = {
    "question-answering": '{"question": "Where?", "context": "..."}',
    "zero-shot-classification": '{"inputs": "...", "parameters": {"candidate_labels": ["a", "b"]}}',
}


def _lines(fd: int) -> Iterator[tuple[bytes, bool]]:
    """(line without its newline, whether another line is ready now) for each line of a file descriptor: input
    that is already there is batched, and an interactive line is answered at once."""
    import select

    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                if buffer:
                    yield buffer, False
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        yield line, b"\n" in buffer or bool(select.select([fd], [], [], 0)[0])


def _plain(value: Any) -> Any:
    """numpy arrays and scalars to JSON-ready lists and numbers."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _verify(path: Path) -> int:
    from builder.runtime.manifest import verify

    manifest = verify(path)
    print(f"ok: {len(manifest['files'])} files match the manifest of bundle {manifest['bundle_id']}")
    return 0


def _read_metrics(path: Path) -> tuple[dict[str, Any], str | None]:
    """(metrics.json's content, or {} with what is wrong with it)."""
    file = path / "metrics.json"
    if not file.is_file():
        return {}, None
    try:
        metrics = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return {}, f"{file.name} is unreadable ({e})"
    if not isinstance(metrics, dict):
        return {}, f"{file.name} holds {type(metrics).__name__}, not an object"
    return metrics, None


def _info(path: Path, as_json: bool) -> int:
    from builder.errors import BundleIntegrityError
    from builder.runtime.manifest import read_manifest, runtime_section, verify

    manifest = read_manifest(path)
    try:
        verify(path)
        integrity = "verified (every file matches the manifest)"
    except BundleIntegrityError as e:
        integrity = f"FAILED: {e}"
    metrics, damage = _read_metrics(path)
    if damage:
        integrity += f"; {damage}"
    if as_json:
        print(json.dumps({"manifest": manifest, "metrics": metrics, "integrity": integrity}, indent=2))
        return 0
    rt, src = runtime_section(manifest), manifest.get("source", {})
    origin = src.get("repo_id") or src.get("package") or "local folder"
    if src.get("commit"):
        origin += f" @ {src['commit']}"
    q = rt.get("quantization", {})
    lines = [
        f"name          {manifest['name']}",
        f"bundle id     {manifest['bundle_id']}",
        f"integrity     {integrity}",
        f"task          {rt.get('task')}",
        f"source        {origin} ({src.get('kind')})",
        f"hardware      {rt.get('hardware', {}).get('name')} (providers: {', '.join(rt.get('hardware', {}).get('providers', []))})",
        f"optimization  {rt.get('optimization')}",
        f"quantization  {q.get('method')}"
        + (
            f" (blocks of {q.get('block_size')}, accuracy level {q.get('accuracy_level')})"
            if q.get("method") == "int4"
            else f" (weights {q.get('weight_type')}, per-channel {q.get('per_channel')})"
            if q.get("method") != "none"
            else ""
        ),
        *(
            f"graph         {role} ({_graph_files(path, g['file'])}): {', '.join(g['inputs'])} -> "
            f"{', '.join(g['outputs'])}"
            for role, g in rt.get("graphs", {}).items()
        ),
        f"format        {manifest['format_version']}",
        "built with    " + ", ".join(f"{k} {v}" for k, v in manifest.get("versions", {}).items()),
    ]
    if metrics:
        try:
            lines += ["", summary(path).split("\n", 2)[2]]
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            lines += ["", f"measures      metrics.json lacks what builder writes ({type(e).__name__}: {e})"]
        host = metrics.get("host", {})
        lines.append(f"measured on   {host.get('cpu')} ({host.get('logical_cores')} cores)")
        lines += _stage_lines(metrics.get("stages"))
    print("\n".join(lines))
    return 0


def _graph_files(folder: Path, file: str) -> str:
    data = folder / f"{file}_data"
    return f"{file} + {data.name}, {data.stat().st_size / 1e6:.1f} MB of weights" if data.is_file() else file


def _stage_lines(stages: Any) -> list[str]:
    """Each stage's time, whether it was reused from the cache, and the build's peak memory while it ran."""
    if not isinstance(stages, dict):
        return []
    lines = []
    for i, (stage, s) in enumerate(stages.items()):
        if not isinstance(s, dict):
            continue
        peak = s.get("peak_rss_bytes")
        lines.append(
            f"{'stages' if i == 0 else '':<14}{stage:<12}{s.get('seconds', 0):>8.1f} s  {s.get('status', ''):<8}"
            + (f" peak memory {peak / 1e9:.2f} GB" if isinstance(peak, int) else "")
        )
    return lines


if __name__ == "__main__":
    main()
