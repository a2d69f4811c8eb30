"""Faults through the real CLI and real processes: sources that cannot build, damaged inputs to the other
commands, signals sent to running builds, what killed builds leave, replacing a bundle under readers, file
modes, a full disk, and sweeps whose jobs fail."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import BUILDER, bundles_in, read_json, run_builder

QUICK = ["benchmark=none", "evaluation=none", "quantization=none"]


def _copy(source: Path, folder: Path) -> Path:
    shutil.copytree(source, folder)
    return folder


def _mismatched_config(m: dict, tmp: Path) -> list[str]:
    folder = _copy(m[("bert", "feature-extraction")], tmp / "mismatched")
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] *= 2
    (folder / "config.json").write_text(json.dumps(config))
    return [f"model.source={folder}", *QUICK]


def _pickled_bin(m: dict, tmp: Path) -> list[str]:
    import datetime

    import torch
    from safetensors.torch import load_file

    folder = _copy(m[("bert", "feature-extraction")], tmp / "pickled")
    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(
        {**weights, "when": datetime.datetime(2020, 1, 1)}, folder / "pytorch_model.bin"
    )  # not weights only
    return [f"model.source={folder}", *QUICK]


def _big_tokenizer(m: dict, tmp: Path) -> list[str]:
    from transformers import AutoTokenizer

    folder = _copy(m[("bert", "feature-extraction")], tmp / "big-tokenizer")
    tok = AutoTokenizer.from_pretrained(folder)
    tok.add_tokens([f"extra{i}" for i in range(2000)])
    tok.save_pretrained(folder)
    return [f"model.source={folder}", *QUICK]


def _damaged_tokenizer(file: str, text: str) -> Setup:
    def setup(m: dict, tmp: Path) -> list[str]:
        folder = _copy(m[("bert", "feature-extraction")], tmp / "damaged-tokenizer")
        (folder / file).write_text(text)
        return [f"model.source={folder}", *QUICK]

    return setup


def _small_dataset(m: dict, tmp: Path) -> list[str]:
    data = tmp / "three.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": "positive"}) + "\n" for t in ("a", "b", "c")))
    model = m[("bert", "text-classification")]
    return [f"model.source={model}", "task=text-classification", f"evaluation.dataset={data}",
            "evaluation.gate.max_relative_drop=0.01", "benchmark=none"]  # fmt: skip


def _damaged_bundle(m: dict, tmp: Path, bundles: dict) -> Path:
    from test_hostile import _rehash

    folder = _copy(bundles["text-classification"], tmp / "damaged")
    (folder / "metrics.json").write_text("{not json")
    _rehash(folder)
    return folder


def _report_with_damage(m: dict, tmp: Path, bundles: dict) -> list[str]:
    out = tmp / "bundles"
    out.mkdir()
    _copy(bundles["text-classification"], out / "good")
    shutil.move(_damaged_bundle(m, tmp, bundles), out / "damaged")
    return ["report", str(out), "--out", str(tmp / "report")]


def _report_out_a_file(m: dict, tmp: Path, bundles: dict) -> list[str]:
    (tmp / "a-file").write_text("x")
    return ["report", str(bundles["text-classification"]), "--out", str(tmp / "a-file")]


Setup = Callable[..., list[str]]
# (case, setup(models, tmp[, bundles]) -> builder arguments, exit code, what the output must say)
FAULT_CASES: list[tuple[str, Setup, int, list[str]]] = [
    # from the issue
    (
        "config that does not match its weights",
        _mismatched_config,
        2,
        ["its weights do not load", "config.json"],
    ),
    (
        ".bin checkpoint refused by weights_only",
        _pickled_bin,
        2,
        ["its weights do not load", "UnpicklingError"],
    ),
    (
        "no trained head for the task",
        lambda m, t: [
            f"model.source={m[('bert', 'feature-extraction')]}",
            "task=text-classification",
            *QUICK,
        ],
        2,
        ["has no trained head for task=text-classification", "classifier"],
    ),  # fmt: skip
    (
        "benchmark lengths beyond the model",
        lambda m, t: [
            f"model.source={m[('bert', 'feature-extraction')]}",
            "benchmark.sequence_lengths=[64,4096]",
            "evaluation=none",
        ],
        2,
        ["[4096] exceed the model's longest input (128"],
    ),  # fmt: skip
    (
        "info on a damaged metrics.json",
        lambda m, t, b: ["info", str(_damaged_bundle(m, t, b))],
        0,
        ["metrics.json is unreadable"],
    ),
    ("report on a damaged bundle", _report_with_damage, 0, ["skipped", "damaged", "unreadable"]),
    ("report --out a file", _report_out_a_file, 2, ["report --out", "cannot write there"]),
    # more
    ("tokenizer larger than the vocabulary", _big_tokenizer, 2, ["its tokenizer has", "vocab_size"]),
    ("gate over a 3-example dataset", _small_dataset, 2, ["gives 3 example(s)", "at least 20"]),
    (
        "config.json that is not an object",
        lambda m, t: (
            (t / "m").mkdir(),
            (t / "m" / "config.json").write_text("[]"),
            [f"model.source={t / 'm'}"],
        )[-1],
        2,
        ["config.json", "not an object"],
    ),  # fmt: skip
    (
        "predict --input that does not exist",
        lambda m, t, b: ["predict", str(b["text-classification"]), "--input", str(t / "nope.jsonl")],
        2,
        ["nope.jsonl", "no such file"],
    ),  # fmt: skip
    (
        "predict on a mistyped bundle path",
        lambda m, t, b: ["predict", str(t / "artifacts" / "typo")],
        2,
        ["no such folder"],
    ),
    ("load a Hub-like id offline", lambda m, t, b: ["predict", "nobody/no-bundle"], 2, ["Hugging Face Hub"]),
    ("verify an empty folder", lambda m, t, b: ["verify", str(t)], 2, ["not a builder bundle"]),
    ("info of a folder that is not a bundle", lambda m, t, b: ["info", str(t)], 2, ["not a builder bundle"]),
    (
        "cache clear of a folder of notes",
        lambda m, t, b: (
            (t / "n").mkdir(),
            (t / "n" / "a.txt").write_text("x"),
            ["cache", "clear", "--dir", str(t / "n")],
        )[-1],
        2,
        ["holds no builder stage cache"],
    ),  # fmt: skip
    ("report on an empty folder", lambda m, t, b: ["report", str(t)], 2, ["no bundles in"]),
    (
        "evaluation dataset that does not exist",
        lambda m, t: [
            f"model.source={m[('bert', 'text-classification')]}",
            "task=text-classification",
            f"evaluation.dataset={t / 'missing.jsonl'}",
        ],
        2,
        ["evaluation.dataset="],
    ),  # fmt: skip
    (
        "model folder given as a file",
        lambda m, t: [f"model.source={m[('bert', 'feature-extraction')] / 'config.json'}"],
        2,
        ["no such folder"],
    ),
    (
        "an evaluation dataset with no rows",
        lambda m, t: (
            (t / "empty.jsonl").write_text(""),
            [
                f"model.source={m[('bert', 'text-classification')]}",
                "task=text-classification",
                f"evaluation.dataset={t / 'empty.jsonl'}",
            ],
        )[-1],
        2,
        ["evaluation.dataset=", "the file is empty"],
    ),  # fmt: skip
    (
        "a damaged rejected report",
        lambda m, t, b: (
            (t / ".rejected").mkdir(),
            (t / ".rejected" / "x.json").write_text("{"),
            ["report", str(t), str(b["text-classification"]), "--out", str(t / "r")],
        )[-1],
        0,
        ["skipped", "x.json"],
    ),  # fmt: skip
    (
        "a manifest that is a folder",
        lambda m, t, b: (
            (t / "bundle").mkdir(),
            (t / "bundle" / "manifest.json").mkdir(),
            ["verify", str(t / "bundle")],
        )[-1],
        2,
        ["not a builder bundle"],
    ),  # fmt: skip
    (
        "predict --batch-size 0",
        lambda m, t, b: ["predict", str(b["text-classification"]), "--batch-size", "0"],
        2,
        ["--batch-size 0"],
    ),  # fmt: skip
    (
        "push a folder that is not a bundle",
        lambda m, t, b: ["push", str(t), "someone/x", "--dry-run"],
        2,
        ["not a builder bundle"],
    ),  # fmt: skip
    (
        "info --json of a damaged metrics.json",
        lambda m, t, b: ["info", "--json", str(_damaged_bundle(m, t, b))],
        0,
        ["metrics.json is unreadable"],
    ),  # fmt: skip
    (
        "tokenizer.json that is not JSON",
        _damaged_tokenizer("tokenizer.json", "{garbage"),
        2,
        ["tokenizer.json is not a valid JSON file", "tokenizer.save_pretrained"],
    ),
    (
        "tokenizer.json of no known tokenizer",
        _damaged_tokenizer("tokenizer.json", '{"version": "1.0", "model": {"type": "Nope"}}'),
        2,
        ["its tokenizer cannot be loaded from", "tokenizer.save_pretrained"],
    ),
    (
        "unknown subcommand-like word",
        lambda m, t, b: ["verifyy", str(t)],
        2,
        ["did you mean `builder verify`"],
    ),
    (
        "a path with a space, unquoted",
        lambda m, t: ["model.source=/tmp/my", "models/x"],
        2,
        ["quote the whole override: 'model.source=/tmp/my models/x'"],
    ),  # fmt: skip
]


@pytest.mark.parametrize("case,setup,code,needles", FAULT_CASES, ids=[c[0] for c in FAULT_CASES])
def test_fault(tiny_models: dict, bert_bundles: dict, tmp_path: Path, case: str, setup: Setup, code: int,
               needles: list[str]) -> None:  # fmt: skip
    import inspect

    args = setup(tiny_models, tmp_path, bert_bundles) if len(inspect.signature(setup).parameters) == 3 else (
        setup(tiny_models, tmp_path)
    )  # fmt: skip
    out = tmp_path / "out"
    if args[0] not in ("info", "report", "predict", "verify", "cache", "verifyy", "push"):
        args = [*args, f"output_dir={out}"]
    proc = run_builder(*args, env={"HF_HUB_OFFLINE": "1"})
    text = proc.stdout + proc.stderr
    assert proc.returncode == code, text
    assert "Traceback" not in text, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"
    if out.exists():
        assert bundles_in(out) == [] or code == 0
        assert not [p for p in out.iterdir() if p.name.startswith(".work-")]


# ------------------------------------------------------------------------------------------------ signals


def _start(args: list[str], **kwargs) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen(
        [str(BUILDER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, **kwargs
    )


def _wait_for(proc: subprocess.Popen, text: bytes, timeout: float = 120) -> bytes:
    """Read the build's stdout until `text` appears (stage lines are flushed as they start)."""
    seen, deadline = b"", time.time() + timeout
    while text not in seen:
        assert time.time() < deadline and proc.poll() is None, seen + proc.stderr.read()
        seen += os.read(proc.stdout.fileno(), 1)
    return seen


def _build_args(model: Path, out: Path) -> list[str]:
    return [f"model.source={model}", "task=text-classification", "benchmark=quick", "evaluation.max_samples=20",
            f"output_dir={out}", "cache_dir=null"]  # fmt: skip


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_a_build_cleanly(tiny_models: dict, tmp_path: Path, sig: signal.Signals) -> None:
    # SIGINT as a terminal's Ctrl-C delivers it: a suite started in the background (`pytest &`) passes its
    # children SIGINT ignored, as POSIX shells do for asynchronous commands, and Python keeps it ignored.
    proc = _start(
        _build_args(tiny_models[("bert", "text-classification")], tmp_path),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    _wait_for(proc, b"[2/6]")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    text = err.decode()
    assert proc.returncode == 128 + sig, text
    assert "Traceback" not in text and text.strip().splitlines()[-1].startswith(
        f"interrupted by {sig.name}"
    ), text
    assert "no bundle was written" in text
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".rejected")] == [], list(
        tmp_path.iterdir()
    )


@pytest.mark.slow  # real processes, several builds: run by .ci/run
def test_what_killed_builds_leave_goes_and_live_builds_keep_theirs(tiny_models: dict, tmp_path: Path) -> None:
    model = tiny_models[("bert", "text-classification")]
    data = tmp_path / "long.jsonl"  # an evaluation long enough to pause a build in the middle of it
    data.write_text(
        "".join(json.dumps({"text": f"text number {i} " * 8, "label": "positive"}) + "\n" for i in range(600))
    )
    out = tmp_path / "out"
    args = [f"model.source={model}", "task=text-classification", "benchmark=none", f"output_dir={out}"]
    live = _start([*args, f"evaluation.dataset={data}", "evaluation.max_samples=null", "quantization=none"])
    _wait_for(live, b"[5/6]")
    live.send_signal(signal.SIGSTOP)  # a live build, paused in the middle of its stages
    try:
        (working,) = [p for p in out.iterdir() if p.name.startswith(".work-")]
        killed = _start([*args, "evaluation=none"])
        _wait_for(killed, b"[2/6]")
        killed.kill()
        killed.wait()
        (dead,) = [p for p in out.iterdir() if p.name.startswith(".work-") and p != working]

        proc = run_builder("cache", "clear", "--dir", str(out / ".cache"))
        assert proc.returncode == 0, proc.stderr
        assert (
            "in use by running builds" in proc.stdout
            and "1 work folder(s) of builds that died" in proc.stdout
        )
        assert not dead.exists() and working.exists()  # the dead build's work went, the live one's stays
    finally:
        live.send_signal(signal.SIGCONT)
    _, err = live.communicate(timeout=300)
    assert live.returncode == 0, err.decode()  # its cache entries were kept for it
    (bundle,) = bundles_in(out)
    assert run_builder("verify", str(bundle)).returncode == 0

    # The next build removes what a killed build left.
    killed = _start([*args, "evaluation=none", "optimization=O1"])
    _wait_for(killed, b"[2/6]")
    killed.kill()
    killed.wait()
    assert [p for p in out.iterdir() if p.name.startswith(".work-")]
    assert run_builder(*args, "evaluation=none").returncode == 0
    assert not [p for p in out.iterdir() if p.name.startswith(".work-")]


def test_replacing_a_bundle_never_leaves_its_name_missing(bert_bundles: dict, tmp_path: Path) -> None:
    from builder.make.workspace import publish, workspace
    from builder.runtime.manifest import verify

    source = bert_bundles["feature-extraction"]
    final = tmp_path / "bundle"
    shutil.copytree(source, final)
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys\nmisses = reads = 0\n"
            f"while not os.path.exists({str(stop)!r}):\n"
            f"    reads += 1\n    misses += not os.path.isfile({str(final / 'manifest.json')!r})\n"
            "print(misses, reads)",
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        text=True,
    )
    for _ in range(200):
        with workspace(tmp_path, "0" * 64) as work:
            shutil.copytree(source, work / "bundle", dirs_exist_ok=True)
            publish(work, final)
    stop.write_text("")
    misses, reads = map(int, reader.communicate(timeout=60)[0].split())
    assert reads > 1000 and misses == 0, (misses, reads)
    verify(final)
    assert {p.name for p in tmp_path.iterdir()} == {
        "bundle",
        "stop",
    }  # the replaced bundles went with their work


@pytest.mark.slow  # real processes, several builds: run by .ci/run
def test_bundles_and_cache_entries_follow_the_umask(tiny_models: dict, tmp_path: Path) -> None:
    model = tiny_models[("bert", "feature-extraction")]
    proc = subprocess.run(
        [str(BUILDER), f"model.source={model}", *QUICK, f"output_dir={tmp_path}"],
        capture_output=True, text=True, preexec_fn=lambda: os.umask(0o027),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (bundle,) = bundles_in(tmp_path)
    assert bundle.stat().st_mode & 0o777 == 0o750  # readable by the group, as the umask allows: not 0700
    assert {p.stat().st_mode & 0o777 for p in bundle.rglob("*") if p.is_file()} == {0o640}
    assert {p.stat().st_mode & 0o777 for p in bundle.rglob("*") if p.is_dir()} == {0o750}  # 1_Pooling/
    entries = [p for p in (tmp_path / ".cache").glob("*/*") if p.is_dir()]
    assert entries and {p.stat().st_mode & 0o777 for p in entries} == {0o750}


def test_a_full_disk_is_one_clear_error(tiny_models: dict, tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(small)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        proc = run_builder(
            f"model.source={tiny_models[('bert', 'feature-extraction')]}", *QUICK, f"output_dir={small}"
        )
        text = proc.stdout + proc.stderr
        assert proc.returncode == 2 and "Traceback" not in text, text
        assert "no space left on the device" in text and str(small) in text, text
        assert bundles_in(small) == [] and not [p for p in small.iterdir() if p.name.startswith(".work-")]
    finally:
        subprocess.run(["umount", str(small)], check=False)


# ------------------------------------------------------------------------------------------------- sweeps


@pytest.mark.slow  # real processes, several builds: run by .ci/run
def test_a_sweep_with_rejected_and_failed_jobs_reports_them_and_exits_non_zero(
    tiny_models: dict, tmp_path: Path
) -> None:
    model = tiny_models[("bert", "text-classification")]
    proc = run_builder(
        "-m",
        f"model.source={model},{tmp_path / 'no-such-model'}",
        "evaluation.gate.max_relative_drop=0.5,-0.5",  # -0.5: the bundle must score 1.5x the baseline
        "task=text-classification",
        "benchmark=quick",
        "evaluation.max_samples=20",
        f"output_dir={tmp_path}",
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    (sweep,) = (tmp_path / ".sweeps").iterdir()
    rows = list(csv.DictReader((sweep / "report.csv").read_text().splitlines()))
    statuses = sorted(r["status"] for r in rows)
    assert statuses == ["failed", "failed", "published", "rejected"], rows
    reasons = {r["status"]: r["reason"] for r in rows}
    assert "quality gate" in reasons["rejected"] and "no such folder" in reasons["failed"]
    report = (sweep / "report.md").read_text()
    assert "Rejected (1, nothing published" in report and "Failed (2, nothing published" in report
    assert "Latency not measured" not in report  # the rejected row is not blamed on the hardware
    assert "3 of 4 sweep jobs published nothing" in proc.stderr
    assert len(bundles_in(tmp_path)) == 1 and read_json(next(iter(bundles_in(tmp_path))) / "metrics.json")


# ------------------------------------------------------------------------------------------- runtime only


@pytest.mark.slow
def test_a_runtime_only_install_runs_every_task(bert_bundles: dict, tiny_models: dict, tiny_decoders: dict,
                                                 tmp_path: Path) -> None:  # fmt: skip
    """`pip install .` without extras in a fresh virtualenv: load and run every task, verify, info, predict, and
    the message a build gives without the build tools. No build-time package may be imported."""
    import builder

    bundles = {task: bert_bundles[task] for task in bert_bundles.known}
    for task, source in (("zero-shot-classification", tiny_models[("bert", "zero-shot-classification")]),
                         ("text-generation", tiny_decoders["gpt2"])):  # fmt: skip
        bundles[task] = builder.build(
            overrides=[f"model.source={source}", f"task={task}", *QUICK, f"output_dir={tmp_path / 'out'}"],
            quiet=True,
        )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    root = Path(__file__).resolve().parent.parent
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(root)], capture_output=True, text=True
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    calls = {
        "feature-extraction": "b('a text').shape",
        "text-classification": "b('a text')",
        "token-classification": "b('George lives in Berlin')",
        "question-answering": "b(question='where?', context='on the mat')",
        "zero-shot-classification": "b('a text', candidate_labels=['a', 'b'])",
        "text-generation": "b('the', max_new_tokens=3, do_sample=False)",
    }
    heavy = ("torch", "transformers", "hydra", "omegaconf", "datasets", "onnx", "evaluate")
    for task, call in calls.items():
        code = (f"import sys, builder\nb = builder.load({str(bundles[task])!r})\nprint({call})\n"
                f"print([m for m in {heavy!r} if m in sys.modules])")  # fmt: skip
        proc = subprocess.run(
            [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, cwd=tmp_path
        )
        assert proc.returncode == 0, (task, proc.stderr[-2000:])
        assert proc.stdout.strip().splitlines()[-1] == "[]", (task, proc.stdout)
    cli = str(venv / "bin" / "builder")
    bundle = str(bundles["text-classification"])
    for args in (["verify", bundle], ["info", bundle]):
        proc = subprocess.run([cli, *args], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([cli, "predict", bundle], input='"a text"\n', capture_output=True, text=True)
    assert proc.returncode == 0 and '"label"' in proc.stdout, proc.stderr
    proc = subprocess.run([cli, "model.source=anything"], capture_output=True, text=True)
    assert proc.returncode == 2 and "needs the build tools" in proc.stderr and "Traceback" not in proc.stderr


def test_a_sweep_job_whose_process_died_gets_a_failed_row(bert_bundles: dict, tmp_path: Path) -> None:
    """A job writes "running" when it starts; one whose process dies never replaces it."""
    from builder.make.report import sweep_rows

    for job, result in enumerate(({"status": "published", "bundle": str(bert_bundles["text-classification"])},
                                  {"status": "running", "config": {"hardware": {"name": "avx2"}}})):  # fmt: skip
        (tmp_path / str(job)).mkdir()
        (tmp_path / str(job) / "result.json").write_text(
            json.dumps({"job": job, "overrides": [f"x={job}"], **result})
        )
    rows, bad = sweep_rows(tmp_path)
    assert [r["status"] for r in rows] == ["published", "failed"]
    assert bad == rows[1:] and "ended without a result" in bad[0]["reason"] and bad[0]["hardware"] == "avx2"
    assert bad[0]["name"] == "job 1 (x=1)"
