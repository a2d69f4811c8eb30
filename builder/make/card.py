"""The bundle's model card (README.md): Hugging Face metadata with a model-index, and readable tables of what was
built and measured."""

from __future__ import annotations

from typing import Any


def model_card(
    config: dict[str, Any], metrics: dict[str, Any], manifest_extra: dict[str, Any], name: str
) -> str:
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    task = config["task"]["name"]
    quant = config["quantization"]["method"]
    source = manifest_extra["source"]
    base = config["model"].get("base_model") or (source.get("repo_id") if source["kind"] == "hub" else None)
    evals = []
    evaluation = metrics.get("evaluation", {})
    if evaluation.get("bundle"):
        dataset = evaluation["dataset"]
        for metric, value in evaluation["bundle"].items():
            if metric.endswith("_total") or metric == "total":
                continue
            evals.append(
                EvalResult(
                    task_type=task,
                    dataset_type=dataset if "/" in dataset and not dataset.startswith("/") else "local",
                    dataset_name=dataset if dataset != "builtin" else f"builder built-in {task} set",
                    dataset_split=evaluation.get("split"),
                    dataset_revision=evaluation.get("revision"),
                    metric_type=metric,
                    metric_value=round(float(value), 6),
                )
            )
    fidelity = metrics.get("fidelity", {})
    for output, m in fidelity_rows(fidelity.get("outputs", {})).items():
        for metric, value in (
            ("cosine_similarity", m["cosine_mean"]),
            ("argmax_agreement", m.get("argmax_agreement")),
        ):
            if value is not None:
                evals.append(
                    EvalResult(
                        task_type=task,
                        dataset_type="builder-fidelity",
                        dataset_name=f"builder built-in inputs, {output} vs PyTorch",
                        metric_type=metric,
                        metric_name=f"{output} {metric.replace('_', ' ')}",
                        metric_value=round(float(value), 6),
                    )
                )
    data = ModelCardData(
        library_name="onnx",
        pipeline_tag=task,
        base_model=base,
        base_model_relation="quantized" if (base and quant != "none") else None,
        tags=[
            "onnx",
            "onnxruntime",
            "builder",
            config["hardware"]["name"],
            f"optimization-{config['optimization']['level']}",
            f"quantization-{quant}",
        ],
        model_name=name,
        eval_results=evals or None,
        license=manifest_extra["source"].get("license"),
    )
    return str(
        ModelCard(f"---\n{data.to_yaml()}\n---\n\n{_card_body(config, metrics, manifest_extra, name)}")
    )


def source_name(src: dict[str, Any], model: dict[str, Any]) -> str:
    """The source model as a card names it: a Hub id at its commit, a package, or a local folder's name (never
    a path on the build machine)."""
    if src["kind"] == "hub":
        return f"{src['repo_id']} @ {src['commit']}"
    if src["kind"] == "package":
        return f"{model.get('base_model') or model.get('name') or src['package']} (from the package {src['package']})"
    name = model.get("name") or str(model["source"]).rstrip("/\\").replace("\\", "/").split("/")[-1]
    return f"{name} (a local model folder)"


def _card_body(config: dict[str, Any], metrics: dict[str, Any], extra: dict[str, Any], name: str) -> str:
    origin = source_name(extra["source"], config["model"])
    lines = [
        f"# {name}",
        "",
        f"An ONNX Runtime bundle of **{origin}** for `{config['task']['name']}`, built by builder "
        f"{extra['versions']['builder']} for hardware profile `{config['hardware']['name']}`.",
        "",
        "| setting | value |",
        "| --- | --- |",
        f"| optimization | {config['optimization']['level']} |",
        f"| quantization | {_quant_text(metrics)} |",
        f"| fused operators | {_fused_text(metrics)} |",
        f"| model size | {_size_text(metrics)} |",
        "",
        "## Fidelity to the PyTorch model",
        "",
    ]
    fid = metrics.get("fidelity", {})
    if fid.get("measured"):
        lines += [
            "| output | cosine (mean) | cosine (min) | argmax agreement | max abs diff |",
            "| --- | --- | --- | --- | --- |",
        ]
        for out, m in fidelity_rows(fid["outputs"]).items():
            agree = f"{m['argmax_agreement']:.4f}" if "argmax_agreement" in m else "-"
            lines.append(
                f"| {out} | {m['cosine_mean']:.6f} | {m['cosine_min']:.6f} | {agree} | {m['max_abs_diff']:.3g} |"
            )
        if fid.get("generation"):
            g = fid["generation"]
            lines += [
                "",
                f"Greedy continuations of {g['prompts']} built-in prompts: {100 * g['greedy_match']:.1f}% of the first "
                f"{g['tokens']} tokens as PyTorch's ({100 * g['exact']:.0f}% of the prompts identical).",
            ]
    else:
        lines.append(f"Not measured: {fid.get('reason', 'skipped')}.")
    if not metrics.get("host", {}).get("runs_profile", True):
        lines += [
            "",
            f"Measured on {metrics['host']['cpu']}, which cannot run the `{config['hardware']['name']}` profile: "
            "accuracy numbers come from this host's kernels, and latency was not measured.",
        ]
    lines += ["", "## Task metric vs the PyTorch model", ""]
    ev = metrics.get("evaluation", {})
    if ev.get("bundle"):
        lines += [
            f"{ev['examples']} examples of {ev['dataset']}; both models run through the same pipeline code.",
            "",
            "| metric | PyTorch baseline | bundle | kept |",
            "| --- | --- | --- | --- |",
        ]
        higher = ev.get("higher_is_better", True)
        for metric, value in ev["bundle"].items():
            if metric.endswith("total") or metric == "tokens":
                continue
            base = ev["baseline"].get(metric)
            ratio = (value / base if higher else base / value) if base and value else None
            kept = f"{100 * ratio:.2f}%" if ratio is not None else "-"
            mark = " (primary)" if metric == ev["metric"] else ""
            lines.append(f"| {metric}{mark} | {base:.4f} | {value:.4f} | {kept} |")
        if "gate" in ev:
            g = ev["gate"]
            lines += [
                "",
                f"Quality gate: keep >= {100 * (1 - g['max_relative_drop']):.1f}% of the baseline's {ev['metric']}: passed.",
            ]
    else:
        lines.append("Not evaluated.")
    lines += ["", "## Latency (measured at build time)", ""]
    bench = metrics.get("benchmark", {})
    if bench.get("measured"):
        host = metrics["host"]
        lines += [
            f"{host['cpu']}, {bench['threads']} thread(s), provider {bench['provider']}, "
            f"{bench['iterations']} timed calls after {bench['warmup']} warm-up calls"
            + (
                f", and {bench['baseline_iterations']} of the PyTorch model "
                f"({_baseline_where(bench)}), in {bench['rounds']} alternating "
                f"rounds of back-to-back calls (each block after {_settle_text(bench['settle_calls'])})."
                if bench.get("baseline_iterations")
                else "."
            ),
            "",
            "| workload | batch | tokens | bundle p50 ms | bundle p99 ms | PyTorch p50 ms | speed-up (p50) | bundle items/s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in bench["results"]:
            pt = r.get("pytorch", {})
            speed = f"{r['speedup_p50']:.2f}x" if "speedup_p50" in r else "-"
            pt50 = f"{pt['p50_ms']:.2f}" if pt else "-"
            lines.append(
                f"| {r.get('workload', 'forward')} | {r['batch_size']} | {r['sequence_length']} "
                f"| {r['bundle']['p50_ms']:.2f} | {r['bundle']['p99_ms']:.2f} "
                f"| {pt50} | {speed} | {r['bundle']['throughput_per_s']:.1f} |"
            )
        lines += _cut_counts_lines(bench)
        if any(r.get("workload") == "decode" for r in bench["results"]):
            lines += [
                "",
                "Text generation: prefill is the prompt to the first token; decode is a whole call, the prompt and "
                f"then {bench.get('new_tokens')} tokens (eos ignored), and its items/s are new tokens per second over "
                "the call, the prompt's time included; PyTorch runs `generate` with greedy decoding.",
                *_after_first_token_lines(bench),
            ]
        note = busy_host_note(bench)
        lines += ["", f"Note: {note}."] if note else []
    else:
        lines.append(f"Not measured: {bench.get('reason', 'skipped')}.")
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "import builder  # pip install ort-bundle-builder (the runtime: onnxruntime, tokenizers, numpy)",
        "",
        f'pipeline = builder.load("{name}")  # verifies every file first',
        "```",
        "",
        *_peer_lines(config["task"]["name"], name),
        "Or with ONNX Runtime alone: "
        + ", ".join(
            f"`{g['file']}` ({role}: {', '.join(g['inputs'])} -> {', '.join(g['outputs'])})"
            for role, g in extra["runtime"]["graphs"].items()
        )
        + ".",
        "",
        "`manifest.json` holds the sha256 of every file (`builder verify <folder>`); `build.yaml` the full",
        "build configuration; `metrics.json` every measurement above and the host it was taken on.",
        "",
    ]
    return "\n".join(lines)


def _after_first_token_lines(bench: dict[str, Any]) -> list[str]:
    """The decode rate after the first token, per decode row: the steps' share of a call, from the medians."""
    rows = [r for r in bench["results"] if r.get("after_first_token")]
    if not rows:
        return []
    lines = [
        "",
        "Decode after the first token ((decode p50 - prefill p50) / (new tokens - 1), from the same run):",
        "",
        "| batch | tokens | bundle ms/step | bundle tokens/s | PyTorch ms/step | PyTorch tokens/s | speed-up |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        a = r["after_first_token"]
        pt = a.get("pytorch")
        theirs = (
            f"{pt['step_ms']:.2f} | {pt['tokens_per_s']:.1f} | {a['speedup']:.2f}x" if pt else "- | - | -"
        )
        lines.append(
            f"| {r['batch_size']} | {r['sequence_length']} | {a['bundle']['step_ms']:.2f} "
            f"| {a['bundle']['tokens_per_s']:.1f} | {theirs} |"
        )
    return lines


def _peer_lines(task: str, name: str) -> list[str]:
    from builder.make.peers import usage_lines
    from builder.tasks import TASKS

    lines = usage_lines(task, TASKS[task].optimum_class, name)
    return [*lines, ""] if lines else []


def fidelity_rows(outputs: dict[str, Any]) -> dict[str, Any]:
    """Fidelity per output, a decoder's key/value cache tensors (present.*) folded into one row per graph."""
    rows: dict[str, Any] = {}
    caches: dict[str, list[dict[str, Any]]] = {}
    for key, value in outputs.items():
        graph, _, name = key.rpartition(".present.") if ".present." in key else ("", "", key)
        if key.startswith("present.") or graph:
            caches.setdefault(graph, []).append(value)
        else:
            rows[key] = value
    for graph, values in caches.items():
        rows[f"{graph + ' ' if graph else ''}key/value cache ({len(values)} tensors)"] = {
            "cosine_mean": sum(m["cosine_mean"] for m in values) / len(values),
            "cosine_min": min(m["cosine_min"] for m in values),
            "max_abs_diff": max(m["max_abs_diff"] for m in values),
        }
    return rows


BUSY_HOST = 0.1  # other processes took more than this share of the host's CPU while the benchmark timed


def busy_host_note(bench: dict[str, Any]) -> str | None:
    """A warning for latencies timed while other work loaded the host (they are then inflated)."""
    load = bench.get("host_load_by_others")
    if load is None or load <= BUSY_HOST:
        return None
    return (
        f"other processes used {100 * load:.0f}% of this host's CPU while timing: the latencies are inflated; "
        "rebuild on a quiet host to measure them"
    )


def _cut_counts_lines(bench: dict[str, Any]) -> list[str]:
    """Rows whose slow calls got fewer timed calls than configured (benchmark.max_seconds) say how many."""
    cut = []
    for r in bench["results"]:
        want = {"bundle": bench["iterations"], "pytorch": bench.get("baseline_iterations")}
        if any(side in r and r[side]["calls"] < want[side] for side in want):
            settle = r.get("untimed_calls", {}).get("settle_per_block", {})
            calls = " and ".join(
                f"{r[s]['calls']} {'PyTorch' if s == 'pytorch' else s}"
                for s in ("bundle", "pytorch")
                if s in r
            )
            unsettled = ", without settling calls" if settle and not any(settle.values()) else ""
            cut.append(f"{r.get('workload', 'forward')} at batch {r['batch_size']}: {calls} calls{unsettled}")
    if not cut:
        return []
    return [
        "",
        f"Slow calls are timed for about {bench['max_seconds']:g} s per side (at least {bench['min_calls']} calls; "
        f"`benchmark.max_seconds`): {'; '.join(cut)}.",
    ]


def _settle_text(settle: Any) -> str:
    if not isinstance(settle, dict):  # bundles built before settling was set per side
        return f"{settle} settling calls"
    label = {"bundle": "bundle", "pytorch": "PyTorch model"}
    return " and ".join(
        f"{n} settling call{'s' if n != 1 else ''} of the {label.get(side, side)}"
        for side, n in settle.items()
    )


def _quant_text(metrics: dict[str, Any]) -> str:
    q = metrics.get("quantize", {})
    if q.get("method", "none") == "none":
        return "none (fp16)" if metrics.get("optimize", {}).get("fp16") else "none (fp32)"
    if q["method"] == "int4":
        kept = q.get("float_nodes") or []
        return (
            f"int4 weight-only (MatMulNBits): blocks of {q['block_size']}, "
            f"{'symmetric' if q['symmetric'] else 'with zero points'}, accuracy level {q['accuracy_level']}, "
            f"ops {', '.join(q['op_types'])}" + (f"; kept in float: {', '.join(kept)}" if kept else "")
        )
    text = (
        f"{q['method']} int8: weights {q['weight_type']}, activations {q['activation_type']}, "
        f"per-channel {q['per_channel']}, reduce-range {q['reduce_range']}, ops {', '.join(q['op_types'])}"
    )
    if q["method"] == "dynamic":  # DynamicQuantizeLinear: one scale per tensor, the batch's rows together
        text += (
            "; activations scaled by each call's whole batch, so batched answers can differ slightly from one at a "
            "time (batch_size=1)"
        )
    return text


def _fused_text(metrics: dict[str, Any]) -> str:
    fused = dict(metrics.get("optimize", {}).get("fused_operators") or {})
    if not fused:  # optimization=none: what export itself fused (a decoder's attention)
        for graph in (metrics.get("export", {}).get("graphs") or {}).values():
            if graph.get("attention") == "GroupQueryAttention":
                fused["GroupQueryAttention"] = fused.get("GroupQueryAttention", 0) + graph["layers"]
    return ", ".join(f"{op} x{n}" for op, n in fused.items()) or "none"


def _size_text(metrics: dict[str, Any]) -> str:
    s = metrics.get("size", {})
    if not s:
        return "-"
    return f"{s['bundle_model_bytes'] / 1e6:.1f} MB ({s['ratio_to_fp32']:.2f}x of fp32 {s['fp32_model_bytes'] / 1e6:.1f} MB)"


def _baseline_where(bench: dict[str, Any]) -> str:
    """Where and in what precision the PyTorch baseline ran."""
    where = "on the GPU" if bench.get("baseline_device") == "cuda" else "on the CPU"
    return f"{where}, in fp16" if bench.get("baseline_dtype") == "float16" else where
