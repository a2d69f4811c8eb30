"""fidelity: the built graph vs the unoptimized PyTorch model on the built-in inputs (varied lengths,
left and right padding): max abs difference, cosine similarity, argmax agreement. Gated by `fidelity.*`."""

from __future__ import annotations

import numpy as np

from builder.errors import StageError
from builder.stages.common import BuildContext, fidelity_batches, torch_outputs


def run(ctx: BuildContext) -> None:
    try:
        session = ctx.session()
    except Exception as e:  # e.g. fp16 kernels missing on a host without the profile's GPU
        ctx.metrics["fidelity"] = {"measured": False, "reason": f"cannot run on this host: {e}"[:300]}
        return
    baseline = ctx.torch_model(eager=False)
    pairs = []
    for batch in fidelity_batches(ctx):
        ref = torch_outputs(baseline, batch, ctx.input_names)
        got = session.run(list(ctx.task.outputs), batch)
        pairs.append((batch["attention_mask"].astype(bool), ref, got))
    per_output = {}
    for i, (name, token_level) in enumerate(zip(ctx.task.outputs, ctx.task.token_level, strict=True)):
        per_output[name] = compare(
            [(m, r[i], g[i]) for m, r, g in pairs], token_level, logits="logits" in name
        )
    record = {"measured": True, "provider": session.get_providers()[0], "outputs": per_output}
    record["passed"], record["failures"] = _gate(ctx.cfg.fidelity, per_output)
    ctx.metrics["fidelity"] = record
    if not record["passed"]:
        raise StageError(
            "fidelity: the bundle strays too far from the PyTorch model: "
            + "; ".join(record["failures"])
            + ". No bundle was written. Use less aggressive settings (quantization=none, optimization=O2), "
            "or accept the difference by loosening the bound named above on the command line."
        )


def compare(items: list[tuple[np.ndarray, np.ndarray, np.ndarray]], token_level: bool, logits: bool) -> dict:
    """items: (mask [B,T], reference, candidate). Token-level outputs compare valid positions only."""
    cosines, agree, worst = [], [], 0.0
    for mask, ref, got in items:
        if token_level and ref.ndim == 3:  # [B, T, H]: one vector per valid token
            vecs = [(ref[mask], got[mask])]
        elif token_level:  # [B, T] (QA start/end): one vector per example over its valid tokens
            vecs = [(r[m][None], g[m][None]) for r, g, m in zip(ref, got, mask, strict=True)]
        else:  # [B, H]
            vecs = [(ref, got)]
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


def _gate(bounds, per_output: dict) -> tuple[bool, list[str]]:  # type: ignore[no-untyped-def]
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
