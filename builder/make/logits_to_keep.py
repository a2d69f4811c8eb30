"""A decoder graph's optional `logits_to_keep` input: how many of the last positions get logits (0, the default:
every position, the graph's contract for any caller that does not know the input).

Generation needs the last position's logits only, and transformers' `generate` computes only those
(`logits_to_keep=1`); the head is the largest MatMul of a small decoder (SmolLM2-135M: 28M of 135M weights), so a
128-token prompt spends a fifth of its time, and batch 8 ~200 MB, on logits nobody reads. The input is an
initializer that is also a graph input: ONNX Runtime lets a caller override it, lists it among the session's
overridable initializers (not its inputs), and callers that do not feed it (Optimum, onnxruntime-genai,
perplexity scoring) get every position."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NAME = "logits_to_keep"


def add_logits_to_keep(model: onnx.ModelProto, logits: str = "logits") -> None:
    """Slice the head's input along the sequence axis to its last `logits_to_keep` positions (0: all). The head is
    the MatMul that writes `logits` (directly, or through an Add of its bias)."""
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    head = producer.get(logits)
    if head is not None and head.op_type == "Add":  # a head with a bias
        head = next(
            (producer[i] for i in head.input if i in producer and producer[i].op_type == "MatMul"), None
        )
    if head is None or head.op_type != "MatMul":
        found = producer[logits].op_type if logits in producer else "no node"
        raise ValueError(f"{logits} is written by {found}, not by the head's MatMul: cannot add {NAME}")
    hidden = head.input[0]
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([0], dtype=np.int64), NAME),
            numpy_helper.from_array(np.array([np.iinfo(np.int64).max], dtype=np.int64), f"{NAME}/end"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), f"{NAME}/axis"),
        ]
    )
    graph.input.append(helper.make_tensor_value_info(NAME, TensorProto.INT64, [1]))
    nodes = [  # -0 = 0 slices from the first position: every position
        helper.make_node("Neg", [NAME], [f"{NAME}/start"], name=f"{NAME}/Neg"),
        helper.make_node(
            "Slice",
            [hidden, f"{NAME}/start", f"{NAME}/end", f"{NAME}/axis"],
            [f"{NAME}/hidden"],
            name=f"{NAME}/Slice",
        ),
    ]
    at = list(graph.node).index(head)
    for node in reversed(nodes):
        graph.node.insert(at, node)
    head.input[0] = f"{NAME}/hidden"
