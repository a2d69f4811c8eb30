"""Settings that combine two config groups, resolved in one place."""

from __future__ import annotations

from typing import Any


def quantization_settings(cfg: Any) -> dict[str, Any]:
    """The quantization config with the hardware profile's preset filled in where it says null."""
    preset, q = cfg.hardware.quantization, cfg.quantization
    extra = {"exclude_op_types": list(q.exclude_op_types), "exclude_nodes": list(q.exclude_nodes)}
    if q.method == "int4":  # weight-only: the int8 settings do not apply
        level = q.int4.accuracy_level
        return {
            "method": "int4",
            "op_types": list(q.op_types),
            "block_size": q.int4.block_size,
            "symmetric": q.int4.symmetric,
            "accuracy_level": preset.int4_accuracy_level if level is None else level,
            **extra,
        }
    keys = ("activation_type", "weight_type", "per_channel", "reduce_range")
    chosen = {k: q[k] if q[k] is not None else preset[k] for k in keys}
    if q.method == "static" and q.reduce_range is None and chosen["weight_type"] == "int8":
        # u8 x s8 products can saturate (VPMADDUBSW) on x86 CPUs without VNNI: use 7-bit weights there.
        hw = cfg.hardware
        chosen["reduce_range"] = bool(hw.device == "cpu" and not any("vnni" in f for f in hw.cpu_flags))
    return {"method": q.method, "op_types": list(q.op_types), **chosen, **extra}
