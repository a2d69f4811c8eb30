"""`builder predict PATH`: a bundle's pipeline over JSON lines (or text lines), streamed and batched (runtime only)."""

from __future__ import annotations

import json
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from builder.errors import BuilderError


def predict(path: Path, source: Path | None, strict: bool, text: bool = False, batch_size: int = 32) -> int:
    """Each line: a JSON value (the input), {"inputs": ..., "parameters": {...}}, or the task's own object
    ({"question": ..., "context": ..., "top_k": 2} for QA, {"text": ..., "text_pair": ...} for pairs): the
    task's pipeline reads it (predict_request). --text: each line is one input text. Lines that are ready
    together go through the pipeline as batches of up to batch_size; a line waits for no later line."""
    from builder.runtime.loader import load

    if batch_size < 1:
        raise BuilderError(f"--batch-size {batch_size}: give 1 or more lines per batch")
    if source and not source.is_file():
        raise BuilderError(
            f"--input {source}: no such file. Give a JSON lines file, or omit --input to read stdin"
        )
    bundle = load(path)
    pipeline = bundle.pipeline
    if text and not pipeline.takes_text:
        raise BuilderError(
            f"--text: a {bundle.task} bundle needs more than a text per input; give JSON lines instead "
            f"(e.g. {_EXAMPLE_LINE.get(bundle.task, '{...}')})"
        )
    fd = os.open(source, os.O_RDONLY) if source else sys.stdin.fileno()
    skipped = 0

    def skip(number: int, why: str) -> None:
        nonlocal skipped
        print(f"line {number}: {why}; skipped", file=sys.stderr, flush=True)
        skipped += 1

    def emit(number: int, result: Any) -> None:
        if isinstance(result, types.GeneratorType):  # a stream: one line per piece as it comes
            for part in result:
                print(json.dumps(_plain(part), ensure_ascii=False), flush=True)
        else:
            print(json.dumps(_plain(result), ensure_ascii=False), flush=True)

    def run(batch: list[tuple[int, Any]]) -> None:
        try:
            results = pipeline.predict_many([item for _, item in batch]) if len(batch) > 1 else None
        except Exception:  # some line of the batch is bad: each alone, to say which
            results = None
        for i, (number, item) in enumerate(batch):
            try:
                emit(number, results[i] if results is not None else pipeline.predict_request(item))
            except BrokenPipeError:  # the reader went away: nothing more to answer (main exits quietly)
                raise
            except Exception as e:  # one bad line never ends the stream
                skip(number, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": "))

    batch: list[tuple[int, Any]] = []
    try:
        for number, (raw, more) in enumerate(_lines(fd), 1):
            try:
                line = raw.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError as e:
                skip(number, f"not valid UTF-8 (byte {raw[e.start]:#04x} at column {e.start + 1})")
                line = None
            if line is not None and line.strip():
                if text:
                    batch.append((number, line))
                else:
                    try:
                        batch.append((number, json.loads(line)))
                    except json.JSONDecodeError as e:
                        skip(
                            number,
                            f"not valid JSON ({e.msg} at column {e.colno}); for plain text lines use --text",
                        )
            if batch and (len(batch) >= batch_size or not more):
                run(batch)
                batch = []
        if batch:
            run(batch)
    finally:
        if source:
            os.close(fd)
    if skipped:
        print(f"{skipped} line(s) skipped", file=sys.stderr)
    return 1 if strict and skipped else 0


_EXAMPLE_LINE = {
    "question-answering": '{"question": "Where?", "context": "..."}',
    "zero-shot-classification": '{"inputs": "...", "parameters": {"candidate_labels": ["a", "b"]}}',
}


def _lines(fd: int) -> Iterator[tuple[bytes, bool]]:
    """(line without its newline, whether another line is ready now) for each line of a file descriptor: input
    that is already there is batched, and an interactive line is answered at once."""
    import select

    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                if buffer:
                    yield buffer, False
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        yield line, b"\n" in buffer or bool(select.select([fd], [], [], 0)[0])


def _plain(value: Any) -> Any:
    """numpy arrays and scalars to JSON-ready lists and numbers."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
