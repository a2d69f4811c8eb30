"""fidelity: each built graph vs the unoptimized PyTorch model on the built-in inputs (varied lengths, left and
right padding): max abs difference, cosine similarity, argmax agreement. Gated by `fidelity.*`."""

from __future__ import annotations

from typing import Any

import numpy as np

from builder.errors import StageError
from builder.make.context import BuildContext
from builder.make.models import torch_outputs


def run(ctx: BuildContext) -> dict[str, Any]:
    try:
        sessions = ctx.sessions.of(ctx.graphs)
    except Exception as e:  # e.g. fp16 kernels missing on a host without the profile's GPU
        return {"measured": False, "reason": f"cannot run on this host: {e}"[:300]}
    baseline = ctx.models.torch_modules(eager=False)
    facts = ctx.models.facts
    single = len(ctx.task.graphs()) == 1
    per_output = {}
    for graph in ctx.task.graphs():
        session = sessions[graph.role]
        taken = [i.name for i in session.get_inputs()]
        pairs = []
        for batch in ctx.task.sample_batches(facts, graph):
            ref = torch_outputs(baseline[graph.role], batch, facts.input_names)
            got = session.run(list(graph.output_names), {n: batch[n] for n in taken})
            pairs.append((batch["attention_mask"].astype(bool), ref, got))
        for i, output in enumerate(graph.outputs):
            key = output.name if single else f"{graph.role}.{output.name}"
            per_output[key] = compare([(m, r[i], g[i]) for m, r, g in pairs], output.per_token, output.logits)
    provider = next(iter(sessions.values())).get_providers()[0]
    record: dict[str, Any] = {"measured": True, "provider": provider, "outputs": per_output}
    record["passed"], record["failures"] = _gate(ctx.cfg.fidelity, per_output)
    if not record["passed"]:
        raise StageError(
            "fidelity: the bundle strays too far from the PyTorch model: "
            + "; ".join(record["failures"])
            + ". No bundle was written. Use less aggressive settings (quantization=none, optimization=O2), "
            "or accept the difference by loosening the bound named above on the command line.",
            record,
        )
    return record


def compare(items: list[tuple[np.ndarray, np.ndarray, np.ndarray]], per_token: bool, logits: bool) -> dict:
    """items: (mask [B,T], reference, candidate). Per-token outputs compare valid positions only; per-example
    outputs only rows that start with a real token: a head that pools the first position (CLS) reads padding
    in a left-padded row, in PyTorch too (the runtime pads on the right)."""
    cosines, agree, worst = [], [], 0.0
    for mask, ref, got in items:
        if per_token and ref.ndim == 3:  # [B, T, H]: one vector per valid token
            vecs = [(ref[mask], got[mask])]
        elif per_token:  # [B, T] (QA start/end): one vector per example over its valid tokens
            vecs = [(r[m][None], g[m][None]) for r, g, m in zip(ref, got, mask, strict=True)]
        else:  # [B, H]
            rows = mask[:, 0]
            vecs = [(ref[rows], got[rows])] if rows.any() else []
        for r, g in vecs:
            worst = max(worst, float(np.abs(r - g).max(initial=0.0)))
            cosines.append(_cosine(r, g))
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
            failures.append(f"{name} cosine {m['cosine_mean']:.4f} < fidelity.min_cosine={bounds.min_cosine}")
        if "argmax_agreement" in m and m["argmax_agreement"] < bounds.min_agreement:
            failures.append(
                f"{name} argmax agreement {m['argmax_agreement']:.3f} < fidelity.min_agreement={bounds.min_agreement}"
            )
        if bounds.max_abs_diff is not None and m["max_abs_diff"] > bounds.max_abs_diff:
            failures.append(
                f"{name} max abs diff {m['max_abs_diff']:.3g} > fidelity.max_abs_diff={bounds.max_abs_diff}"
            )
    return not failures, failures
