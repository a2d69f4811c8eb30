"""What several stages share: the PyTorch model wrapped to the task's outputs, the built-in inputs, and
saving ONNX files byte-for-byte reproducibly."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from builder.source import Source, read_model_config
from builder.tasks import TASKS, Task

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
ROBERTA_FAMILY = ("roberta", "xlm-roberta")


_LOADED: dict[tuple, torch.nn.Module] = {}  # the last PyTorch models loaded in this process


@dataclass
class BuildContext:
    """State handed from stage to stage. Stages read `cfg`, update `onnx_path`, and record into `metrics`."""

    cfg: Any
    source: Source
    workdir: Path
    onnx_path: Path | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    runtime: dict[str, Any] = field(default_factory=dict)  # what the runtime needs to run the bundle
    evaluation_data: Any = None  # (examples, origin), loaded before any stage runs
    stage_cache: Any = None  # the StageCache while a cacheable stage runs (its parts may cache too)
    cache_parent: str | None = None  # that stage's input key
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> Task:
        return TASKS[self.cfg.task.name]

    @property
    def model_config(self) -> dict[str, Any]:
        return self._memo("model_config", lambda: read_model_config(self.source.path))

    def tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        def load() -> Any:
            tok = AutoTokenizer.from_pretrained(
                self.source.path, trust_remote_code=self.cfg.model.trust_remote_code
            )
            if not getattr(tok, "is_fast", False):
                from builder.errors import StageError

                raise StageError(
                    f"model.source={self.cfg.model.source}: the tokenizer has no fast (tokenizer.json) "
                    "version; bundles need one so apps run without transformers."
                )
            return tok

        return self._memo("tokenizer", load)

    def torch_model(self, eager: bool, device: str = "cpu") -> torch.nn.Module:
        """The task model in eval mode. eager=True is the attention form ONNX Runtime can fuse;
        eager=False is the transformers default (sdpa), the baseline users would otherwise run."""

        def load() -> torch.nn.Module:
            key = (
                str(self.source.path),
                json.dumps(self.source.identity, sort_keys=True),
                self.task.name,
                eager,
                self.input_names,
                self.pooling,
                device,
            )
            if key in _LOADED:  # sweep jobs in one process share the model they all read
                return _LOADED[key]
            module = _load()
            _LOADED[key] = module
            while len(_LOADED) > 3:  # eager (export), default (baselines), and on a GPU a cuda copy
                _LOADED.pop(next(iter(_LOADED)))
            return module

        def _load() -> torch.nn.Module:
            import transformers

            transformers.logging.disable_progress_bar()
            transformers.logging.set_verbosity_error()
            cls = getattr(transformers, self.task.auto_class)
            kwargs = {"attn_implementation": "eager"} if eager else {}
            model = cls.from_pretrained(
                self.source.path, trust_remote_code=self.cfg.model.trust_remote_code, **kwargs
            )
            return TaskModule(model.eval(), self.task, self.input_names, self.pooling).to(device).eval()

        return self._memo(f"torch_model_eager={eager}_{device}", load)

    @property
    def input_names(self) -> tuple[str, ...]:
        names = set(self.tokenizer().model_input_names) | {"input_ids", "attention_mask"}
        return tuple(n for n in MODEL_INPUTS if n in names)

    @property
    def pooling(self) -> str:
        return self._memo("pooling", lambda: resolve_pooling(self.cfg.task.pooling, self.source.path))

    @property
    def max_length(self) -> int:
        """Longest input the model accepts (position embeddings), capped by the tokenizer's limit."""
        mc = self.model_config
        positions = mc.get("max_position_embeddings", 512)
        if mc.get("model_type") in ROBERTA_FAMILY:
            positions -= mc.get("pad_token_id", 1) + 1
        limit = min(positions, getattr(self.tokenizer(), "model_max_length", positions) or positions)
        st_config = self.source.path / "sentence_bert_config.json"
        if self.task.name == "feature-extraction" and st_config.is_file():  # sentence-transformers' own limit
            limit = min(
                limit, json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length") or limit
            )
        return int(limit)

    def files_dir(self) -> Path:
        """The bundle's non-ONNX files (tokenizer, model config), written once: stages that run the built
        graph through the runtime read them, and the bundle is assembled from them."""

        def make() -> Path:
            folder = self.workdir / "files"
            folder.mkdir(exist_ok=True)
            # A fresh copy: a tokenizer in use keeps the padding/truncation of its last call in tokenizer.json.
            type(self.tokenizer()).from_pretrained(self.source.path).save_pretrained(folder)
            shutil.copyfile(self.source.path / "config.json", folder / "config.json")
            return folder

        return self._memo("files_dir", make)

    def runtime_info(self) -> dict[str, Any]:
        """What the runtime needs to run the graph (stored in the manifest)."""
        from builder.stages.quantize import settings as quantization_settings

        cfg, task = self.cfg, self.task
        feature = task.name == "feature-extraction"
        return self.runtime | {
            "task": task.name,
            "token_outputs": [n for n, t in zip(task.outputs, task.token_level, strict=True) if t],
            "max_length": self.max_length,
            "pooling": self.pooling if feature else None,
            "normalize": bool(cfg.task.normalize) if feature else None,
            "hardware": {
                k: _plain(cfg.hardware[k])
                for k in ("name", "device", "providers", "intra_op_threads", "session_optimization")
            },
            "quantization": quantization_settings(cfg),
            "optimization": cfg.optimization.level,
        }

    def session(self) -> Any:
        """The built graph's ONNX Runtime session on the profile's hardware. Fidelity, evaluation and benchmark
        share it: creating one costs ~60 ms per stage for MiniLM, and apps time a used session too."""
        from builder.runtime.session import create_session

        path = self.onnx_path
        return self._memo(f"session:{path}", lambda: create_session(path, self.cfg.hardware))

    def _memo(self, key: str, make: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]


def _plain(value: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def resolve_pooling(pooling: str, folder: Path) -> str:
    """`auto` follows the sentence-transformers pooling config shipped with the model; mean otherwise."""
    if pooling != "auto":
        return pooling
    config = folder / "1_Pooling" / "config.json"
    if config.is_file():
        modes = json.loads(config.read_text(encoding="utf-8"))
        for mode in ("cls", "max", "mean"):
            if modes.get(f"pooling_mode_{mode}_token" if mode == "cls" else f"pooling_mode_{mode}_tokens"):
                return mode
    return "mean"


class TaskModule(torch.nn.Module):
    """A transformers model with positional inputs (named by `input_names`) and the task's outputs."""

    def __init__(self, model: torch.nn.Module, task: Task, input_names: tuple[str, ...], pooling: str):
        super().__init__()
        self.model, self.task, self.input_names, self.pooling = model, task, input_names, pooling

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        kwargs = dict(zip(self.input_names, inputs, strict=True))
        out = self.model(**kwargs)
        if self.task.name == "feature-extraction":
            hidden = out.last_hidden_state
            return hidden, pool(hidden, kwargs["attention_mask"], self.pooling)
        return tuple(out[name] for name in self.task.outputs)


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """sentence-transformers pooling followed by L2 normalization."""
    if mode == "cls":
        emb = hidden[:, 0]
    else:
        m = mask.unsqueeze(-1).to(hidden.dtype)
        if mode == "max":
            emb = (hidden - (1 - m) * 1e9).max(dim=1).values
        else:
            emb = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(emb, p=2, dim=1)


# ------------------------------------------------------------------------------------------------ inputs

SENTENCES = [
    "Hello world.",
    "The quick brown fox jumps over the lazy dog.",
    "",
    "   ",
    "Café naïve résumé: accents, ümlauts, ß, and emoji 🙂 — plus 日本語 and Ελληνικά.",
    "George Washington was the first president of the United States, serving from 1789 to 1797.",
    "I absolutely loved this film; the acting was superb and the story moving.",
    "Terrible service. I will never come back here again!",
    "Apple Inc. is headquartered in Cupertino, California, and was founded by Steve Jobs.",
    " ".join(["A very long text that goes beyond the maximum length of the model."] * 60),
]
QUESTIONS = [
    ("Who was the first president?", SENTENCES[5]),
    ("Where is Apple headquartered?", SENTENCES[8]),
    ("What did the reviewer think?", SENTENCES[6]),
    ("What is the capital of France?", "Paris is the capital and largest city of France."),
    ("", "An empty question still has a context."),
    ("When did he serve?", SENTENCES[9] + " " + SENTENCES[5]),
    ("What is unrelated?", "The weather today is sunny with a light breeze."),
    ("Qui est le président?", "Café naïve — 日本語 — " + SENTENCES[5]),
]


def fidelity_batches(ctx: BuildContext, batch_size: int = 4) -> list[dict[str, np.ndarray]]:
    """Built-in inputs in padded batches: right padding, and one batch with left padding."""
    tok = ctx.tokenizer()
    items = QUESTIONS if ctx.task.pairs else SENTENCES
    max_length = min(ctx.max_length, 256)
    batches = []
    for side, start in (("right", 0), ("right", batch_size), ("right", 2 * batch_size), ("left", 1)):
        chunk = items[start : start + batch_size] or items[:batch_size]
        tok.padding_side = side
        common = dict(padding=True, max_length=max_length, return_tensors="np")
        if ctx.task.pairs:
            questions, contexts = zip(*chunk, strict=True)
            enc = tok(list(questions), list(contexts), truncation="only_second", **common)
        else:
            enc = tok(list(chunk), truncation=True, **common)
        batches.append({name: enc[name].astype(np.int64) for name in ctx.input_names})
    tok.padding_side = "right"
    return batches


def torch_outputs(
    module: torch.nn.Module, batch: dict[str, np.ndarray], names: tuple[str, ...]
) -> list[np.ndarray]:
    """The module's outputs on a batch, remembered on the module: sweep jobs in one process share the
    PyTorch model, and its outputs on the built-in inputs are the same for every bundle they compare."""
    digest = hashlib.sha256()
    for n in names:
        digest.update(f"{n}{batch[n].shape}{batch[n].dtype}".encode())
        digest.update(np.ascontiguousarray(batch[n]).tobytes())
    memo: dict[str, list[np.ndarray]] = module.__dict__.setdefault("_builder_outputs", {})
    if digest.hexdigest() not in memo:
        with torch.inference_mode():
            out = module(*(torch.from_numpy(batch[n]) for n in names))
        memo[digest.hexdigest()] = [o.float().numpy() for o in out]
    return [o.copy() for o in memo[digest.hexdigest()]]


# --------------------------------------------------------------------------------------------- onnx files


def save_onnx(model: onnx.ModelProto, path: Path) -> Path:
    """Save without anything that depends on where or when it was built, so equal inputs give equal bytes.
    (producer_name stays the exporter's: ONNX Runtime's optimizer checks it.)"""
    model.doc_string = ""
    del model.metadata_props[:]
    for graph in _graphs(model.graph):
        del graph.metadata_props[:]
        graph.doc_string = ""
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
    large = model.ByteSize() > 1_800_000_000  # protobuf's 2 GB limit: weights go to model.onnx_data
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=large,
        all_tensors_to_one_file=True,
        location=path.name + "_data" if large else None,
    )
    return path


def _graphs(graph: onnx.GraphProto):  # type: ignore[no-untyped-def]
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            for g in attr.graphs:
                yield from _graphs(g)


def onnx_files(path: Path) -> list[Path]:
    """The .onnx file and its external-data file, if any."""
    data = path.with_name(path.name + "_data")
    return [path, data] if data.exists() else [path]


def onnx_size(path: Path) -> int:
    return sum(p.stat().st_size for p in onnx_files(path))
