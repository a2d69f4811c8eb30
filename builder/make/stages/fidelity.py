"""fidelity: each built graph vs the unoptimized PyTorch model on the built-in inputs (varied lengths, left and
right padding): max abs difference, cosine similarity, argmax agreement. Gated by `fidelity.*`."""

from __future__ import annotations

from typing import Any

import numpy as np

from builder.errors import StageError
from builder.make.context import BuildContext, runtime_section
from builder.make.files import has_operator
from builder.make.models import TorchEngine
from builder.runtime.engine import OnnxEngine
from builder.runtime.session import as_taken, float_inputs
from builder.tasks import Output
from builder.tasks.base import differs
from builder.tasks.torch_module import torch_outputs


def run(ctx: BuildContext) -> dict[str, Any]:
    try:
        sessions = ctx.sessions.of(ctx.graphs)
    except Exception as e:  # e.g. fp16 kernels missing on a host without the profile's GPU
        return {"measured": False, "reason": f"cannot run on this host: {e}"[:300]}
    baseline = ctx.models.torch_modules(eager=False)
    facts = ctx.models.facts
    graphs = ctx.models.graphs
    per_output = {}
    for graph in graphs:
        session = sessions[graph.role]
        taken, types = [i.name for i in session.get_inputs()], float_inputs(session)
        fused = has_operator(ctx.graphs[graph.role], "GroupQueryAttention")
        pairs = []
        for batch in ctx.task.fidelity_batches(facts, graph, baseline):
            batch = ctx.task.reference_batch(batch, fused)
            ref = torch_outputs(baseline[graph.role], batch, graph.input_names(facts))
            got = session.run(list(graph.output_names), as_taken({n: batch[n] for n in taken}, types))
            pairs.append((batch, ref, got))
        for i, output in enumerate(graph.outputs):
            key = output.name if len(graphs) == 1 else f"{graph.role}.{output.name}"
            items = [(*masks(batch, output, r[i]), r[i], g[i]) for batch, r, g in pairs]
            per_output[key] = compare(items, output)
    provider = next(iter(sessions.values())).get_providers()[0]
    record: dict[str, Any] = {"measured": True, "provider": provider, "outputs": per_output}
    record["passed"], record["failures"] = _gate(ctx.cfg.fidelity, per_output)
    runtime = runtime_section(ctx)
    bundle = OnnxEngine(ctx.model_files, runtime, sessions=sessions)
    generation = ctx.task.generation_fidelity(bundle, TorchEngine(ctx, runtime), ctx.cfg.fidelity)
    if generation is not None:
        record["generation"] = generation
        record["failures"] += generation.pop("failures")
        record["passed"] = not record["failures"]
    if not record["passed"]:
        raise StageError(
            "fidelity: the bundle strays too far from the PyTorch model: "
            + "; ".join(record["failures"])
            + ". No bundle was written. Use less aggressive settings (quantization=none, optimization=O2), "
            "or accept the difference by loosening the bound named above on the command line.",
            record,
        )
    return record


def masks(batch: dict[str, np.ndarray], output: Output, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(this call's token mask [batch, tokens], the whole mask [batch, positions]) of an output: True where a token or
    position is real. Its tokens are the mask's last positions (a decoder's mask also covers its past); a cache's
    positions are the whole mask's. Output.mask None: every one is real."""
    tokens = value.shape[1] if value.ndim > 1 else 1
    if output.mask is None:
        positions = value.shape[2] if output.cache else tokens
        return np.ones((value.shape[0], tokens), dtype=bool), np.ones((value.shape[0], positions), dtype=bool)
    full = batch[output.mask].astype(bool)
    return full[:, -tokens:] if output.per_token else full[:, -batch["input_ids"].shape[1] :], full


def cache_vectors(ref: np.ndarray, got: np.ndarray, full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two caches [B, heads, positions, dim] as the vectors of the positions the whole mask marks real. A cache
    that keeps only a sliding window's last positions (transformers' for Mistral) compares those."""
    kept = min(ref.shape[2], got.shape[2])
    full = full[:, full.shape[1] - kept :]
    ref, got = ref[:, :, ref.shape[2] - kept :], got[:, :, got.shape[2] - kept :]
    return ref.transpose(0, 2, 1, 3)[full], got.transpose(0, 2, 1, 3)[full]


def compare(items: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], output: Output) -> dict:
    """items: (this call's token mask [B,T], the whole attention mask (a decoder's past included), reference,
    candidate). A cache compares the positions the whole mask marks real. Per-token outputs compare valid
    positions only; per-example
    outputs only rows that start with a real token: a head that pools the first position (CLS) reads padding
    in a left-padded row, in PyTorch too (the runtime pads on the right)."""
    per_token, logits = output.per_token, output.logits
    cosines, agree, worst = [], [], 0.0
    for mask, full, ref, got in items:
        if output.cache:  # [B, heads, positions, dim]: each real position's vectors
            vecs = [cache_vectors(ref, got, full)]
        elif per_token and ref.ndim == 3:  # [B, T, H]: one vector per valid token
            vecs = [(ref[mask], got[mask])]
        elif per_token:  # [B, T] (QA start/end): one vector per example over its valid tokens
            vecs = [(r[m][None], g[m][None]) for r, g, m in zip(ref, got, mask, strict=True)]
        else:  # [B, H]
            rows = mask[:, 0]
            vecs = [(ref[rows], got[rows])] if rows.any() else []
        for r, g in vecs:
            worst = max(worst, float(np.abs(r - g).max(initial=0.0)))
            cosines.append(_cosine(r, g).ravel())
            if logits:
                agree.append(r.argmax(-1) == g.argmax(-1))
    cos = np.concatenate(cosines)
    out = {"max_abs_diff": worst, "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min())}
    if logits:
        out["argmax_agreement"] = float(np.concatenate(agree).mean())
    out["compared"] = int(cos.size)
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    both_zero = (na == 0) & (nb == 0)
    cos = (a * b).sum(-1) / np.maximum(na * nb, 1e-30)
    return np.where(both_zero, 1.0, cos)


def _gate(bounds: Any, per_output: dict) -> tuple[bool, list[str]]:
    failures = []
    for name, m in per_output.items():
        if m["cosine_mean"] < bounds.min_cosine:
            failures.append(
                f"{name} cosine {differs(m['cosine_mean'], bounds.min_cosine)} < fidelity.min_cosine={bounds.min_cosine}"
            )
        if "argmax_agreement" in m and m["argmax_agreement"] < bounds.min_agreement:
            failures.append(
                f"{name} argmax agreement {differs(m['argmax_agreement'], bounds.min_agreement)} < "
                f"fidelity.min_agreement={bounds.min_agreement}"
            )
        if bounds.max_abs_diff is not None and m["max_abs_diff"] > bounds.max_abs_diff:
            failures.append(
                f"{name} max abs diff {differs(m['max_abs_diff'], bounds.max_abs_diff)} > "
                f"fidelity.max_abs_diff={bounds.max_abs_diff}"
            )
    return not failures, failures
