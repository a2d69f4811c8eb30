"""Sweep reports: one row per bundle (and per build a gate rejected), as a markdown table, a CSV, and a plot of
latency against accuracy retention with the Pareto front marked; the best bundle per hardware named.

Used by `builder report DIR...` and, at the end of a `-m` sweep, by the Hydra callback below (which reads what
the jobs wrote, since under parallel launchers the jobs ran in other processes).
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

from builder.make.card import BUSY_HOST

COLUMNS = (
    "name",
    "hardware",
    "optimization",
    "quantization",
    "size_mb",
    "p50_ms",
    "p99_ms",
    "throughput",
    "decode_tokens_per_s",  # text generation: the bundle's rate after the first token (the first decode row)
    "metric",
    "value",
    "retention_percent",
    "status",
    "reason",  # why a build was rejected or failed, or why its latency was not measured
    "measured",
    "host_load",  # share of the host's CPU other processes took while timing (see builder.make.card.BUSY_HOST)
)


def collect(folders: list[Path], skipped: list[tuple[Path, str]] | None = None) -> list[dict[str, Any]]:
    """Rows for every bundle directly in the given folders (or the folders themselves) and their rejects. A
    bundle or report that cannot be read is left out and added to `skipped` as (path, why)."""
    rows, seen = [], set()
    for folder in folders:
        candidates = (
            [folder] if (folder / "manifest.json").is_file() else sorted(folder.glob("*/manifest.json"))
        )
        for manifest in candidates:
            bundle = manifest.parent if manifest.name == "manifest.json" else manifest
            if bundle.resolve() not in seen:
                seen.add(bundle.resolve())
                _add(
                    rows,
                    skipped,
                    bundle,
                    lambda b=bundle: _row(b.name, _json(b / "metrics.json"), b, "published"),
                )
        for reject in sorted((folder / ".rejected").glob("*.json")):
            _add(rows, skipped, reject, lambda r=reject: rejected_row(r))
    return rows


def _add(rows: list, skipped: list | None, where: Path, make: Any) -> None:
    try:
        rows.append(make())
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        if skipped is None:
            raise
        skipped.append((where, f"unreadable ({type(e).__name__}: {e})"))


def _json(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"{path.name} holds {type(value).__name__}, not an object")
    return value


def rejected_row(report: Path) -> dict[str, Any]:
    record = json.loads(report.read_text())
    row = _row(record["name"], record["metrics"], None, "rejected", record["config"])
    row["reason"] = _one_line(record.get("reason", ""))
    return row


def failed_row(name: str, config: dict[str, Any], error: str) -> dict[str, Any]:
    """A job that produced nothing: its settings and its error."""
    row = _row(name, {}, None, "failed", config)
    row["reason"] = _one_line(error)
    return row


def _one_line(text: str) -> str:
    """The message on one line (a config error lists its problems below a heading), cut to fit a table."""
    line = " ".join(text.split())
    return line if len(line) <= 240 else line[:237] + "..."


def _row(
    name: str, metrics: dict[str, Any], folder: Path | None, status: str, config: dict[str, Any] | None = None
) -> dict[str, Any]:
    if config is None and folder is not None:
        import yaml

        config = yaml.safe_load((folder / "build.yaml").read_text())["config"]
    config = config or {}
    bench = metrics.get("benchmark", {})
    first = (bench.get("results") or [{}])[0].get("bundle", {})
    ev = metrics.get("evaluation", {})
    metric = ev.get("metric")
    return {
        "name": name,
        "hardware": config.get("hardware", {}).get("name"),
        "optimization": config.get("optimization", {}).get("level"),
        "quantization": config.get("quantization", {}).get("method"),
        "size_mb": round(metrics.get("size", {}).get("bundle_model_bytes", 0) / 1e6, 2) or None,
        "p50_ms": first.get("p50_ms"),
        "p99_ms": first.get("p99_ms"),
        "throughput": first.get("throughput_per_s"),
        "decode_tokens_per_s": next(
            (
                r["after_first_token"]["bundle"]["tokens_per_s"]
                for r in bench.get("results") or []
                if r.get("after_first_token")
            ),
            None,
        ),
        "metric": metric,
        "value": ev.get("bundle", {}).get(metric) if metric else None,
        "retention_percent": ev.get("retention_percent"),
        "status": status,
        "reason": None if bench.get("measured", True) else bench.get("reason"),
        "measured": bool(bench.get("measured")),
        "host_load": bench.get("host_load_by_others"),
    }


def pareto(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Published rows no other published row beats on both latency (lower) and retention (higher)."""
    points = [
        r
        for r in rows
        if r["status"] == "published" and r["p50_ms"] is not None and r["retention_percent"] is not None
    ]
    front = []
    for r in points:
        dominated = any(
            o is not r
            and o["p50_ms"] <= r["p50_ms"]
            and o["retention_percent"] >= r["retention_percent"]
            and (o["p50_ms"] < r["p50_ms"] or o["retention_percent"] > r["retention_percent"])
            for o in points
        )
        if not dominated:
            front.append(r)
    return sorted(front, key=lambda r: r["p50_ms"])


def best_per_hardware(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per hardware: the fastest published bundle whose latency was measured on that hardware."""
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["status"] != "published" or not r["measured"] or r["p50_ms"] is None:
            continue
        if r["hardware"] not in best or r["p50_ms"] < best[r["hardware"]]["p50_ms"]:
            best[r["hardware"]] = r
    return best


def write(rows: list[dict[str, Any]], out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "report.md", "csv": out / "report.csv", "plot": out / "report.png"}
    with open(paths["csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: r[k] for k in COLUMNS} for r in rows)
    front = {id(r) for r in pareto(rows)}

    def cell(v: Any) -> str:
        return "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(("", *COLUMNS[1:], "pareto")) + " |", "|" + " --- |" * (len(COLUMNS) + 1)]
    for r in rows:
        lines.append(
            "| "
            + " | ".join([r["name"], *(cell(r[c]) for c in COLUMNS[1:]), "*" if id(r) in front else ""])
            + " |"
        )
    best = best_per_hardware(rows)
    lines += ["", "Best (fastest published, measured on its hardware) per hardware:", ""]
    lines += [f"- {hw}: {r['name']} ({r['p50_ms']:.2f} ms p50)" for hw, r in sorted(best.items())] or [
        "- none"
    ]
    busy = [r["name"] for r in rows if (r["host_load"] or 0) > BUSY_HOST]
    if busy:
        lines += [
            "",
            f"Timed on a busy host (other processes took over {100 * BUSY_HOST:.0f}% of its CPU; latencies inflated): "
            + ", ".join(busy),
        ]
    unmeasured = [f"{r['name']} ({r['reason']})" for r in rows if r["status"] == "published" and r["reason"]]
    if unmeasured:
        lines += ["", "Latency not measured: " + "; ".join(unmeasured)]
    for status in ("rejected", "failed"):
        mine = [r for r in rows if r["status"] == status]
        if mine:
            lines += ["", f"{status.capitalize()} ({len(mine)}, nothing published for them):", ""]
            lines += [f"- {r['name']}: {r['reason']}" for r in mine]
    paths["markdown"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    _plot(rows, paths["plot"])
    return paths


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    points = [r for r in rows if r["p50_ms"] is not None and r["retention_percent"] is not None]
    for hw in sorted({r["hardware"] for r in points}):
        mine = [r for r in points if r["hardware"] == hw]
        ax.scatter([r["p50_ms"] for r in mine], [r["retention_percent"] for r in mine], label=hw, s=40)
        for r in mine:
            ax.annotate(
                f"{r['optimization']}/{r['quantization']}",
                (r["p50_ms"], r["retention_percent"]),
                fontsize=7,
                xytext=(4, 3),
                textcoords="offset points",
            )
    front = pareto(rows)
    if front:
        xs, ys = [r["p50_ms"] for r in front], [r["retention_percent"] for r in front]
        ax.plot(xs, ys, "k--", lw=1)
        ax.scatter(xs, ys, s=160, facecolors="none", edgecolors="k", label="Pareto front")
    ax.set_xlabel("latency p50 (ms, lower is better)")
    ax.set_ylabel("task metric kept vs PyTorch (%)")
    ax.set_title("bundles: latency vs accuracy retention")
    ax.grid(alpha=0.3)
    if points:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sweep_id(argv: list[str]) -> str:
    """A sweep's folder name (`hydra.sweep.dir`), from its command line: content, not time, so different sweeps
    into one output_dir keep their jobs and reports apart."""
    args = sorted(a for a in argv if a not in ("-m", "--multirun"))
    return hashlib.sha256("\0".join(args).encode()).hexdigest()[:12]


try:  # the sweep callback needs Hydra (build-time); the report functions above do not
    import atexit
    import sys

    from hydra.experimental.callback import Callback
    from omegaconf import OmegaConf

    # Registered on import, which also happens in launcher workers (they unpickle this callback). use_cache: the
    # value resolved in the sweep's own process is copied by Hydra into every job's config, so workers started
    # with another command line still see the sweep's id.
    if not OmegaConf.has_resolver("builder_sweep_id"):
        OmegaConf.register_new_resolver("builder_sweep_id", lambda: sweep_id(sys.argv[1:]), use_cache=True)

    class SweepReport(Callback):
        """At the end of a sweep: the report of what its jobs recorded (each job writes result.json into its
        sweep subfolder), written into the sweep folder; exits non-zero if a job failed."""

        def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
            sweep = Path(config.hydra.sweep.dir)
            for old in sweep.glob("*/result.json"):  # a previous sweep's jobs
                old.unlink()
            # A launcher that raises (a job's process died) skips on_multirun_end: report at exit instead.
            self._reported = False
            atexit.register(self._report, sweep, True)

        def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
            self._report(Path(config.hydra.sweep.dir), False)

        def _report(self, sweep: Path, at_exit: bool) -> None:
            if self._reported:
                return
            self._reported = True
            rows, bad = sweep_rows(sweep)
            paths = write(rows, sweep)
            print(f"sweep report: {paths['markdown']} ({len(rows)} rows), {paths['csv']}, {paths['plot']}")
            for r in bad:
                print(f"job {r['name']} {r['status']}: {r['reason']}", file=sys.stderr)
            if bad and not at_exit:  # at exit the launcher's own failure sets the exit code
                print(f"{len(bad)} of {len(rows)} sweep jobs published nothing", file=sys.stderr)
                sys.exit(2)

    def sweep_rows(sweep: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """One row per job of the sweep, from the result.json it wrote when it started and again when it ended:
        a job still "running" when the sweep ends died without a result. Returns (rows, the rows of jobs that
        published nothing)."""
        rows: list[dict[str, Any]] = []
        for path in sorted(sweep.glob("*/result.json"), key=lambda p: (len(p.parent.name), p.parent.name)):
            result = json.loads(path.read_text())
            name = f"job {result['job']} ({' '.join(result.get('overrides', []))})"
            if result["status"] == "published":
                rows += collect([Path(result["bundle"])])
            elif result["status"] == "rejected":
                rows.append(rejected_row(Path(result["report"])))
            else:
                error = result.get("error") or "its process ended without a result (killed or crashed)"
                rows.append(failed_row(name, result.get("config", {}), error))
        return rows, [r for r in rows if r["status"] != "published"]

except ImportError:  # pragma: no cover - runtime-only installs
    pass
