"""Settings that combine two config groups, resolved in one place."""

from __future__ import annotations

from typing import Any


def quantization_settings(cfg: Any) -> dict[str, Any]:
    """The quantization config with the hardware profile's preset filled in where it says null."""
    preset, q = cfg.hardware.quantization, cfg.quantization
    keys = ("activation_type", "weight_type", "per_channel", "reduce_range")
    chosen = {k: q[k] if q[k] is not None else preset[k] for k in keys}
    if q.method == "static" and q.reduce_range is None and chosen["weight_type"] == "int8":
        # u8 x s8 products can saturate (VPMADDUBSW) on x86 CPUs without VNNI: use 7-bit weights there.
        hw = cfg.hardware
        chosen["reduce_range"] = bool(hw.device == "cpu" and not any("vnni" in f for f in hw.cpu_flags))
    extra = {"exclude_op_types": list(q.exclude_op_types), "exclude_nodes": list(q.exclude_nodes)}
    return {"method": q.method, "op_types": list(q.op_types), **chosen, **extra}
