"""optimize: ONNX Runtime's basic graph optimizations and its transformer fusions (Optimum's O1-O4), on each
graph."""

from __future__ import annotations

from collections import Counter
from typing import Any

import onnx

from builder.make.context import BuildContext
from builder.make.files import save_onnx
from builder.tasks.architectures import ARCHITECTURES

FUSED_OPS = (
    "Attention",
    "MultiHeadAttention",
    "SkipLayerNormalization",
    "LayerNormalization",
    "SkipSimplifiedLayerNormalization",
    "SimplifiedLayerNormalization",
    "GroupQueryAttention",
    "RotaryEmbedding",
    "EmbedLayerNormalization",
    "BiasGelu",
    "FastGelu",
    "Gelu",
    "GemmFastGelu",
)


def cache_config(ctx: BuildContext) -> dict | None:
    opt = ctx.cfg.optimization
    return None if opt.level == "none" else {"optimization": dict(opt), "device": ctx.cfg.hardware.device}


def run(ctx: BuildContext) -> dict[str, Any]:
    opt = ctx.cfg.optimization
    if opt.level == "none":
        nodes = sum(len(onnx.load(str(p), load_external_data=False).graph.node) for p in ctx.graphs.values())
        return {"level": opt.level, "nodes_before": nodes, "skipped": True}
    folder = ctx.stage_dir("optimize")
    graphs = {}
    for role, path in list(ctx.graphs.items()):
        graphs[role], model = _optimize(ctx, path)
        ctx.graphs[role] = save_onnx(model, folder / path.name)
    fused = Counter()
    for g in graphs.values():
        fused.update(g["fused_operators"])
    return {
        "level": opt.level,
        "nodes_before": sum(g["nodes_before"] for g in graphs.values()),
        "nodes_after": sum(g["nodes_after"] for g in graphs.values()),
        "fused_operators": dict(fused),
        "attention_fused": bool(fused.get("Attention") or fused.get("MultiHeadAttention")),
        "fp16": opt.fp16,
        "graphs": graphs,
    }


def _optimize(ctx: BuildContext, path: Any) -> tuple[dict[str, Any], onnx.ModelProto]:
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    opt, mc = ctx.cfg.optimization, ctx.models.config
    arch = ARCHITECTURES[mc["model_type"]]
    options = FusionOptions(arch.optimizer_type)
    # The raw 0/1 mask keeps fused attention right with left padding too (mask_index assumes right padding).
    options.use_raw_attention_mask(True)
    options.enable_embed_layer_norm = opt.fuse_embed_layer_norm
    options.enable_gelu_approximation = opt.gelu_approximation
    before = len(onnx.load(str(path), load_external_data=False).graph.node)
    model = optimize_model(
        str(path),
        model_type=arch.optimizer_type,
        num_heads=mc.get(arch.heads_key, 0),
        hidden_size=mc.get(arch.hidden_key, 0),
        optimization_options=options,
        opt_level=opt.ort_level,
        use_gpu=ctx.cfg.hardware.device == "cuda",
        only_onnxruntime=not opt.fuse_transformers,
    )
    if opt.fp16:
        # Inputs and outputs stay fp32 so apps feed and read the same arrays as for any other bundle.
        model.convert_float_to_float16(keep_io_types=True)
    counts = Counter(node.op_type for node in model.model.graph.node)
    fused = {op: counts[op] for op in FUSED_OPS if counts[op]}
    record = {"nodes_before": before, "nodes_after": len(model.model.graph.node), "fused_operators": fused}
    return record, model.model
