"""An ONNX Runtime session with its tokenizer: what pipelines run on. (Build-time code runs the same pipelines
on the PyTorch model through an engine with the same interface, so baseline and bundle share every step.)"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from builder.runtime.session import create_session
from builder.runtime.tokenizer import BundleTokenizer, pad


class Engine:
    """Runs encodings through a model in padded batches. Subclasses set tokenizer, model_config, input_names,
    token_outputs and implement run(outputs, feeds)."""

    tokenizer: BundleTokenizer
    model_config: dict[str, Any]
    input_names: list[str]
    token_outputs: set[str]

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def infer(
        self, encodings: Sequence[Any], outputs: list[str], batch_size: int = 32
    ) -> list[list[np.ndarray]]:
        """Run encodings in right-padded batches; per output, one array per encoding, token-level outputs cut
        back to that encoding's own length."""
        results: list[list[np.ndarray]] = [[] for _ in outputs]
        for start in range(0, len(encodings), max(1, batch_size)):
            chunk = encodings[start : start + batch_size]
            feeds = pad(chunk, self.input_names, self.tokenizer.pad_id, self.tokenizer.pad_type_id)
            values = self.run(outputs, feeds)
            for name, slot, value in zip(outputs, results, values, strict=True):
                token_level = name in self.token_outputs
                for row, encoding in zip(value, chunk, strict=True):
                    slot.append(row[: len(encoding.ids)] if token_level else row)
        return results


class OnnxEngine(Engine):
    def __init__(
        self,
        model_path: Path,
        folder: Path,
        runtime: dict[str, Any],
        hardware: dict[str, Any] | None = None,
        session: Any = None,
    ):
        """model_path: the ONNX file; folder: tokenizer files and config.json; runtime: the manifest's runtime;
        session: one already open on model_path (the build shares one between its stages)."""
        self.session = session or create_session(model_path, hardware or runtime["hardware"])
        self.tokenizer = BundleTokenizer(folder, runtime["max_length"])
        config = folder / "config.json"
        self.model_config: dict[str, Any] = (
            json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
        )
        self.input_names: list[str] = [i.name for i in self.session.get_inputs()]
        self.token_outputs: set[str] = set(runtime.get("token_outputs", []))
        # On a GPU, IOBinding: host inputs, outputs bound on the device and copied back once. Of the binding
        # forms timed on an H100 this is the fastest; with host data it matches session.run within a few
        # percent (benchmarks/cuda_check.py bindings). Set io_binding=False to use session.run.
        self.io_binding = self.session.get_providers()[0] == "CUDAExecutionProvider"

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if not self.io_binding:
            return self.session.run(outputs, feeds)
        binding = self.session.io_binding()  # one per call: bindings are not shared between threads
        for name, array in feeds.items():
            binding.bind_cpu_input(name, array)
        for name in outputs:
            binding.bind_output(name, "cuda")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()
