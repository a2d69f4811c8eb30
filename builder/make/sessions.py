"""ONNX Runtime sessions of the built graphs, opened once per graph file: fidelity, evaluation and benchmark
share them (a session costs tens of milliseconds to create, and apps time a used session too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.runtime.session import create_session


class Sessions:
    def __init__(self, hardware: Any):
        self.hardware = hardware
        self._open: dict[Path, Any] = {}

    def get(self, path: Path) -> Any:
        if path not in self._open:
            self._open[path] = create_session(path, self.hardware)
        return self._open[path]

    def of(self, graphs: dict[str, Path]) -> dict[str, Any]:
        """One session per graph, by role."""
        return {role: self.get(path) for role, path in graphs.items()}
