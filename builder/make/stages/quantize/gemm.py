"""Gemm layers as MatMul + Add, so the MatMul quantizers (dynamic int8, int4 MatMulNBits) take them: GPT-2's
Conv1D layers export as Gemm. Only Gemms whose weight is a constant and whose input is not transposed; the
weight is stored transposed and scaled as the Gemm would use it, so the product is the same."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def gemm_as_matmul(model: onnx.ModelProto) -> int:
    """Rewrite the graph in place; returns how many Gemms became MatMul (+ Add)."""
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    nodes, done = [], 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "Gemm" or node.input[1] not in weights or attrs.get("transA", 0):
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weights[node.input[1]])
        w = (w.T if attrs.get("transB", 0) else w) * np.asarray(attrs.get("alpha", 1.0), dtype=w.dtype)
        name = f"{node.input[1]}_as_matmul"
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w), name))
        has_bias = len(node.input) > 2 and node.input[2]
        product = f"{node.output[0]}_matmul" if has_bias else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [product], name=f"{node.name}_MatMul"))
        if has_bias:
            bias = node.input[2]
            beta = attrs.get("beta", 1.0)
            if beta != 1.0:
                scaled = numpy_helper.to_array(weights[bias]) * np.asarray(beta, dtype=w.dtype)
                bias = f"{bias}_scaled"
                graph.initializer.append(numpy_helper.from_array(scaled, bias))
            nodes.append(helper.make_node("Add", [product, bias], [node.output[0]], name=f"{node.name}_Add"))
        done += 1
    if done:
        used = {i for n in nodes for i in n.input}
        kept = [t for t in graph.initializer if t.name in used or t.name in {o.name for o in graph.output}]
        del graph.initializer[:]
        graph.initializer.extend(kept)
        del graph.node[:]
        graph.node.extend(nodes)
    return done
