"""What pipelines run on: a bundle's graphs (one ONNX Runtime session each, by role), its tokenizer, model
config and runtime options. Build-time code runs the same pipelines on the PyTorch model through an engine with
the same interface, so baseline and bundle share every step."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from builder.errors import BundleIntegrityError
from builder.runtime.kv_cache import CopiedCache, SharedCache
from builder.runtime.session import as_taken, create_session, float_inputs
from builder.runtime.tokenizer import BundleTokenizer, pad


@dataclass(frozen=True)
class GraphIO:
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    token_outputs: frozenset[str]  # per-token outputs: cut back to each encoding's own length
    optional: frozenset[str] = frozenset()  # inputs with a default a caller may override (logits_to_keep)
    shared_cache: bool = (
        False  # one buffer may be bound as both past and present (builder/runtime/kv_cache.py)
    )


def graph_io(graphs: Mapping[str, Mapping[str, Any]]) -> dict[str, GraphIO]:
    """The manifest's runtime.graphs as GraphIO by role."""
    return {
        role: GraphIO(
            tuple(g["inputs"]),
            tuple(g["outputs"]),
            frozenset(g.get("token_outputs", ())),
            shared_cache=g.get("shared_cache") is True,
        )
        for role, g in graphs.items()
    }


def check_batch_size(batch_size: object) -> None:
    """A batch of no rows crashes ONNX Runtime's kernels (SIGFPE): refuse it where callers pass it in."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: give an integer >= 1")


class Engine:
    """Runs encodings through a graph in padded batches. Subclasses set tokenizer, model_config, options and
    graphs, and implement run(outputs, feeds, graph)."""

    folder: Path  # the tokenizer files, config.json, generation_config.json
    tokenizer: BundleTokenizer
    model_config: dict[str, Any]
    options: dict[str, Any]  # the task's runtime options (e.g. feature extraction's pooling)
    graphs: dict[str, GraphIO]

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray], graph: str = "model") -> list[np.ndarray]:
        raise NotImplementedError

    def run_kept(
        self, outputs: list[str], feeds: Mapping[str, Any], graph: str, kept: frozenset[str]
    ) -> list[Any]:
        """run(), where outputs named in `kept` may come back as values that only go back in as feeds (a cache
        passed from step to step) and need not visit the host. Here: arrays, as run() gives them."""
        return self.run(outputs, dict(feeds), graph)

    def kv_cache(
        self,
        past_names: Sequence[str],
        present_names: Sequence[str],
        shape: tuple[int, int, int, int],
        graph: str = "model",
    ) -> Any:
        """The key/value cache a generation loop steps through (builder/runtime/kv_cache.py); `shape`: batch, kv
        heads, the most positions it will hold, head size."""
        return CopiedCache(self, past_names, present_names, shape, graph)

    def infer(
        self, encodings: Sequence[Any], outputs: list[str], batch_size: int = 32, graph: str = "model"
    ) -> list[list[np.ndarray]]:
        """Run encodings in right-padded batches; per output, one array per encoding, per-token outputs cut back
        to that encoding's own length."""
        check_batch_size(batch_size)
        io = self.graphs[graph]
        results: list[list[np.ndarray]] = [[] for _ in outputs]
        for start in range(0, len(encodings), batch_size):
            chunk = encodings[start : start + batch_size]
            feeds = pad(chunk, io.inputs, self.tokenizer.pad_id, self.tokenizer.pad_type_id)
            values = self.run(outputs, feeds, graph)
            for name, slot, value in zip(outputs, results, values, strict=True):
                per_token = name in io.token_outputs
                for row, encoding in zip(value, chunk, strict=True):
                    slot.append(row[: len(encoding.ids)] if per_token else row)
        return results


class OnnxEngine(Engine):
    def __init__(
        self,
        folder: Path,
        runtime: Mapping[str, Any],
        hardware: Mapping[str, Any] | None = None,
        sessions: Mapping[str, Any] | None = None,
        graph_files: Mapping[str, Path] | None = None,
    ):
        """folder: tokenizer files and config.json (and the graphs, unless graph_files says where they are);
        runtime: the manifest's runtime section (format 2); sessions: ones already open, by role (the build
        shares one per graph between its stages)."""
        hardware = hardware or runtime["hardware"]
        self.graphs = graph_io(runtime["graphs"])
        files = dict(graph_files or {role: folder / g["file"] for role, g in runtime["graphs"].items()})
        self.sessions = dict(
            sessions or {role: create_session(files[role], hardware) for role in self.graphs}
        )
        for (
            role,
            io,
        ) in self.graphs.items():  # what the session takes is the truth (an exporter may drop an input)
            session = self.sessions[role]
            taken = tuple(i.name for i in session.get_inputs())
            optional = frozenset(i.name for i in session.get_overridable_initializers())
            self.graphs[role] = GraphIO(taken, io.outputs, io.token_outputs, optional, io.shared_cache)
        self.float_inputs = {role: float_inputs(session) for role, session in self.sessions.items()}
        self.folder = folder
        try:
            self.tokenizer = BundleTokenizer(folder, runtime["max_length"])
        except KeyError:  # the manifest lacks max_length: the loader says so
            raise
        except Exception as e:  # tokenizers raises plain Exception for a file it cannot parse
            raise BundleIntegrityError(
                f"{folder / 'tokenizer.json'}: not a tokenizer the tokenizers library reads ({e})"
            ) from e
        config = folder / "config.json"
        try:
            self.model_config: dict[str, Any] = (
                json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
            )
        except ValueError as e:
            raise BundleIntegrityError(f"{config}: not valid JSON ({e})") from e
        self.options = dict(runtime.get("options") or {})
        # On a GPU, IOBinding: host inputs, outputs bound on the device and copied back once (the fastest of the
        # forms timed, see docs/benchmarks.md), and a generation's cache kept on the device. Set io_binding=False
        # to use session.run (True on a CPU runs the same binding code with host memory as the device).
        cuda = next(iter(self.sessions.values())).get_providers()[0] == "CUDAExecutionProvider"
        self.device = "cuda" if cuda else "cpu"
        self.io_binding = cuda

    @property
    def session(self) -> Any:
        """The session of the `model` graph (bundles of one graph)."""
        return self.sessions["model"]

    @session.setter
    def session(self, value: Any) -> None:
        self.sessions["model"] = value

    def kv_cache(
        self,
        past_names: Sequence[str],
        present_names: Sequence[str],
        shape: tuple[int, int, int, int],
        graph: str = "model",
    ) -> Any:
        if not self.graphs[graph].shared_cache:
            return super().kv_cache(past_names, present_names, shape, graph)
        device = self.device if self.io_binding else "cpu"
        return SharedCache(self.sessions[graph], past_names, present_names, shape, device)

    def run_kept(
        self, outputs: list[str], feeds: Mapping[str, Any], graph: str, kept: frozenset[str]
    ) -> list[Any]:
        """Through IOBinding, the `kept` outputs stay the OrtValues the session wrote, on its device, and OrtValue
        feeds are bound as they are: on a GPU a cache passed from step to step never crosses to the host."""
        if not self.io_binding:
            return self.run(outputs, dict(feeds), graph)
        session = self.sessions[graph]
        binding = session.io_binding()  # one per call: bindings are not shared between threads
        arrays = as_taken(
            {n: v for n, v in feeds.items() if isinstance(v, np.ndarray)}, self.float_inputs[graph]
        )
        for name, value in feeds.items():
            value = arrays.get(name, value)
            if isinstance(value, np.ndarray):
                # as an OrtValue: bind_cpu_input refuses an overridable initializer (logits_to_keep)
                value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(value))
            binding.bind_ortvalue_input(name, value)
        for name in outputs:  # on the device, the others copied back once (the fastest form timed on a GPU)
            binding.bind_output(name, self.device)
        session.run_with_iobinding(binding)
        values = binding.get_outputs()  # in the order bound
        return [v if name in kept else v.numpy() for name, v in zip(outputs, values, strict=True)]

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray], graph: str = "model") -> list[np.ndarray]:
        if self.io_binding:
            return self.run_kept(outputs, feeds, graph, frozenset())
        return self.sessions[graph].run(outputs, as_taken(feeds, self.float_inputs[graph]))
