"""`builder verify` and `builder info`, and the summary a build prints: what a bundle is and what was measured, read
from its manifest and metrics (runtime only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
    on_gpu += " in fp16" if bench.get("baseline_dtype") == "float16" else ""
    for r in bench.get("results", []):
        workload = r.get("workload", "forward")
        shape = f"batch {r['batch_size']}, {r['sequence_length']} tokens, {bench['threads']} thread(s)"
        # text generation: tokens per second after the first token, and over the whole call
        if workload == "decode":
            ours, theirs = r["bundle"]["throughput_per_s"], r.get("pytorch", {}).get("throughput_per_s")
            whole = f"{ours:.1f}" + (f" vs {theirs:.1f}" if theirs else "")
            after = r.get("after_first_token")
            if after:
                text = f"{after['bundle']['tokens_per_s']:.1f} tokens/s after the first token"
                if "pytorch" in after:
                    text += f" vs PyTorch{on_gpu} {after['pytorch']['tokens_per_s']:.1f} ({after['speedup']:.2f}x faster)"
                whole = f"; {whole} over the whole call"
            else:
                text, whole = f"{whole} tokens/s over the whole call", ""
            lines.append(f"{'decode':<9} {text} [{shape}, {bench.get('new_tokens')} new tokens{whole}]")
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


def verify(path: Path) -> int:
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


def info(path: Path, as_json: bool) -> int:
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
