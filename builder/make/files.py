"""ONNX files written byte-for-byte reproducibly, with their external data when a graph passes protobuf's
2 GB limit, and several graphs' weights stored once (save_shared)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx

LARGE = 1_800_000_000  # bytes: beyond this, weights go to <file>_data
EXTERNAL_MIN_BYTES = 1024  # smaller tensors stay inside the graph file (onnx's own threshold)


def save_onnx(
    model: onnx.ModelProto, path: Path, external_data: str = "auto", weights_from: Path | None = None
) -> Path:
    """Save without anything that depends on where or when it was built, so equal inputs give equal bytes.
    (producer_name stays the exporter's: ONNX Runtime's optimizer checks it.) external_data: auto = the
    weights go to <file>_data when the graph passes protobuf's limit; always = whatever its size.
    weights_from: the folder of the file `model` was read from without its external data
    (onnx.load(..., load_external_data=False)); those weights are copied across one tensor at a time, so a
    6 GB graph is never whole in memory."""
    _strip(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    unread = any(t.data_location == onnx.TensorProto.EXTERNAL for t in _tensors(model))
    if not (unread or external_data == "always" or _too_large(model)):
        for part in onnx_files(path):
            part.unlink(missing_ok=True)
        onnx.save_model(model, str(path))
        return path
    data, staged = path.with_name(path.name + "_data"), path.with_name(path.name + "_data.tmp")
    with open(staged, "wb") as out:
        for tensor in _tensors(model):
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                if weights_from is None:
                    raise ValueError(f"{tensor.name}: external data, and no folder to read it from")
                blob = _external_bytes(tensor, weights_from)
            elif tensor.HasField("raw_data") and len(tensor.raw_data) >= EXTERNAL_MIN_BYTES:
                blob = tensor.raw_data
            else:
                continue
            offset = out.tell()
            out.write(blob)
            del tensor.external_data[:]
            tensor.ClearField("raw_data")
            tensor.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", data.name), ("offset", offset), ("length", len(blob))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, str(value)
    path.with_name(path.name + ".tmp").write_bytes(model.SerializeToString())
    staged.replace(data)  # the data file may be the one the weights came from: replaced only now
    path.with_name(path.name + ".tmp").replace(path)
    return path


def _strip(model: onnx.ModelProto) -> None:
    """What depends on where or when a graph was built: doc strings, metadata, and the attributes ONNX Runtime's
    optimizer writes out at their defaults on the operators in AT_DEFAULTS: ONNX Runtime releases from before
    such an attribute existed refuse a graph that names it (a GroupQueryAttention's k_quant_type, causal, ...),
    and without it each release applies its own default, the same value."""
    model.doc_string = ""
    del model.metadata_props[:]
    for graph in all_graphs(model.graph):
        del graph.metadata_props[:]
        graph.doc_string = ""
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
            if node.domain == "com.microsoft" and node.op_type in AT_DEFAULTS:
                defaults = _contrib_defaults().get(node.op_type, {})
                kept = [a for a in node.attribute if defaults.get(a.name, _NONE) != a.SerializeToString()]
                if len(kept) < len(node.attribute):
                    del node.attribute[:]
                    node.attribute.extend(kept)


# Operators whose defaults are left out: the ones ONNX Runtime's optimizer rewrites with every attribute it knows.
# (Others keep what their writer set: MatMulNBits' bits, say, which readers of a graph look for.)
AT_DEFAULTS = ("GroupQueryAttention",)
_NONE = b"\0none"  # no default: never equal to a serialized attribute


@functools.cache
def _contrib_defaults() -> dict[str, dict[str, bytes]]:
    """Per operator in AT_DEFAULTS (the newest version this onnxruntime has), each attribute's default, serialized
    as an AttributeProto, as a node written with it holds it."""
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_schemas

    newest: dict[str, Any] = {}
    ours = [
        s
        for s in ort_schemas.get_all_operator_schema()
        if s.domain == "com.microsoft" and s.name in AT_DEFAULTS
    ]
    for schema in sorted(ours, key=lambda s: s.since_version):  # the newest version last: it stays
        newest[schema.name] = schema
    defaults: dict[str, dict[str, bytes]] = {}
    for name, schema in newest.items():
        for attr, spec in schema.attributes.items():
            raw = spec._default_value
            if raw:
                proto = onnx.AttributeProto()
                proto.ParseFromString(raw)
                proto.name = attr
                defaults.setdefault(name, {})[attr] = proto.SerializeToString()
    return defaults


def save_shared(graphs: list[tuple[Path, Path]], data: Path) -> None:
    """Several graphs with their weights in one data file beside them, each distinct tensor once: the decoder files
    of an encoder-decoder hold the same weights, and a tied embedding is in every graph. graphs: (the graph file as
    built, with its data file if any; where to write it). Reproducible as save_onnx is."""
    import hashlib

    staged = data.with_name(data.name + ".tmp")
    stored: dict[str, tuple[int, int]] = {}  # digest of (type, bytes) -> (offset, length)
    with open(staged, "wb") as out:
        for source, target in graphs:
            model = onnx.load(str(source), load_external_data=False)
            _strip(model)
            for tensor, blob in _weights(model, source.parent):
                digest = hashlib.sha256(str(tensor.data_type).encode() + blob).hexdigest()
                if digest not in stored:
                    stored[digest] = (out.tell(), len(blob))
                    out.write(blob)
                offset, length = stored[digest]
                del tensor.external_data[:]
                tensor.ClearField("raw_data")
                tensor.data_location = onnx.TensorProto.EXTERNAL
                for key, value in (("location", data.name), ("offset", offset), ("length", length)):
                    entry = tensor.external_data.add()
                    entry.key, entry.value = key, str(value)
            target.with_name(target.name + ".tmp").write_bytes(model.SerializeToString())
            target.with_name(target.name + ".tmp").replace(target)
    staged.replace(data)


def stored_size(paths: list[Path]) -> int:
    """The bytes of several graphs with each distinct weight counted once, as save_shared stores them."""
    import hashlib

    seen: set[str] = set()
    total = 0
    for path in paths:
        model = onnx.load(str(path), load_external_data=False)
        for tensor, blob in _weights(model, path.parent):
            digest = hashlib.sha256(str(tensor.data_type).encode() + blob).hexdigest()
            total += 0 if digest in seen else len(blob)
            seen.add(digest)
            tensor.ClearField("raw_data")
        total += model.ByteSize()
    return total


def _weights(model: onnx.ModelProto, folder: Path) -> Iterator[tuple[onnx.TensorProto, bytes]]:
    """The graph's weights (those of EXTERNAL_MIN_BYTES or more, inline or in a data file in `folder`), with their
    bytes."""
    for tensor in _tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            yield tensor, _external_bytes(tensor, folder)
        elif tensor.HasField("raw_data") and len(tensor.raw_data) >= EXTERNAL_MIN_BYTES:
            yield tensor, tensor.raw_data


def _tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every initializer of the graph and its subgraphs."""
    for graph in all_graphs(model.graph):
        yield from graph.initializer


def _external_bytes(tensor: onnx.TensorProto, folder: Path) -> bytes:
    info = {e.key: e.value for e in tensor.external_data}
    with open(folder / info["location"], "rb") as f:
        f.seek(int(info.get("offset") or 0))
        return f.read(int(info["length"])) if info.get("length") else f.read()


def _too_large(model: onnx.ModelProto) -> bool:
    from google.protobuf.message import EncodeError

    try:
        return model.ByteSize() > LARGE
    except EncodeError:  # protobuf will not even size a message past 2 GB
        return True


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


def remove_onnx(path: Path) -> None:
    """An intermediate graph and whatever data file it has (ours, <file>_data; ONNX Runtime's, <file>.data)."""
    for part in (path, path.with_name(path.name + "_data"), path.with_name(path.name + ".data")):
        part.unlink(missing_ok=True)


def onnx_size(path: Path) -> int:
    return sum(p.stat().st_size for p in onnx_files(path))


def graph_io(path: Path) -> tuple[list[str], list[str]]:
    """The graph's input and output names as saved (an exporter may drop an input the model ignores)."""
    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initializers], [
        o.name for o in model.graph.output
    ]


def written_by(path: Path, op_type: str) -> set[str]:
    """The graph outputs (read without the weights) that a node of this operator type writes itself."""
    graph = onnx.load(str(path), load_external_data=False).graph
    outputs = {o.name for o in graph.output}
    return {name for node in graph.node if node.op_type == op_type for name in node.output if name in outputs}


def keep_inputs(model: onnx.ModelProto, declared: list[onnx.ValueInfoProto]) -> None:
    """Inputs a pass dropped because nothing reads them (a fused decoder's position_ids) go back in their place:
    a graph's inputs are its contract with every caller, which may feed them all."""
    present = {i.name for i in model.graph.input}
    if all(d.name in present for d in declared):
        return
    by_name = {i.name: i for i in model.graph.input}
    ordered = [by_name.pop(d.name, d) for d in declared]
    ordered += list(by_name.values())  # any input the pass added
    del model.graph.input[:]
    model.graph.input.extend(ordered)


def has_operator(path: Path, op_type: str) -> bool:
    """Whether a graph (read without its weights) has a node of this operator type."""
    return any(n.op_type == op_type for n in onnx.load(str(path), load_external_data=False).graph.node)
