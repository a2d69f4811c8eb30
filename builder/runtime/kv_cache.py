"""A decoder's key/value cache between generation steps, in one of two forms.

- CopiedCache, for any engine and any decoder graph: each step feeds the past and takes the present back. The graph
  returns past + new, so every step copies the whole cache. The engine decides what the present is
  (Engine.run_kept): arrays (PyTorch, or ONNX Runtime's session.run on a CPU), or under IOBinding (on a GPU) the
  OrtValues the session wrote, on its device, bound as they are as the next step's past: the cache never crosses
  between device and host.
- SharedCache, for an ONNX Runtime graph whose cache outputs GroupQueryAttention writes itself (the manifest's
  runtime.graphs.<role>.shared_cache): one buffer per layer and kind, (batch, kv heads, prompt + new tokens,
  head size), bound through IOBinding as both the past input and the present output. The operator then appends
  each step's keys and values in place and reads only the positions the attention mask covers; nothing is copied
  between steps. On a GPU the buffers live on the device, so the cache never crosses to the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnxruntime as ort

from builder.runtime.session import FLOATS


class CopiedCache:
    """The cache fed back each step as the engine gives it back (see the module docstring)."""

    def __init__(
        self,
        engine: Any,
        past_names: Sequence[str],
        present_names: Sequence[str],
        shape: tuple[int, int, int, int],
        graph: str = "model",
    ):
        self.engine, self.graph, self.present_names = engine, graph, list(present_names)
        empty = (shape[0], shape[1], 0, shape[3])  # the prompt runs with a zero-length past
        self.past: dict[str, Any] = {name: np.zeros(empty, dtype=np.float32) for name in past_names}
        self.rows = shape[0]

    def step(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run one step (its new tokens, the mask of past + new); the logits."""
        kept = frozenset(self.present_names)
        out = self.engine.run_kept(["logits", *self.present_names], {**feeds, **self.past}, self.graph, kept)
        self.past = dict(zip(self.past, out[1:], strict=True))
        return out[0]

    def reorder(self, rows: np.ndarray, positions: int) -> None:
        """Row i continues row rows[i] (beam search; every row repeated): the past rows gathered."""
        if len(rows) == self.rows and (rows == np.arange(len(rows))).all():
            return
        self.past = {name: take_rows(past, rows) for name, past in self.past.items()}
        self.rows = len(rows)


def take_rows(value: np.ndarray | ort.OrtValue, rows: np.ndarray) -> np.ndarray | ort.OrtValue:
    """value[rows] for an array or an OrtValue (kept where it lives; a device value is gathered on the host, the
    round trip beam search pays on a GPU)."""
    if isinstance(value, np.ndarray):
        return value[rows]
    gathered = np.ascontiguousarray(value.numpy()[rows])
    return ort.OrtValue.ortvalue_from_numpy(gathered, value.device_name(), 0)


class SharedCache:
    """The cache as one preallocated buffer per past/present pair, bound as both (see the module docstring).
    `shape`: (batch, kv heads, the longest prompt + every new token, head size)."""

    def __init__(
        self,
        session: ort.InferenceSession,
        past_names: Sequence[str],
        present_names: Sequence[str],
        shape: tuple[int, int, int, int],
        device: str = "cpu",
    ):
        self.session, self.binding = session, session.io_binding()  # one binding per generation: one thread
        self.names = list(zip(past_names, present_names, strict=True))
        types = {i.name: i.type for i in session.get_inputs()}
        self.dtypes = [FLOATS[types[past]] for past, _ in self.names]
        self.device, self.shape = device, shape
        logits = session.get_outputs()[0]
        self.logits_dtype = FLOATS[logits.type]
        self.vocab = logits.shape[-1] if isinstance(logits.shape[-1], int) else None  # else: the first run's
        self.logits: np.ndarray | None = None  # the array a bound logits OrtValue writes into
        self.inputs: dict[str, np.ndarray] = {}  # the arrays bound inputs read, by name
        self._bind([self._buffer(shape, dtype) for dtype in self.dtypes])

    def _buffer(self, shape: tuple[int, ...], dtype: Any) -> ort.OrtValue:
        if self.device == "cpu":  # zeros: calloc'd pages, nothing written until the operator writes them
            return ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, dtype=dtype))
        # positions past the mask are never read, so device memory needs no clearing
        return ort.OrtValue.ortvalue_from_shape_and_type(list(shape), dtype, self.device, 0)

    def _bind(self, buffers: list[ort.OrtValue]) -> None:
        self.buffers = buffers
        for (past, present), buffer in zip(self.names, buffers, strict=True):
            self.binding.bind_ortvalue_input(past, buffer)
            self.binding.bind_ortvalue_output(present, buffer)

    def reorder(self, rows: np.ndarray, positions: int) -> None:
        """Row i continues row rows[i]: only the first `positions` positions of the rows that change are copied
        (beam search keeps most rows in place); a new row count (every row repeated) gets new buffers."""
        same = len(rows) == self.shape[0]
        changed = np.flatnonzero(rows != np.arange(len(rows))) if same else np.arange(len(rows))
        if not len(changed):
            return
        shape = (len(rows), *self.shape[1:])
        fresh = [] if same else [self._buffer(shape, dtype) for dtype in self.dtypes]
        for i, buffer in enumerate(self.buffers):
            # on the CPU numpy() is a view of the buffer's memory; a device buffer comes to the host and back
            old = buffer.numpy()
            new = old if same else fresh[i].numpy()
            new[changed, :, :positions] = old[rows[changed], :, :positions]  # the gather copies first
            if self.device != "cpu":  # beam search on a GPU pays this round trip
                (buffer if same else fresh[i]).update_inplace(new)
        if not same:
            self.shape = shape
            self._bind(fresh)

    def step(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run one step (its new tokens, the mask of past + new); the logits, a view of a buffer the next step
        overwrites (read them before the next step).

        A decode step's inputs keep their shapes (one token per row) but for the mask: an input whose bound array
        has the step's shape and type gets the new values written into it, with no new binding; the logits buffer
        is bound once per shape. get_outputs() is avoided: it wraps every cache output as well, each step."""
        for name, array in feeds.items():
            bound = self.inputs.get(name)
            if bound is not None and bound.shape == array.shape and bound.dtype == array.dtype:
                np.copyto(bound, array)  # the OrtValue bound to this input wraps this array's memory
                continue
            bound = self.inputs[name] = np.array(array, order="C")  # owned: the binding reads it at run time
            # as an OrtValue: bind_cpu_input refuses an overridable initializer (logits_to_keep)
            self.binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(bound))
        rows, new = feeds["input_ids"].shape
        keep = int(np.asarray(feeds.get("logits_to_keep", 0)).ravel()[0])  # 0: every position
        shape = (rows, min(keep, new) if keep else new, self.vocab)
        if self.vocab is None:  # unallocated: ONNX Runtime sizes it; read back through get_outputs() once
            self.binding.bind_output("logits", "cpu")
            self.session.run_with_iobinding(self.binding)
            logits = self.binding.get_outputs()[0].numpy()
            self.vocab = logits.shape[-1]
            return logits
        if self.logits is None or self.logits.shape != shape:
            self.logits = np.empty(shape, dtype=self.logits_dtype)
            self.binding.bind_ortvalue_output("logits", ort.OrtValue.ortvalue_from_numpy(self.logits))
        self.session.run_with_iobinding(self.binding)
        return self.logits
