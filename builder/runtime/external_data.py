"""The external-data file names an ONNX model refers to, read straight from the protobuf wire format, so the
runtime can refuse paths that leave the bundle without needing the `onnx` package.

Walked: ModelProto.{graph, functions.node} -> GraphProto.{initializer, sparse_initializer, node.attribute.{t,
tensors, sparse_tensor, sparse_tensors, g, graphs}} -> TensorProto.external_data[key == "location"], a sparse
tensor's values and indices being TensorProtos too. Every place a tensor can sit, so none escapes the check.
"""

from __future__ import annotations

from collections.abc import Iterator

# field numbers from onnx.proto
MODEL_GRAPH, MODEL_FUNCTIONS = 7, 25
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_SPARSE_INITIALIZER = 1, 5, 15
FUNCTION_NODE, FUNCTION_ATTRIBUTE_PROTO = 7, 11
NODE_ATTRIBUTE = 5
ATTR_T, ATTR_G, ATTR_TENSORS, ATTR_GRAPHS, ATTR_SPARSE_TENSOR, ATTR_SPARSE_TENSORS = 5, 6, 10, 11, 22, 23
SPARSE_VALUES, SPARSE_INDICES = 1, 2
TENSOR_EXTERNAL_DATA = 13
ENTRY_KEY, ENTRY_VALUE = 1, 2


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, memoryview]]:
    """(field number, payload) for each length-delimited field; other wire types are skipped."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = _varint(buf, pos)
            yield number, buf[pos : pos + size]
            pos += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _tensor_locations(tensor: memoryview) -> Iterator[str]:
    for number, payload in _fields(tensor):
        if number == TENSOR_EXTERNAL_DATA:
            entry = dict(_fields(payload))
            if bytes(entry.get(ENTRY_KEY, b"")) == b"location":
                yield bytes(entry.get(ENTRY_VALUE, b"")).decode("utf-8", "replace")


def _sparse_locations(sparse: memoryview) -> Iterator[str]:
    for number, payload in _fields(sparse):
        if number in (SPARSE_VALUES, SPARSE_INDICES):
            yield from _tensor_locations(payload)


def _attribute_locations(attribute: memoryview) -> Iterator[str]:
    for a, value in _fields(attribute):
        if a in (ATTR_T, ATTR_TENSORS):
            yield from _tensor_locations(value)
        elif a in (ATTR_SPARSE_TENSOR, ATTR_SPARSE_TENSORS):
            yield from _sparse_locations(value)
        elif a in (ATTR_G, ATTR_GRAPHS):
            yield from _graph_locations(value)


def _node_locations(node: memoryview) -> Iterator[str]:
    for n, attribute in _fields(node):
        if n == NODE_ATTRIBUTE:
            yield from _attribute_locations(attribute)


def _graph_locations(graph: memoryview) -> Iterator[str]:
    for number, payload in _fields(graph):
        if number == GRAPH_INITIALIZER:
            yield from _tensor_locations(payload)
        elif number == GRAPH_SPARSE_INITIALIZER:
            yield from _sparse_locations(payload)
        elif number == GRAPH_NODE:
            yield from _node_locations(payload)


def _function_locations(function: memoryview) -> Iterator[str]:
    for number, payload in _fields(function):
        if number == FUNCTION_NODE:
            yield from _node_locations(payload)
        elif number == FUNCTION_ATTRIBUTE_PROTO:  # default values of the function's attributes
            yield from _attribute_locations(payload)


def external_data_locations(model_bytes: bytes) -> set[str]:
    buf = memoryview(model_bytes)
    found: set[str] = set()
    for number, payload in _fields(buf):
        if number == MODEL_GRAPH:
            found.update(_graph_locations(payload))
        elif number == MODEL_FUNCTIONS:
            found.update(_function_locations(payload))
    return found
