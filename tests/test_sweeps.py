"""Sweeps through Hydra's launchers share the stage cache and end with one report; concurrent identical
builds leave one intact bundle."""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

import pytest
from conftest import BUILDER, bundles_in, read_json, run_builder

COMMON = [
    "task=text-classification",
    "benchmark=quick",
    "evaluation.max_samples=8",
    "fidelity.min_agreement=0.5",
]


def statuses(folder: Path) -> dict[str, str]:
    return {k: v["status"] for k, v in read_json(folder / "metrics.json")["stages"].items()}


@pytest.mark.parametrize(
    "launcher",
    [
        ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
        pytest.param(
            ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"], marks=pytest.mark.slow
        ),
    ],
    ids=["joblib", "submitit_local"],
)
def test_four_job_sweep_exports_once_and_reports(
    tiny_models: dict, tmp_path: Path, launcher: list[str]
) -> None:
    model = tiny_models[("bert", "text-classification")]
    proc = run_builder(
        "-m",
        *launcher,
        f"model.source={model}",
        "quantization=none,dynamic",
        "optimization=O1,O2",
        *COMMON,
        f"output_dir={tmp_path}",
        env={"PYTHONUNBUFFERED": "1"},  # where print writes a line's text and its newline apart
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    if "joblib" in launcher[0]:  # submitit writes each job's output to that job's own log instead
        # Parallel jobs' lines: whole, each with its job's name in front.
        stage_lines = [line for line in proc.stdout.splitlines() if "/6] " in line]
        assert len(stage_lines) == 24, proc.stdout
        assert all(re.fullmatch(r"\[job \d\]   \[\d/6\] \w+ \.\.\. .+", x) for x in stage_lines), stage_lines
        assert {x.split("]")[0] for x in stage_lines} == {"[job 0", "[job 1", "[job 2", "[job 3"}
    folders = bundles_in(tmp_path)
    assert len(folders) == 4
    exports = [statuses(f)["export"] for f in folders]
    assert exports.count("built") == 1 and exports.count("reused") == 3
    (sweep,) = (tmp_path / ".sweeps").iterdir()  # named by the sweep's command line
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name[0] != ".") == ["0", "1", "2", "3"]
    rows = list(csv.DictReader((sweep / "report.csv").read_text().splitlines()))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"published"}
    assert (sweep / "report.png").stat().st_size > 10_000
    assert "Best (fastest published" in (sweep / "report.md").read_text()
    assert_timed_alone([read_json(f / "metrics.json") for f in folders])


def assert_timed_alone(metrics: list[dict]) -> None:
    """No job computed (or timed) while another job timed latency: see builder/host_lock.py."""
    for m in metrics:
        start, end = m["benchmark"]["timed_window"]
        assert m["benchmark"]["host_exclusive"] is True and m["benchmark"]["waited_for_host_s"] >= 0
        for other in metrics:
            if other is m:
                continue
            busy = [s["window"] for name, s in other["stages"].items() if name != "benchmark"]
            busy.append(other["benchmark"]["timed_window"])
            assert all(b_end <= start or b_start >= end for b_start, b_end in busy), (
                m["stages"],
                other["stages"],
            )


def test_identical_builds_started_together_leave_one_intact_bundle(tiny_models: dict, tmp_path: Path) -> None:
    model = tiny_models[("roberta", "text-classification")]
    args = [str(BUILDER), f"model.source={model}", *COMMON, f"output_dir={tmp_path}"]
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        outs.append(out)
    # The per-key cache lock: one build exported, the other waited and reused its export.
    exports = [next(line for line in out.splitlines() if "] export ..." in line) for out in outs]
    assert sum("(reused)" in line for line in exports) == 1, exports
    (folder,) = bundles_in(tmp_path)
    assert run_builder("verify", str(folder)).returncode == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".staging", ".work", ".trash"))]


def test_report_command_on_output_folders(tiny_models: dict, tmp_path: Path) -> None:
    model = tiny_models[("bert", "text-classification")]
    assert run_builder(f"model.source={model}", *COMMON, f"output_dir={tmp_path / 'a'}").returncode == 0
    assert (
        run_builder(
            f"model.source={model}", *COMMON, "quantization=none", f"output_dir={tmp_path / 'b'}"
        ).returncode
        == 0
    )
    proc = run_builder("report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    assert len(list(csv.DictReader((tmp_path / "r" / "report.csv").read_text().splitlines()))) == 2
    assert (tmp_path / "r" / "report.png").exists() and "avx" in proc.stdout
    assert run_builder("report", str(tmp_path / "empty")).returncode != 0
