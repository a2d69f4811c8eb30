"""Gemm layers as MatMul + Add, so the MatMul quantizers (dynamic int8, int4 MatMulNBits) take them: GPT-2's
Conv1D layers export as Gemm. Only Gemms whose weight is a constant and whose input is not transposed; the
weight is stored transposed and scaled as the Gemm would use it, so the product is the same."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from builder.make.files import all_graphs


def gemm_as_matmul(model: onnx.ModelProto) -> int:
    """Rewrite the graph in place; returns how many Gemms became MatMul (+ Add)."""
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    nodes, done, replaced = [], 0, set()
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "Gemm" or node.input[1] not in weights or attrs.get("transA", 0):
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weights[node.input[1]])
        w = (w.T if attrs.get("transB", 0) else w) * np.asarray(attrs.get("alpha", 1.0), dtype=w.dtype)
        replaced.add(node.input[1])
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
                replaced.add(bias)
                bias = f"{bias}_scaled"
                graph.initializer.append(numpy_helper.from_array(scaled, bias))
            nodes.append(helper.make_node("Add", [product, bias], [node.output[0]], name=f"{node.name}_Add"))
        done += 1
    if done:
        del graph.node[:]
        graph.node.extend(nodes)
        # Drop the weights only the rewritten Gemms read (a subgraph or output may still read one).
        used = {i for g in all_graphs(graph) for n in g.node for i in n.input} | {
            o.name for o in graph.output
        }
        kept = [t for t in graph.initializer if t.name not in replaced or t.name in used]
        del graph.initializer[:]
        graph.initializer.extend(kept)
    return done
