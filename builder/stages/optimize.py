"""optimize: ONNX Runtime's basic graph optimizations and its transformer fusions (Optimum's O1-O4)."""

from __future__ import annotations

from collections import Counter

import onnx

from builder.stages.common import BuildContext, save_onnx
from builder.tasks import ARCHITECTURES

FUSED_OPS = (
    "Attention",
    "MultiHeadAttention",
    "SkipLayerNormalization",
    "LayerNormalization",
    "EmbedLayerNormalization",
    "BiasGelu",
    "FastGelu",
    "Gelu",
    "GemmFastGelu",
)


def cache_config(ctx: BuildContext) -> dict | None:
    opt = ctx.cfg.optimization
    return None if opt.level == "none" else {"optimization": dict(opt), "device": ctx.cfg.hardware.device}


def run(ctx: BuildContext) -> None:
    opt = ctx.cfg.optimization
    before = onnx.load(str(ctx.onnx_path))
    record = {"level": opt.level, "nodes_before": len(before.graph.node)}
    if opt.level == "none":
        ctx.metrics["optimize"] = record | {"skipped": True}
        return

    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    mc = ctx.model_config
    arch = ARCHITECTURES[mc["model_type"]]
    options = FusionOptions(arch.optimizer_type)
    # The raw 0/1 mask keeps fused attention right with left padding too (mask_index assumes right padding).
    options.use_raw_attention_mask(True)
    options.enable_embed_layer_norm = opt.fuse_embed_layer_norm
    options.enable_gelu_approximation = opt.gelu_approximation
    model = optimize_model(
        str(ctx.onnx_path),
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
    ctx.onnx_path = save_onnx(model.model, ctx.workdir / "optimized.onnx")
    ctx.metrics["optimize"] = record | {
        "nodes_after": len(model.model.graph.node),
        "fused_operators": fused,
        "attention_fused": bool(fused.get("Attention") or fused.get("MultiHeadAttention")),
        "fp16": opt.fp16,
    }
