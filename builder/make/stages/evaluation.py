"""evaluation: the task metric of the PyTorch baseline and of the built graphs on the same examples, their
retention (bundle / baseline), and the quality gate (`evaluation.gate.max_relative_drop`).

Both run through the task's runtime pipeline, the baseline on a PyTorch engine with the same pre- and
post-processing (transformers 5 has no question-answering pipeline; for the other tasks builder's pipelines
are tested equal to transformers')."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

from builder.errors import StageError
from builder.make.context import BuildContext, runtime_section
from builder.make.eval_data import load_examples
from builder.make.models import TorchEngine
from builder.runtime.engine import OnnxEngine
from builder.runtime.pipelines import PIPELINES

CHUNK = 64  # examples per progress-bar step


def run(ctx: BuildContext) -> dict[str, Any]:
    ev, task = ctx.cfg.evaluation, ctx.task
    if not ev.enabled:
        return {"skipped": True}
    examples, origin = ctx.examples or load_examples(ctx.cfg)
    runtime = runtime_section(ctx)
    pipeline = PIPELINES[task.pipeline]

    def baseline() -> dict[str, float]:
        return task.evaluate(pipeline(TorchEngine(ctx, runtime)), examples, ev, _chunks("baseline"))

    results = {"baseline": _baseline(ctx, examples, origin, runtime, baseline)}
    from_cache = bool(results["baseline"].pop("_from_cache", False))
    engine = OnnxEngine(ctx.model_files, runtime, sessions=ctx.sessions.of(ctx.graphs))
    results["bundle"] = task.evaluate(pipeline(engine), examples, ev, _chunks("bundle"))
    primary = task.gate_metric
    base, ours = results["baseline"][primary], results["bundle"][primary]
    # Retention: the share of the baseline's quality kept (for a lower-is-better metric, baseline / bundle).
    if task.higher_is_better:
        retention = 100.0 * ours / base if base else None
    else:
        retention = 100.0 * base / ours if ours else None
    record: dict[str, Any] = origin | {
        "task": task.name,
        "metric": primary,
        "higher_is_better": task.higher_is_better,
        "baseline": results["baseline"],
        "bundle": results["bundle"],
        "retention_percent": retention,
        "baseline_from_cache": from_cache,
    }
    drop = ev.gate.max_relative_drop
    if drop is not None:
        needed = base * (1 - drop) if task.higher_is_better else base / (1 - drop)
        passed = ours >= needed if task.higher_is_better else ours <= needed
        record["gate"] = {"max_relative_drop": drop, "required": needed, "passed": passed}
        if not passed:
            bound = (
                f"below {needed:.4g} = (1 - evaluation.gate.max_relative_drop={drop}) x"
                if task.higher_is_better
                else f"above {needed:.4g} = 1 / (1 - evaluation.gate.max_relative_drop={drop}) x"
            )
            raise StageError(
                f"quality gate: the bundle's {primary} is {ours:.4g}, {bound} the baseline's {base:.4g}"
                + (f" ({retention:.2f}% kept)" if retention is not None else "")
                + ". No bundle was published. Use less aggressive settings or loosen the gate.",
                record,
            )
    return record


def _baseline(
    ctx: BuildContext,
    examples: list[dict[str, Any]],
    origin: dict[str, Any],
    runtime: dict[str, Any],
    compute: Any,
) -> dict:
    """The PyTorch baseline's score depends only on the model, the examples and the tool versions: kept in the
    stage cache, so a sweep evaluates the baseline once (the bundle's side is always measured)."""
    content = {
        "task": ctx.task.name,
        "examples": examples,
        "origin": origin,
        "max_length": runtime["max_length"],
        "options": runtime["options"],
        "handle_impossible_answer": ctx.cfg.evaluation.handle_impossible_answer,
    }
    _, result, reused, _ = ctx.cache.get_or_build(
        "baseline-evaluation", content, lambda: ([], compute()), after="source"
    )
    return result | {"_from_cache": reused}


def _chunks(name: str) -> Any:
    def split(examples: list[dict[str, Any]]) -> Any:
        chunks = [examples[i : i + CHUNK] for i in range(0, len(examples), CHUNK)]
        return tqdm(chunks, desc=f"evaluate {name}", unit="batch", leave=False, disable=None)

    return split
