"""text2text-generation, summarization and translation with the call shapes and outputs of transformers 4.57's
pipelines (transformers 5 removed them), on a bundle's encoder graph and its decoder graphs with a key/value cache
(builder/tasks/seq2seq.py). The search is generation.generate, shared with text generation.

Settings: the global defaults, then the bundle's generation_config.json, then the model's task_specific_params for
the task (as transformers' pipeline applies them), then the call's arguments, with the pipelines' own defaults
(max_new_tokens 256, num_beams 4) where none of those set them. The text is the decoded new tokens without special
tokens (clean_up_tokenization_spaces=False unless asked). Lists run in right-padded batches of `batch_size`; beam
search runs every beam of a batch in one session call per step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from builder.runtime import generation
from builder.runtime.engine import check_batch_size
from builder.runtime.generation import token_ids
from builder.runtime.kv_cache import take_rows
from builder.runtime.pipelines import checks
from builder.runtime.pipelines.base import Pipeline

PIPELINE_DEFAULTS = {"max_new_tokens": 256, "num_beams": 4}  # 4.57's _default_generation_config
ENCODER, DECODER, WITH_PAST = "encoder_model", "decoder_model", "decoder_with_past_model"


class Text2TextGeneration(Pipeline):
    output_key = "generated_text"

    def __init__(self, engine: Any):
        super().__init__(engine)
        self.tok = engine.tokenizer
        options = engine.options
        self.num_layers, self.max_positions = int(options["num_layers"]), int(options["max_positions"])
        self.start = int(options["decoder_start_token_id"])
        self.prefix = options.get("prefix") or ""
        folder = Path(engine.folder)
        path = folder / "generation_config.json"
        saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        # the task's settings (task_specific_params) over the generation config, as the pipeline updates it
        self.model_settings = {**saved, **(options.get("generation") or {})}
        config = engine.model_config
        self.eos = token_ids(self.model_settings.get("eos_token_id", config.get("eos_token_id")))
        pad = self.model_settings.get("pad_token_id", config.get("pad_token_id"))
        self.pad = int(pad if pad is not None else self.tok.pad_id)
        layers = range(self.num_layers)
        self.past_names = [f"past_key_values.{i}.{s}.{kv}" for i in layers for s in ("decoder", "encoder")
                           for kv in ("key", "value")]  # fmt: skip
        self.own_names = [n for n in self.past_names if ".decoder." in n]

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """A text gives [{output_key: ...}] (num_return_sequences entries); a list gives one such list per text, or
        with one sequence each, one dict per text. Arguments: the generation settings (max_new_tokens, num_beams,
        length_penalty, early_stopping, no_repeat_ngram_size, min_length, do_sample, ...), truncation (cut an input
        longer than the encoder takes instead of refusing it), clean_up_tokenization_spaces, return_tensors /
        return_text, batch_size, seed."""
        texts, single = checks.texts(inputs, self.output_key.split("_")[0])
        if not texts:
            return []
        truncation = checks.flag("truncation", kwargs.pop("truncation", False))
        batch_size = kwargs.pop("batch_size", 8)
        check_batch_size(batch_size)
        clean_up = checks.flag(
            "clean_up_tokenization_spaces", kwargs.pop("clean_up_tokenization_spaces", False)
        )
        return_tensors = checks.flag("return_tensors", kwargs.pop("return_tensors", False))
        return_text = checks.flag("return_text", kwargs.pop("return_text", not return_tensors))
        self.check_call(kwargs)
        s = self.settings(kwargs)
        n = s["num_return_sequences"]
        results: list[list[dict[str, Any]]] = []
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            ids = self.generate_ids(chunk, s, truncation=truncation)
            for i in range(len(chunk)):
                records = []
                for new in ids[i * n : (i + 1) * n]:
                    record: dict[str, Any] = {}
                    if return_tensors:
                        record[self.output_key.replace("_text", "_token_ids")] = [self.start, *new]
                    if return_text:
                        record[self.output_key] = self.decode(new, clean_up)
                    records.append(record)
                results.append(records)
        if single:
            return results[0]
        return [r[0] for r in results] if n == 1 else results

    def stream(self, text: str, **kwargs: Any) -> Iterator[str]:
        """The output text of one input, piece by piece as tokens arrive (greedy search or sampling: num_beams
        defaults to 1 here, and beam search, which knows its text only at the end, is refused)."""
        if not isinstance(text, str):
            raise ValueError(f"stream() takes one text, got {type(text).__name__}")
        truncation = checks.flag("truncation", kwargs.pop("truncation", False))
        self.check_call(kwargs)
        s = self.settings({"num_beams": 1, **kwargs})
        if s["num_beams"] != 1 or s["num_return_sequences"] != 1:
            raise ValueError(
                "stream() gives one sequence as it grows: num_beams and num_return_sequences must be 1"
            )
        steps = self.iter_ids(self.encode([text], truncation), s)
        yield from generation.pieces(self.decode(new[0]) for new in steps)

    def check_call(self, kwargs: dict[str, Any]) -> None:
        """Arguments this pipeline takes besides the generation settings (translation: src_lang, tgt_lang)."""

    def settings(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The generation settings of a call, as transformers 4.57's pipeline resolves them."""
        try:
            return generation.resolve(self.model_settings, kwargs, PIPELINE_DEFAULTS)
        except ValueError as e:
            raise ValueError(f"{self.output_key.split('_')[0]}: {e}") from None

    def encode(self, texts: list[str], truncation: bool = False) -> list[list[int]]:
        """Each text with the task's prefix, as the encoder takes it; one longer than the encoder's limit is refused,
        or cut (its special tokens kept) with truncation=True."""
        limit = self.tok.max_length
        rows = [e.ids for e in self.tok.base.encode_batch([self.prefix + t for t in texts])]
        long = [i for i, r in enumerate(rows) if len(r) > limit]
        if long and not truncation:
            raise ValueError(
                f"input {long[0]} is {len(rows[long[0]])} tokens; the encoder takes {limit}. Shorten it, or pass "
                "truncation=True to keep its first tokens."
            )
        if long:
            cut = self.tok.encode([self.prefix + texts[i] for i in long], max_length=limit)
            for i, e in zip(long, cut, strict=True):
                rows[i] = e.ids
        return rows

    def generate_ids(
        self,
        inputs: list[Any],
        s: dict[str, Any],
        ignore_eos: bool = False,
        truncation: bool = False,
        encoded: bool = False,
    ) -> list[list[int]]:
        """The new token ids of each input (num_return_sequences each, input by input; the decoder start token not
        included). inputs: texts, or token ids with encoded=True."""
        rows = [list(r) for r in inputs] if encoded else self.encode(list(inputs), truncation)
        new: list[list[int]] = []
        for state in self.iter_ids(rows, s, ignore_eos):
            new = state
        return new

    def iter_ids(
        self, rows: list[list[int]], s: dict[str, Any], ignore_eos: bool = False
    ) -> Iterator[list[list[int]]]:
        """Every row's new token ids after each step (beam search: once, at the end): generation.generate over
        this bundle's encoder and decoders. Every row starts from the decoder start token; a decoder row holds at
        most as many tokens as the model has positions. The lists yielded grow in place: copy to keep."""
        budget = s["max_new_tokens"] if s["max_new_tokens"] is not None else max(s["max_length"] - 1, 0)
        budget = max(min(budget, self.max_positions - 1), 0)
        starts = [[self.start]] * len(rows)
        yield from generation.generate(
            Seq2SeqSteps(self, rows), starts, s, self.eos, self.pad, budget, ignore_eos
        )

    def decode(self, ids: list[int], clean_up: bool = False) -> str:
        text = self.tok.base.decode(ids, skip_special_tokens=True)
        return _clean_up(text) if clean_up else text

    def predict_request(self, item: Any) -> Any:
        """A text, or {"inputs": ..., "parameters": {...}}. With "stream": true among the parameters: the output's
        pieces as they come ({"token": piece} each), then {output_key: the whole text}."""
        if not (isinstance(item, dict) and "inputs" in item):
            return self(item)
        parameters = item.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ValueError(f'"parameters" must be an object, got {parameters!r}')
        parameters = dict(parameters)
        if not parameters.pop("stream", False):
            return self(item["inputs"], **parameters)

        def stream() -> Iterator[dict[str, Any]]:
            text = ""
            for piece in self.stream(item["inputs"], **parameters):
                text += piece
                yield {"token": piece}
            yield {self.output_key: text}

        return stream()

    def request_parts(self, item: Any) -> tuple[Any, dict[str, Any]] | None:
        parts = super().request_parts(item)
        return None if parts is not None and parts[1].get("stream") else parts  # a stream runs alone


class Summarization(Text2TextGeneration):
    output_key = "summary_text"


class Translation(Text2TextGeneration):
    output_key = "translation_text"

    def check_call(self, kwargs: dict[str, Any]) -> None:
        """src_lang / tgt_lang: the bundle translates the pair it was built for (task.src_lang, task.tgt_lang)."""
        built = self.engine.options.get("languages") or {}
        for key in ("src_lang", "tgt_lang"):
            value = kwargs.pop(key, None)
            if value is not None and value != built.get(key):
                raise ValueError(
                    f"{key}={value!r}: this bundle translates {built.get('src_lang') or '?'} to "
                    f"{built.get('tgt_lang') or '?'}; build another with task.src_lang and task.tgt_lang"
                )


class Seq2SeqSteps:
    """generation.Steps over an encoder-decoder bundle: the inputs encoded once (right-padded), the first decoder
    step computes the cross-attention cache, later steps feed one token per row and the cache. Reordering rows
    (beam search) gathers the self-attention cache; the cross-attention cache and the encoder mask are gathered only
    when rows move between inputs (every row repeated), since all beams of an input share them."""

    def __init__(self, gen: Text2TextGeneration, rows: list[list[int]]):
        self.gen, self.engine = gen, gen.engine
        longest = max(len(r) for r in rows)
        ids = np.full((len(rows), longest), gen.tok.pad_id, dtype=np.int64)
        self.mask = np.zeros((len(rows), longest), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)], self.mask[i, : len(r)] = r, 1
        (self.hidden,) = self._run(
            ["last_hidden_state"], {"input_ids": ids, "attention_mask": self.mask}, ENCODER
        )
        self.source = np.arange(len(rows))  # the input each row continues
        self.own: list[np.ndarray] = []
        self.cross: list[np.ndarray] = []

    def first(self) -> np.ndarray:
        start = np.full((len(self.mask), 1), self.gen.start, dtype=np.int64)
        present = [n.replace("past_key_values", "present") for n in self.gen.past_names]
        feeds = {
            "input_ids": start,
            "encoder_attention_mask": self.mask,
            "encoder_hidden_states": self.hidden,
        }
        out = self._run(["logits", *present], feeds, DECODER, frozenset(present))
        self.own = [v for n, v in zip(present, out[1:], strict=True) if ".decoder." in n]
        self.cross = [v for n, v in zip(present, out[1:], strict=True) if ".encoder." in n]
        self.hidden = None  # the cross-attention cache holds what the decoder reads of it
        return np.asarray(out[0][:, -1, :], dtype=np.float32)

    def next(self, tokens: np.ndarray) -> np.ndarray:
        feeds: dict[str, np.ndarray] = {
            "input_ids": np.asarray(tokens, dtype=np.int64)[:, None],
            "encoder_attention_mask": self.mask,
        }
        own, cross = iter(self.own), iter(self.cross)
        for name in self.gen.past_names:
            feeds[name] = next(cross) if ".encoder." in name else next(own)
        present = [n.replace("past_key_values", "present") for n in self.gen.own_names]
        out = self._run(["logits", *present], feeds, WITH_PAST, frozenset(present))
        self.own = list(out[1:])
        return np.asarray(out[0][:, -1, :], dtype=np.float32)

    def _run(
        self, outputs: list[str], feeds: dict[str, Any], graph: str, cache: frozenset[str] = frozenset()
    ) -> list[Any]:
        """The graph's outputs; the `cache` ones may stay on the engine's device (OnnxEngine.run_kept)."""
        taken = self.engine.graphs[graph].inputs  # an exporter may drop an input the graph never reads
        return self.engine.run_kept(outputs, {k: v for k, v in feeds.items() if k in taken}, graph, cache)

    def reorder(self, rows: np.ndarray) -> None:
        self.own = [take_rows(v, rows) for v in self.own]
        source = self.source[rows]
        if len(rows) != len(self.source) or not np.array_equal(source, self.source):
            self.cross = [take_rows(v, rows) for v in self.cross]
            self.mask = self.mask[rows]
            if self.hidden is not None:
                self.hidden = self.hidden[rows]
        self.source = source


def _clean_up(text: str) -> str:
    """transformers' clean_up_tokenization: no space before punctuation and common contractions."""
    for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                 (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):  # fmt: skip
        text = text.replace(a, b)
    return text
