"""ONNX files written byte-for-byte reproducibly, with their external data when a graph passes protobuf's
2 GB limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import onnx

LARGE = 1_800_000_000  # bytes: beyond this, weights go to <file>_data


def save_onnx(model: onnx.ModelProto, path: Path) -> Path:
    """Save without anything that depends on where or when it was built, so equal inputs give equal bytes.
    (producer_name stays the exporter's: ONNX Runtime's optimizer checks it.)"""
    model.doc_string = ""
    del model.metadata_props[:]
    for graph in all_graphs(model.graph):
        del graph.metadata_props[:]
        graph.doc_string = ""
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
    large = model.ByteSize() > LARGE
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=large,
        all_tensors_to_one_file=True,
        location=path.name + "_data" if large else None,
    )
    return path


def all_graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """The graph and every subgraph in it (If, Loop, Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from all_graphs(attr.g)
            for g in attr.graphs:
                yield from all_graphs(g)


def onnx_files(path: Path) -> list[Path]:
    """The .onnx file and its external-data file, if any."""
    data = path.with_name(path.name + "_data")
    return [path, data] if data.exists() else [path]


def onnx_size(path: Path) -> int:
    return sum(p.stat().st_size for p in onnx_files(path))


def graph_io(path: Path) -> tuple[list[str], list[str]]:
    """The graph's input and output names as saved (an exporter may drop an input the model ignores)."""
    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initializers], [
        o.name for o in model.graph.output
    ]
