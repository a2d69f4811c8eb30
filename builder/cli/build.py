"""`builder [OVERRIDES...] [-m]`: the Hydra app that builds one bundle per job, and each job's one clear outcome
(the bundle and its summary, or one error; a sweep job leaves a result for the sweep report)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from builder.cli.bundle_info import summary
from builder.cli.fail import fail
from builder.errors import BuilderError, Interrupted
from builder.make.console import print_whole
from builder.version import DISTRIBUTION


def run(argv: list[str], stray_words: list[str]) -> None:
    """Build under Hydra with these overrides; `stray_words`: the words main found that are no override, reported
    with every other problem of the command line before any work."""
    import importlib.util

    missing = next((name for name in ("hydra", "torch") if importlib.util.find_spec(name) is None), None)
    if (
        missing
    ):  # found, not imported: torch loads only once the config is valid (~2 s saved on a config error)
        sys.exit(
            fail(
                BuilderError(
                    f"building bundles needs the build tools ({missing} is not installed): "
                    f"pip install '{DISTRIBUTION}[build]' (torch as a CPU build first: pip install torch==2.13.0). "
                    "Loading and running bundles (builder verify | info | predict) works without them."
                )
            )
        )

    import hydra

    import builder.make.report  # noqa: F401  (registers the resolver that names sweep folders)
    from builder.config import CONF_DIR, override_problems
    from builder.errors import ConfigError

    problems = stray_words + override_problems(argv)
    if problems:
        sys.exit(fail(ConfigError(problems)))

    @hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
    def app(cfg: Any) -> None:
        started.append(True)
        from builder.make import host_lock

        try:
            with host_lock.computing():  # the whole job, imports included: see builder/host_lock.py
                _job(cfg)
        except BuilderError as e:  # the host lock could not be taken (the job's own errors end in _job)
            sys.exit(fail(e))

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
        sys.exit(fail(ConfigError([f"{e}. See `builder --help`."])))


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
            sys.exit(fail(e))
        print_whole(f"error: {e}", file=sys.stderr)  # one failed job does not end the sweep
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
    print_whole(
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
