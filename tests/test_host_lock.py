"""Builds on one host time latency only while no other build computes (builder/host_lock.py), and say when
other processes loaded the host while they timed. Real processes and real flock locks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from builder.hardware import cpu_seconds, load_by_others
from builder.make import host_lock
from builder.make.card import busy_host_note

HOLDER = """
import sys, time
from pathlib import Path
from builder.make import host_lock
with host_lock.{kind}():
    Path(sys.argv[1]).write_text("holding")
    while not Path(sys.argv[2]).exists():
        time.sleep(0.02)
"""


def _start(kind: str, tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path, Path]:
    holding, release = tmp_path / f"{name}.holding", tmp_path / f"{name}.release"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER.format(kind=kind), str(holding), str(release)])
    return proc, holding, release


def _wait_for(path: Path, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path.name} never appeared"
        time.sleep(0.02)


@pytest.fixture
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "locks"
    folder.mkdir()
    monkeypatch.setenv("BUILDER_HOST_LOCK_DIR", str(folder))  # children inherit it
    return folder


def test_timing_waits_for_other_builds_and_new_builds_wait_for_it(lock_dir: Path, tmp_path: Path) -> None:
    running, running_holds, running_release = _start("computing", tmp_path, "running")
    _wait_for(running_holds)
    seen: dict[str, object] = {}
    entered = threading.Event()

    def build_that_times() -> None:
        with host_lock.computing(), host_lock.measuring() as waited:  # as in a build: computing, then timing
            seen["waited"], seen["entered_after"] = waited, time.perf_counter() - started
            entered.set()
            time.sleep(0.3)
            seen["late_ran_during_timing"] = late_holds.exists()

    thread = threading.Thread(target=build_that_times)
    started = time.perf_counter()
    thread.start()
    assert not entered.wait(0.5), "timed while another build computed"
    # A build that starts while the timing waits queues behind it (else a stream of builds could starve it).
    late, late_holds, late_release = _start("computing", tmp_path, "late")
    late_release.write_text("")
    time.sleep(0.5)
    assert not late_holds.exists(), "a build that started later went ahead of the waiting timing"
    running_release.write_text("")
    running.wait(timeout=30)
    thread.join(timeout=60)
    late.wait(timeout=30)
    assert entered.is_set()
    assert 0.9 <= seen["waited"] <= seen["entered_after"]  # it reports how long it waited
    assert seen["late_ran_during_timing"] is False, "a build ran while another timed"
    assert late_holds.exists()


def test_timing_gives_back_what_it_took(lock_dir: Path) -> None:
    """After timing, a build holds what it held before: nothing outside a build, its shared hold inside one.
    Disabled, timing takes no lock and waited nothing."""
    with host_lock.measuring(enabled=False) as waited:
        assert waited == 0.0 and "compute" not in host_lock._held
    with host_lock.measuring() as waited:
        assert 0.0 <= waited < 0.5 and "compute" in host_lock._held  # no other build: no wait
    assert "compute" not in host_lock._held and "gate" not in host_lock._held
    with host_lock.computing():
        with host_lock.measuring():
            pass
        assert "compute" in host_lock._held  # back to shared, still held
    assert not host_lock._held


def test_two_builds_timing_at_once_take_turns(lock_dir: Path) -> None:
    script = textwrap.dedent(
        """
        import json, sys, time
        from builder.make import host_lock
        with host_lock.computing():
            with host_lock.measuring():
                start = time.time(); time.sleep(0.3); end = time.time()
        print(json.dumps([start, end]))
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(3)
    ]
    windows = sorted(json.loads(p.communicate(timeout=60)[0]) for p in procs)
    for (_, end), (start, _) in zip(windows, windows[1:], strict=False):
        assert start >= end, f"two timings overlapped: {windows}"


def test_load_of_other_processes_is_measured() -> None:
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        before, start = cpu_seconds(), time.perf_counter()
        time.sleep(1.0)
        load = load_by_others(before, cpu_seconds(), time.perf_counter() - start)
    finally:
        burner.kill()
    assert load is not None and load >= 0.7 / (os.cpu_count() or 1)  # the burner takes one core
    note = busy_host_note({"host_load_by_others": load})
    assert note and "inflated" in note
    assert busy_host_note({"host_load_by_others": 0.02}) is None


def test_an_unusable_lock_folder_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUILDER_HOST_LOCK_DIR", str(tmp_path / "missing"))
    with pytest.raises(Exception, match="BUILDER_HOST_LOCK_DIR"), host_lock.computing():
        pass
