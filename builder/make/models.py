"""The source model as the build uses it: its tokenizer, its facts (inputs, longest input), the PyTorch
modules of the task's graphs, and those modules behind the runtime's engine interface (TorchEngine). Sweep jobs
in one process share what they load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from builder.errors import StageError
from builder.make.spm_tokenizer import marian_tokenizer
from builder.runtime.engine import Engine, GraphIO
from builder.runtime.tokenizer import BundleTokenizer
from builder.source import Source
from builder.tasks import Graph, ModelFacts, Task
from builder.tasks.architectures import input_names, position_limit, read_config

_LOADED: dict[tuple, tuple[Any, int]] = {}  # the last PyTorch models loaded in this process, with their bytes
_KEEP = 3  # eager (export), default attention (baselines), and on a GPU a cuda copy
_KEEP_SHARE = 0.25  # of the host's memory: beyond it, earlier models go before the next one loads


class Models:
    def __init__(
        self, source: Source, task: Task, options: dict[str, Any], trust_remote_code: bool, what: str
    ):
        """what: the model.source value, for messages."""
        self.source, self.task, self.options = source, task, options
        self.trust_remote_code, self.what = trust_remote_code, what
        self._tokenizer: Any = None
        self._facts: ModelFacts | None = None

    @property
    def config(self) -> dict[str, Any]:
        return self.facts.config

    @property
    def graphs(self) -> tuple[Graph, ...]:
        """The task's graphs for this model."""
        return self.task.graphs(self.config)

    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = self.fresh_tokenizer()
        return self._tokenizer

    def fresh_tokenizer(self) -> Any:
        """A new instance (one in use keeps the padding/truncation of its last call in its tokenizer.json)."""
        from transformers import AutoTokenizer

        folder = self.source.path
        if read_config(folder).get("model_type") == "marian" and not (folder / "tokenizer.json").is_file():
            # SentencePiece files only (MarianTokenizer has no fast version): builder writes the tokenizer.json
            try:
                settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise StageError(f"model.source={self.what}: {_tokenizer_problem(folder, e)}") from e
            try:
                return marian_tokenizer(folder, settings if isinstance(settings, dict) else {})
            except StageError as e:
                raise StageError(f"model.source={self.what}: {e}") from None
        try:
            tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=self.trust_remote_code)
        except Exception as e:
            raise StageError(
                f"model.source={self.what}: {_tokenizer_problem(folder, e)}. Save the model's "
                "tokenizer there again (tokenizer.save_pretrained(FOLDER))"
            ) from e
        if not getattr(tok, "is_fast", False):
            raise StageError(
                f"model.source={self.what}: the tokenizer has no fast (tokenizer.json) version; bundles need "
                "one so apps run without transformers."
            )
        return tok

    @property
    def facts(self) -> ModelFacts:
        if self._facts is None:
            config = read_config(self.source.path)
            tok = self.tokenizer()
            vocab = config.get("vocab_size") or config.get("n_vocab")
            if isinstance(vocab, int) and len(tok) > vocab:
                raise StageError(
                    f"model.source={self.what}: its tokenizer has {len(tok)} tokens but the model's vocabulary "
                    f"(config.json vocab_size) is {vocab}: ids past {vocab - 1} have no embedding. Use the "
                    "tokenizer the model was trained with."
                )
            limit = position_limit(config)
            limit = min(limit, getattr(tok, "model_max_length", limit) or limit)
            self._facts = ModelFacts(
                folder=self.source.path,
                config=config,
                tokenizer=tok,
                input_names=input_names(config, list(tok.model_input_names)),
                max_length=int(self.task.max_length(self.source.path, int(limit))),
            )
        return self._facts

    def torch_modules(self, eager: bool, device: str = "cpu", dtype: str = "float32") -> dict[str, Any]:
        """The task's graphs as PyTorch modules in eval mode, by role. eager=True is the attention form ONNX
        Runtime can fuse (what export traces); eager=False the transformers default (sdpa), the baseline users
        would otherwise run; `dtype` the weights' (float16 on a GPU, against an fp16 bundle)."""
        key = (
            str(self.source.path),
            json.dumps(self.source.identity, sort_keys=True),
            self.task.name,
            json.dumps(self.options, sort_keys=True, default=str),
            eager,
            device,
            dtype,
        )
        if key not in _LOADED:  # sweep jobs in one process share the model they all read
            size = _weight_bytes(self.source.path)
            budget = _KEEP_SHARE * _host_memory()
            # A large model (a 1.5B decoder is 6 GB in fp32) is let go before the next copy of it loads.
            while _LOADED and (len(_LOADED) >= _KEEP or sum(b for _, b in _LOADED.values()) + size > budget):
                _LOADED.pop(next(iter(_LOADED)))
                import gc

                gc.collect()
            _LOADED[key] = (self._load(eager, device, dtype), size)
        return _LOADED[key][0]

    def release_large(self) -> None:
        """Let go of loaded PyTorch models too large to keep beside the next stage's work (a 1.5B decoder is 6 GB
        in fp32, and optimizing its graph takes twice that): the next stage that needs one loads it again."""
        budget = _KEEP_SHARE * _host_memory()
        large = [key for key, (_, size) in _LOADED.items() if size > budget]
        for key in large:
            del _LOADED[key]
        if large:
            import gc

            gc.collect()

    def _load(self, eager: bool, device: str, dtype: str = "float32") -> dict[str, Any]:
        import torch
        import transformers

        transformers.logging.disable_progress_bar()
        transformers.logging.set_verbosity_error()
        cls = getattr(transformers, self.task.head)
        kwargs = {"attn_implementation": "eager"} if eager else {}
        # float32 whatever the checkpoint holds: transformers loads a checkpoint in its own dtype (SmolLM2 and Qwen2.5
        # ship bfloat16), which ONNX Runtime's CPU kernels and the optimizer do not take; fp16 comes later (O4)
        kwargs["dtype"] = torch.float32
        try:
            model, info = cls.from_pretrained(
                self.source.path, trust_remote_code=self.trust_remote_code, output_loading_info=True, **kwargs
            )
        except Exception as e:  # no weights, weights that do not fit config.json, a refused pickle
            first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            raise StageError(
                f"model.source={self.what}: its weights do not load as {self.task.head} ({type(e).__name__}: "
                f"{first}). Check that config.json belongs to these weights and that they are complete "
                "(model.safetensors, or model.safetensors.index.json with every shard)."
            ) from e
        missing = sorted(k for k in info.get("missing_keys", ()) if "pooler" not in k)
        if missing:
            prefix = f"{model.base_model_prefix}."
            head = all(not k.startswith(prefix) for k in missing)
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise StageError(
                f"model.source={self.what}: this checkpoint has no trained head for task={self.task.name} "
                f"(not in its weights: {shown}); building it would publish random outputs. Fine-tune the model "
                "for the task first, or choose the task it was trained for."
                if head
                else f"model.source={self.what}: its weights lack {len(missing)} tensor(s) {self.task.head} needs "
                f"({shown}). Check that config.json belongs to these weights."
            )
        model.eval()
        return {
            graph.role: self.task.torch_module(model, self.facts, self.options, graph)
            .to(device=device, dtype=getattr(torch, dtype))
            .eval()
            for graph in self.graphs
        }


TOKENIZER_JSON = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")


def _weight_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for pattern in ("*.safetensors", "*.bin") for p in folder.glob(pattern))


def _host_memory() -> int:
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): keep models as on a small host
        return 8 << 30


def _tokenizer_problem(folder: Path, error: Exception) -> str:
    """Which tokenizer file is damaged, when one is not JSON; else what transformers said."""
    for name in TOKENIZER_JSON:
        try:
            json.loads((folder / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as bad:
            return f"{folder / name} is not a valid JSON file ({bad})"
    return f"its tokenizer cannot be loaded from {folder} ({type(error).__name__}: {error})"


def write_model_files(models: Models, folder: Path, device: str) -> Path:
    """The bundle's files besides the graphs: tokenizer files, config.json and the task's companion files
    (sentence-transformers' for embeddings; for `device`, the bundle's hardware.device). Stages that run the built graphs
    through the runtime read them, and the bundle is assembled from them."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = models.fresh_tokenizer()
    models.task.prepare_tokenizer(tokenizer, models.options)
    tokenizer.save_pretrained(folder)
    config = folder / "tokenizer_config.json"
    settings = json.loads(config.read_text(encoding="utf-8"))
    # transformers 5 names its fast tokenizer class TokenizersBackend; 4.x knows only the alias.
    if settings.get("tokenizer_class") == "TokenizersBackend":
        settings["tokenizer_class"] = "PreTrainedTokenizerFast"
        config.write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for name in ("config.json", "generation_config.json"):  # the generation config sets a decoder's defaults
        if (models.source.path / name).is_file():
            shutil.copyfile(models.source.path / name, folder / name)
    options = models.task.runtime_options(models.options, models.source.path)
    for rel, content in models.task.companion_files(models.facts, options, device).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return folder


class TorchEngine(Engine):
    """The PyTorch model (transformers' default attention) behind the runtime's engine interface."""

    def __init__(self, ctx: Any, runtime: dict[str, Any]):
        facts = ctx.models.facts
        self.modules = ctx.models.torch_modules(eager=False)
        self.folder = ctx.model_files
        self.tokenizer = BundleTokenizer(ctx.model_files, facts.max_length)
        self.model_config = facts.config
        self.options = runtime["options"]
        self.graphs = {  # the PyTorch modules take every input of their graph
            graph.role: GraphIO(
                graph.input_names(facts),
                graph.output_names,
                frozenset(o.name for o in graph.outputs if o.per_token),
            )
            for graph in ctx.models.graphs
        }

    def run(self, outputs: list[str], feeds: dict[str, Any], graph: str = "model") -> list[Any]:
        import torch

        with torch.inference_mode():
            values = self.modules[graph](*(torch.from_numpy(feeds[n]) for n in self.graphs[graph].inputs))
        by_name = dict(zip(self.graphs[graph].outputs, values, strict=True))
        return [by_name[name].float().numpy() for name in outputs]
