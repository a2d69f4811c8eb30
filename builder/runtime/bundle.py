"""Loading a bundle: verify its manifest, open an ONNX Runtime session as its hardware profile says, and
give back a callable pipeline for its task (the call shapes and outputs of transformers' pipelines)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from builder.errors import BuilderError, BundleIntegrityError
from builder.runtime.feature_extraction import FeatureExtraction
from builder.runtime.manifest import verify
from builder.runtime.question_answering import QuestionAnswering
from builder.runtime.session import create_session
from builder.runtime.text_classification import TextClassification
from builder.runtime.token_classification import TokenClassification
from builder.runtime.tokenizer import BundleTokenizer, pad

PIPELINES = {
    "feature-extraction": FeatureExtraction,
    "text-classification": TextClassification,
    "token-classification": TokenClassification,
    "question-answering": QuestionAnswering,
}


class Bundle:
    """A loaded bundle. `bundle(...)` runs its task pipeline; `task`, `config`, `metrics`, `manifest` describe it."""

    def __init__(self, path: str | Path, *, intra_op_threads: int | None = None):
        self.path = Path(path)
        self.manifest: dict[str, Any] = verify(self.path)
        self.runtime: dict[str, Any] = self.manifest["runtime"]
        self.task: str = self.runtime["task"]
        self.model_config: dict[str, Any] = _json(self.path / "config.json")
        self.metrics: dict[str, Any] = _json(self.path / "metrics.json")
        hardware = dict(self.runtime["hardware"])
        if intra_op_threads is not None:
            hardware["intra_op_threads"] = intra_op_threads
        try:
            self.session = create_session(self.path / "model.onnx", hardware)
        except Exception as e:  # e.g. external data that points outside the bundle (onnxruntime >= 1.24)
            raise BundleIntegrityError(
                f"{self.path / 'model.onnx'}: onnxruntime refused to load it: {e}"
            ) from e
        self.tokenizer = BundleTokenizer(self.path, self.runtime["max_length"])
        self.input_names: list[str] = [i.name for i in self.session.get_inputs()]
        self.token_outputs: set[str] = set(self.runtime.get("token_outputs", []))
        # On a GPU, bind outputs to device memory and copy back once (fewer host round trips per run).
        self.io_binding = self.session.get_providers()[0] == "CUDAExecutionProvider"
        if self.task not in PIPELINES:
            raise BuilderError(f"{self.path}: task {self.task!r} has no pipeline in this builder version.")
        self.pipeline = PIPELINES[self.task](self)

    @property
    def config(self) -> dict[str, Any]:
        """The resolved build configuration (build.yaml)."""
        import yaml

        return yaml.safe_load((self.path / "build.yaml").read_text(encoding="utf-8"))["config"]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.pipeline(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r}, task={self.task!r}, id={self.manifest['bundle_id'][:12]})"

    def infer(
        self, encodings: Sequence[Any], outputs: list[str], batch_size: int = 32
    ) -> list[list[np.ndarray]]:
        """Run encodings through the session in right-padded batches; per output, one array per encoding,
        token-level outputs cut back to that encoding's own length."""
        results: list[list[np.ndarray]] = [[] for _ in outputs]
        for start in range(0, len(encodings), max(1, batch_size)):
            chunk = encodings[start : start + batch_size]
            feeds = pad(chunk, self.input_names, self.tokenizer.pad_id, self.tokenizer.pad_type_id)
            values = self._run(outputs, feeds)
            for name, slot, value in zip(outputs, results, values, strict=True):
                token_level = name in self.token_outputs
                for row, encoding in zip(value, chunk, strict=True):
                    slot.append(row[: len(encoding.ids)] if token_level else row)
        return results

    def _run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if not self.io_binding:
            return self.session.run(outputs, feeds)
        binding = self.session.io_binding()  # one per call: bindings are not shared between threads
        for name, array in feeds.items():
            binding.bind_cpu_input(name, array)
        for name in outputs:
            binding.bind_output(name, "cuda")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def load(path: str | Path, *, intra_op_threads: int | None = None) -> Bundle:
    """Load a bundle folder, verifying every file against its manifest first."""
    return Bundle(path, intra_op_threads=intra_op_threads)
