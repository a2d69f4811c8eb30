"""The external-data file names an ONNX model refers to, read straight from the protobuf wire format, so the
runtime can refuse paths that leave the bundle without needing the `onnx` package.

Walked: ModelProto.graph -> GraphProto.{initializer, node.attribute.{t, tensors, g, graphs}} ->
TensorProto.external_data[key == "location"].
"""

from __future__ import annotations

from collections.abc import Iterator

# field numbers from onnx.proto
MODEL_GRAPH = 7
GRAPH_NODE, GRAPH_INITIALIZER = 1, 5
NODE_ATTRIBUTE = 5
ATTR_T, ATTR_G, ATTR_TENSORS, ATTR_GRAPHS = 5, 6, 10, 11
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


def _graph_locations(graph: memoryview) -> Iterator[str]:
    for number, payload in _fields(graph):
        if number == GRAPH_INITIALIZER:
            yield from _tensor_locations(payload)
        elif number == GRAPH_NODE:
            for n, attribute in _fields(payload):
                if n != NODE_ATTRIBUTE:
                    continue
                for a, value in _fields(attribute):
                    if a in (ATTR_T, ATTR_TENSORS):
                        yield from _tensor_locations(value)
                    elif a in (ATTR_G, ATTR_GRAPHS):
                        yield from _graph_locations(value)


def external_data_locations(model_bytes: bytes) -> set[str]:
    buf = memoryview(model_bytes)
    return {loc for number, graph in _fields(buf) if number == MODEL_GRAPH for loc in _graph_locations(graph)}
