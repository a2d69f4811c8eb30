"""The `builder` command.

builder [OVERRIDES...] [-m]      build a bundle from composed configs (a Hydra app)
builder verify PATH              check every file of a bundle against its manifest
builder info PATH                what a bundle is and what was measured
builder predict PATH             run the bundle's pipeline on JSON lines
builder push PATH REPO           verify a bundle and upload it to a Hugging Face Hub repo
builder report DIR...            one table, CSV and plot of bundles
builder cache info|clear         the stage cache
builder tasks                    the tasks builder builds, their settings and architectures

verify, info and predict need only the runtime (onnxruntime, tokenizers, numpy). This module reads the command
line and hands it on; each subcommand is a module of its own, imported only when it runs, and `build.py` is the
Hydra app.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from builder.cli.fail import fail
from builder.errors import BuilderError

SUBCOMMANDS = ("verify", "info", "predict", "push", "cache", "report", "tasks")

GROUPS = ("model", "task", "hardware", "optimization", "quantization", "evaluation", "benchmark")


def main(argv: list[str] | None = None) -> None:
    try:
        _main(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:  # the reader went away (`builder info B | head`): stop quietly, as `cat` would
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush fails otherwise
        sys.exit(141)  # 128 + SIGPIPE


def _main(argv: list[str]) -> None:
    if argv and argv[0] in SUBCOMMANDS:
        sys.exit(_subcommand(argv))
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        sys.exit(0)
    if argv and argv[0] in ("-V", "--version"):
        print(versions())
        sys.exit(0)
    from builder.cli import build

    build.run(argv, _stray_words(argv))


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

    from builder.version import DISTRIBUTION, __version__

    tools = ("onnxruntime", "tokenizers", "numpy", "torch", "transformers", "onnx", "hydra-core")
    found = []
    for name in tools:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return f"builder {__version__} ({DISTRIBUTION})\n" + ", ".join(found)


def _subcommand(argv: list[str]) -> int:
    """A subcommand's exit status; its module is imported only when it runs."""
    if argv[0] == "cache":  # these four parse their own arguments
        from builder.cli.cache import cache

        return cache(argv[1:])
    if argv[0] == "tasks":
        from builder.cli.tasks import tasks

        return tasks(argv[1:])
    if argv[0] == "report":
        from builder.cli.report import report

        return report(argv[1:])
    if argv[0] == "push":
        from builder.cli.push import push

        return push(argv[1:])
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
        if argv[0] in ("verify", "info"):
            from builder.cli import bundle_info

            return (
                bundle_info.verify(args.path)
                if argv[0] == "verify"
                else bundle_info.info(args.path, args.json)
            )
        from builder.cli.predict import predict

        return predict(args.path, args.input, args.strict, args.text, args.batch_size)
    except BuilderError as e:
        return fail(e)


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
