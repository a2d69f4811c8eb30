"""The command itself: help, version, shell completion, predict's batching and plain text lines."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from conftest import BUILDER, run_builder


def test_help_lists_subcommands_and_config_groups() -> None:
    proc = run_builder("--help")
    assert proc.returncode == 0, proc.stderr
    for word in ("verify PATH", "info PATH", "predict PATH", "report DIR", "cache info|clear", "tasks"):
        assert word in proc.stdout
    groups = {
        line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ") and "," in line
    }
    assert "avx512_vnni" in groups["hardware"] and "static" in groups["quantization"]
    assert "text-generation" in groups["task"] and "minilm_l6" in groups["model"]


def test_version_is_builders_own() -> None:
    from builder.version import __version__

    proc = run_builder("--version")
    assert proc.returncode == 0 and proc.stdout.startswith(f"builder {__version__} (ort-bundle-builder)")
    assert "onnxruntime " in proc.stdout and "Hydra" not in proc.stdout


def test_shell_completion_as_hydra_documents_it() -> None:
    proc = run_builder("-sc", "install=bash")
    assert proc.returncode == 0 and "complete" in proc.stdout, proc.stderr
    env = {"COMP_LINE": "builder quantization=", "COMP_POINT": "21"}
    proc = run_builder("-sc", "query=bash", env=env)
    assert proc.returncode == 0 and "quantization=static" in proc.stdout.split(), proc.stdout + proc.stderr


def test_predict_batches_lines_that_are_ready_and_answers_as_one_by_one(
    bert_bundles: dict, tmp_path: Path
) -> None:
    bundle = str(bert_bundles["text-classification"])
    lines = [json.dumps(f"text number {i}") for i in range(40)] + [
        json.dumps({"inputs": "with parameters", "parameters": {"top_k": 2}}),
        "not json",
        json.dumps("the last one"),
    ]
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(lines) + "\n")
    batched = run_builder("predict", bundle, "--input", str(data), "--batch-size", "16")
    alone = run_builder("predict", bundle, "--input", str(data), "--batch-size", "1")
    assert batched.returncode == alone.returncode == 0, batched.stderr
    assert batched.stdout == alone.stdout and len(batched.stdout.splitlines()) == 42
    assert "line 42: not valid JSON" in batched.stderr and "use --text" in batched.stderr
    assert len(json.loads(batched.stdout.splitlines()[40])) == 2  # the line's own parameters


def test_predict_text_lines(bert_bundles: dict) -> None:
    bundle = str(bert_bundles["token-classification"])
    proc = run_builder_input(["predict", bundle, "--text"], 'George lives in Berlin\n{"not": "json"}\n')
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 2, proc.stderr
    qa = run_builder_input(["predict", str(bert_bundles["question-answering"]), "--text"], "a question?\n")
    assert qa.returncode == 2 and "--text: a question-answering bundle needs more than a text" in qa.stderr


def test_an_interactive_line_is_answered_before_the_next_arrives(bert_bundles: dict) -> None:
    """Batching never makes a line wait for later ones."""
    env = {**os.environ}
    proc = subprocess.Popen([str(BUILDER), "predict", str(bert_bundles["text-classification"])], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)  # fmt: skip
    try:
        proc.stdin.write(b'"first"\n')
        proc.stdin.flush()
        start = time.time()
        answer = proc.stdout.readline()
        assert answer and "label" in json.loads(answer)[0], proc.stderr.read()
        assert time.time() - start < 60
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0


def test_a_reader_that_stops_early_ends_the_command_quietly(bert_bundles: dict, tmp_path: Path) -> None:
    """`builder predict B | head -1` and `builder info B | head -0`: the command stops when its reader does, with
    no traceback and no line reported as skipped, and exits as a process ended by SIGPIPE would (141)."""
    bundle = str(bert_bundles["text-classification"])
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(f"text number {i}") + "\n" for i in range(3000)))
    for args, lines_read in (
        (["predict", bundle, "--batch-size", "1", "--input", str(data)], 1),
        (["info", bundle], 0),
    ):
        proc = subprocess.Popen([str(BUILDER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        read = [proc.stdout.readline() for _ in range(lines_read)]
        proc.stdout.close()  # the reader goes away
        err = proc.stderr.read()
        proc.wait(timeout=300)
        assert all(read) and proc.returncode == 141, (args[0], proc.returncode, err.decode()[-2000:])
        assert b"Traceback" not in err and b"skipped" not in err, (args[0], err.decode()[-2000:])


def run_builder_input(args: list[str], stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BUILDER), *args], input=stdin, capture_output=True, text=True, timeout=300)


def _rendered(raw: str) -> list[str]:
    """What a terminal shows: per line, the text after its last carriage return."""
    return [line.split("\r")[-1] for line in raw.replace("\r\n", "\n").split("\n")]


def test_stage_lines_survive_progress_bars_on_a_terminal(tiny_models: dict, tmp_path: Path) -> None:
    import re
    import shlex
    import shutil

    import pytest

    if not shutil.which("script"):
        pytest.skip("no script(1) for a pseudo-terminal")
    model = tiny_models[("bert", "text-classification")]
    command = shlex.join([str(BUILDER), f"model.source={model}", "task=text-classification", "benchmark=quick",
                          "quantization=static", f"output_dir={tmp_path}", "cache_dir=null"])  # fmt: skip
    proc = subprocess.run(
        ["script", "-qec", f"stty cols 120 rows 40; {command}", "/dev/null"], capture_output=True, timeout=600
    )  # fmt: skip  (bytes: text mode would turn every carriage return into a newline)
    raw = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, raw[-3000:]
    assert "%|" in raw  # progress bars were drawn (calibration, evaluation, benchmark)
    shown = _rendered(raw)
    stages = [line for line in shown if re.match(r"  \[\d/6\] ", line)]
    assert len(stages) == 6 and all(re.fullmatch(r"  \[\d/6\] \w+ \.\.\. \d+\.\ds", s) for s in stages), shown
    assert not [line for line in shown if re.fullmatch(r"\s*\d+\.\ds", line)], shown  # no bare times
