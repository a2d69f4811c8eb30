"""text-generation with the call shape and outputs of transformers' TextGenerationPipeline, on one decoder graph
with a key/value cache: the prompt runs with an empty past, every later step runs only the new token.

Semantics follow transformers 5: the generation settings are the global defaults, then the bundle's
generation_config.json, then the call's arguments, with the pipeline's own defaults (max_new_tokens 256,
do_sample, temperature 0.7) where neither set them; logits go through repetition penalty, temperature, top-k,
top-p in that order; a finished row gets the pad token; the full text is the prompt plus the decoded new tokens.
Lists of prompts run as one left-padded batch with position ids from the mask, so each row is what its prompt
gives alone. The key/value cache is the engine's (builder/runtime/kv_cache.py): a bundle whose attention is fused keeps
it in one buffer per layer that the graph appends to in place. Sampling draws from numpy's generator: reproducible with `seed`, not torch's random stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from builder.runtime import generation
from builder.runtime.engine import check_batch_size
from builder.runtime.generation import token_ids
from builder.runtime.pipelines.base import Pipeline

PIPELINE_DEFAULTS = {
    "max_new_tokens": 256,
    "do_sample": True,
    "temperature": 0.7,
}  # where nothing else set them
LAST = np.array([1], dtype=np.int64)


class TextGeneration(Pipeline):
    def __init__(self, engine: Any):
        super().__init__(engine)
        self.tok = engine.tokenizer
        layout = engine.options
        self.num_layers, self.kv_heads = int(layout["num_layers"]), int(layout["num_kv_heads"])
        self.head_dim, self.max_positions = int(layout["head_dim"]), int(layout["max_positions"])
        folder = Path(engine.folder)
        path = folder / "generation_config.json"
        saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        self.model_settings = {k: v for k, v in saved.items() if k in generation.KEYS}
        config = engine.model_config
        self.eos = token_ids(saved.get("eos_token_id", config.get("eos_token_id")))
        pad = saved.get("pad_token_id", config.get("pad_token_id"))
        tok_pad = self.tok.token_id(self.tok.config.get("pad_token"))
        self.pad = int(pad if pad is not None else tok_pad if tok_pad is not None else (self.eos or [0])[0])
        self.cleanup = bool(self.tok.config.get("clean_up_tokenization_spaces", False))
        self.chat_template = _chat_template(folder, self.tok.config)
        self.past_names = [
            f"past_key_values.{i}.{kv}" for i in range(self.num_layers) for kv in ("key", "value")
        ]
        self.present_names = [n.replace("past_key_values", "present") for n in self.past_names]

    # ------------------------------------------------------------------------------------------- the call

    def __call__(self, text_inputs: Any, **kwargs: Any) -> Any:
        """A prompt (or chat) gives [{"generated_text": ...}] (num_return_sequences entries); a list gives a list
        of those. Arguments: max_new_tokens, do_sample, temperature, top_k, top_p, repetition_penalty,
        num_return_sequences, return_full_text, stop (strings that end a sequence), seed, truncate (cut a prompt
        longer than the context from the left instead of refusing it), batch_size."""
        single = isinstance(text_inputs, str) or _is_chat(text_inputs)
        prompts = [text_inputs] if single else list(text_inputs)
        if not prompts:
            return []
        return_full_text = kwargs.pop("return_full_text", True)
        batch_size = kwargs.pop("batch_size", 8)
        check_batch_size(batch_size)
        results: list[list[dict[str, Any]]] = []
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            texts = self._generate(chunk, dict(kwargs))
            for prompt, generated in zip(chunk, texts, strict=True):
                results.append(
                    [{"generated_text": self._full(prompt, g, return_full_text)} for g in generated]
                )
        return results[0] if single else results

    def stream(self, text_input: Any, **kwargs: Any) -> Iterator[str]:
        """The new text of one prompt, piece by piece as tokens arrive; a piece never ends inside a character
        (byte-level tokens that split one wait for the rest)."""
        if not (isinstance(text_input, str) or _is_chat(text_input)):
            raise ValueError("stream() takes one prompt (a text or a chat)")
        s = self.settings(kwargs)
        if s["num_return_sequences"] != 1 or s["num_beams"] != 1:
            raise ValueError(
                "stream() gives one sequence as it grows: num_return_sequences and num_beams must be 1"
            )
        steps = self.iter_ids([self._encode(text_input, s["truncate"])], s)
        yield from generation.pieces(self._cut_at_stop(self._decode(new[0]), s["stop"]) for new in steps)

    takes_lists = False  # each line generates alone (a line may stream)

    def predict_request(self, item: Any) -> Any:
        """A prompt, {"inputs": ..., "parameters": {...}}, or {"text_inputs": ..., ...arguments}. With
        "stream": true among the arguments: the new text's pieces as they come ({"token": piece} each), then
        {"generated_text": ...}."""
        if isinstance(item, dict) and ("inputs" in item or "text_inputs" in item):
            kwargs = dict(item.get("parameters") or {}) if "inputs" in item else dict(item)
            prompt = item["inputs"] if "inputs" in item else kwargs.pop("text_inputs")
        else:
            prompt, kwargs = item, {}
        if not kwargs.pop("stream", False):
            return self(prompt, **kwargs)
        kwargs.pop("return_full_text", None)

        def pieces() -> Iterator[dict[str, Any]]:
            text = ""
            for piece in self.stream(prompt, **kwargs):
                text += piece
                yield {"token": piece}
            yield {"generated_text": text}

        return pieces()

    # ------------------------------------------------------------------------------------------ settings

    def settings(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The generation settings of a call, as transformers' pipeline resolves them (generation.resolve)."""
        try:
            return generation.resolve(self.model_settings, kwargs, PIPELINE_DEFAULTS)
        except ValueError as e:
            raise ValueError(f"text-generation: {e}") from None

    # ---------------------------------------------------------------------------------------- generation

    def _generate(self, prompts: list[Any], kwargs: dict[str, Any]) -> list[list[str]]:
        """Per prompt, its num_return_sequences generated texts (new text only)."""
        s = self.settings(kwargs)
        encoded = [self._encode(p, s["truncate"]) for p in prompts]
        texts = [self._cut_at_stop(self._decode(ids), s["stop"]) for ids in self.generate_ids(encoded, s)]
        n = s["num_return_sequences"]
        return [texts[i * n : (i + 1) * n] for i in range(len(prompts))]

    def generate_ids(
        self, rows: list[list[int]], s: dict[str, Any], ignore_eos: bool = False
    ) -> list[list[int]]:
        """The new token ids of each prompt (num_return_sequences each, prompt by prompt), until eos (included, as
        generate() returns it), a stop string, max_new_tokens or the context's end. `s`: resolved settings
        (settings()); ignore_eos: run to the end."""
        new: list[list[int]] = []
        for state in self.iter_ids(rows, s, ignore_eos):
            new = state
        return new

    def iter_ids(
        self, rows: list[list[int]], s: dict[str, Any], ignore_eos: bool = False
    ) -> Iterator[list[list[int]]]:
        """Every row's new token ids after each step (greedy search and sampling; beam search: once, at the end):
        generation.generate over this bundle's decoder. The prompts run once, as one left-padded batch with an
        empty past; each later step feeds only the chosen tokens. The lists yielded grow in place: copy to keep."""
        longest = max(len(r) for r in rows)
        budget = s["max_new_tokens"] if s["max_new_tokens"] is not None else max(s["max_length"] - longest, 0)
        budget = max(min(budget, self.max_positions - longest), 0)
        steps = DecoderSteps(self, rows, longest + budget)
        stops = s["stop"]

        def stop(new: list[int]) -> bool:
            return bool(stops) and any(text in self._decode(new) for text in stops)

        yield from generation.generate(steps, rows, s, self.eos, self.pad, budget, ignore_eos, stop)

    # ------------------------------------------------------------------------------------------ scoring

    def score(self, texts: list[str], batch_size: int = 8) -> list[tuple[float, int]]:
        """Per text: (summed negative log-likelihood of its tokens after the first, how many), with the whole
        text as one prompt; texts longer than the context are cut to it."""
        check_batch_size(batch_size)
        results = []
        encodings = self.tok.encode(texts, max_length=self.max_positions)
        for start in range(0, len(encodings), batch_size):
            chunk = [e.ids for e in encodings[start : start + batch_size]]
            longest = max(len(c) for c in chunk)
            ids = np.full((len(chunk), longest), self.pad, dtype=np.int64)
            mask = np.zeros_like(ids)
            for i, c in enumerate(chunk):  # right padding: every row starts at position 0
                ids[i, : len(c)], mask[i, : len(c)] = c, 1
            past = {
                n: np.zeros((len(chunk), self.kv_heads, 0, self.head_dim), dtype=np.float32)
                for n in self.past_names
            }
            position = np.maximum(mask.cumsum(-1) - 1, 0)
            (logits,) = self.engine.run(
                ["logits"], {"input_ids": ids, "attention_mask": mask, "position_ids": position, **past}
            )
            logits = np.asarray(logits, dtype=np.float64)
            shifted = logits - logits.max(-1, keepdims=True)
            logprobs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
            for i, c in enumerate(chunk):
                n = len(c) - 1
                if n <= 0:
                    results.append((0.0, 0))
                    continue
                picked = logprobs[i, np.arange(n), np.asarray(c[1:])]
                results.append((float(-picked.sum()), n))
        return results

    # --------------------------------------------------------------------------------------------- text

    def _encode(self, prompt: Any, truncate: bool) -> list[int]:
        if _is_chat(prompt):
            text = self.apply_chat_template(prompt)
            ids = self.tok.base.encode(text, add_special_tokens=False).ids
        elif isinstance(prompt, str):
            ids = self.tok.base.encode(prompt).ids
        else:
            raise ValueError(
                f"text-generation takes a text, a chat (a list of {{'role', 'content'}} messages), or a list of "
                f"those; got {type(prompt).__name__}"
            )
        if len(ids) >= self.max_positions:
            if not truncate:
                raise ValueError(
                    f"the prompt is {len(ids)} tokens; the model's context is {self.max_positions}. Shorten it, or "
                    "pass truncate=True to keep its last tokens."
                )
            ids = ids[-(self.max_positions - 1) :]
        return ids

    def _decode(self, ids: list[int]) -> str:
        text = self.tok.base.decode(ids, skip_special_tokens=True)
        return _clean_up(text) if self.cleanup else text

    def _cut_at_stop(self, text: str, stops: list[str]) -> str:
        """As transformers' stop strings: the text ends with the first stop string it reached."""
        ends = [text.index(s) + len(s) for s in stops if s and s in text]
        return text[: min(ends)] if ends else text

    def _full(self, prompt: Any, generated: str, return_full_text: bool) -> Any:
        if not return_full_text:
            return generated
        if _is_chat(prompt):
            if prompt[-1]["role"] == "assistant":  # a prefill: the answer continues the last message
                return [*prompt[:-1], {"role": "assistant", "content": prompt[-1]["content"] + generated}]
            return [*prompt, {"role": "assistant", "content": generated}]
        return prompt + generated

    def apply_chat_template(self, messages: list[dict[str, Any]]) -> str:
        """The tokenizer's chat template (jinja2), as transformers renders it for generation."""
        if not self.chat_template:
            raise ValueError("this bundle's tokenizer has no chat template: give a text prompt instead")
        from jinja2.ext import loopcontrols  # jinja2: a runtime dependency
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise ValueError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        env.filters["tojson"] = lambda x, indent=None: json.dumps(x, ensure_ascii=False, indent=indent)
        env.globals["raise_exception"] = raise_exception
        continue_final = messages[-1]["role"] == "assistant"
        specials = {
            k: _token_text(self.tok.config.get(k))
            for k in ("bos_token", "eos_token", "pad_token", "unk_token")
        }
        text = env.from_string(self.chat_template).render(
            messages=messages, add_generation_prompt=not continue_final, **specials
        )
        if continue_final:  # the rendered last message may close with end tokens: continue inside it
            content = messages[-1]["content"].strip()
            text = text[: text.rindex(content) + len(content)] if content and content in text else text
        return text


class DecoderSteps:
    """generation.Steps over a decoder-only graph: the prompts as one left-padded batch (position ids from the
    mask), then one token per row and step, with the engine's key/value cache (builder/runtime/kv_cache.py)."""

    def __init__(self, gen: TextGeneration, rows: list[list[int]], positions: int):
        """positions: the most the cache will hold (the longest prompt and every new token)."""
        longest = max(len(r) for r in rows)
        self.ids = np.full((len(rows), longest), gen.pad, dtype=np.int64)
        # the whole mask to come (prompt, then a 1 per step), read as its first `length` columns
        self.full = np.zeros((len(rows), max(positions, longest)), dtype=np.int64)
        for i, r in enumerate(rows):  # left padding
            if r:
                self.ids[i, longest - len(r) :] = r
                self.full[i, longest - len(r) : longest] = 1
        self.length = longest
        self.count = self.full.sum(-1)  # each row's real tokens: its next position is count - 1
        shape = (len(rows), gen.kv_heads, positions, gen.head_dim)
        self.cache = gen.engine.kv_cache(gen.past_names, gen.present_names, shape)
        # the last position's logits only, where the graph takes logits_to_keep (builder/make/logits_to_keep.py)
        optional = gen.engine.graphs["model"].optional
        self.keep = {"logits_to_keep": LAST} if "logits_to_keep" in optional else {}

    @property
    def mask(self) -> np.ndarray:
        return self.full[:, : self.length]

    def first(self) -> np.ndarray:
        return self._run(self.ids, np.maximum(self.mask.cumsum(-1) - 1, 0))

    def next(self, tokens: np.ndarray) -> np.ndarray:
        self.full[:, self.length] = 1
        self.length += 1
        self.count += 1
        return self._run(np.asarray(tokens, dtype=np.int64)[:, None], (self.count - 1)[:, None])

    def reorder(self, rows: np.ndarray) -> None:
        self.full, self.count = self.full[rows], self.count[rows]
        self.cache.reorder(rows, self.length)

    def _run(self, ids: np.ndarray, position: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": self.mask, "position_ids": position, **self.keep}
        return np.asarray(self.cache.step(feeds)[:, -1, :], dtype=np.float32)


def _is_chat(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) and "role" in m for m in value)


def _token_text(value: Any) -> str | None:
    return value.get("content") if isinstance(value, dict) else value


def _chat_template(folder: Path, config: dict[str, Any]) -> str | None:
    path = folder / "chat_template.jinja"  # transformers 5 saves it beside tokenizer_config.json
    if path.is_file():
        return path.read_text(encoding="utf-8")
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    return template


def _clean_up(text: str) -> str:
    """transformers' clean_up_tokenization: no space before punctuation and common contractions."""
    for a, b in (
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
    ):
        text = text.replace(a, b)
    for a, b in ((" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(a, b)
    return text
