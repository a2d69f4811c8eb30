"""text-generation with the call shape and outputs of transformers' TextGenerationPipeline, on one decoder graph
with a key/value cache: the prompt runs with an empty past, every later step runs only the new token.

Semantics follow transformers 5: the generation settings are the global defaults, then the bundle's
generation_config.json, then the call's arguments, with the pipeline's own defaults (max_new_tokens 256,
do_sample, temperature 0.7) where neither set them; logits go through repetition penalty, temperature, top-k,
top-p in that order; a finished row gets the pad token; the full text is the prompt plus the decoded new tokens.
Lists of prompts run as one left-padded batch with position ids from the mask, so each row is what its prompt
gives alone. Sampling draws from numpy's generator: reproducible with `seed`, not torch's random stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from builder.runtime.engine import check_batch_size
from builder.runtime.pipelines.base import Pipeline

GLOBAL_DEFAULTS = {  # transformers' GenerationConfig defaults
    "max_length": 20,
    "max_new_tokens": None,
    "do_sample": False,
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "repetition_penalty": 1.0,
    "num_return_sequences": 1,
}
PIPELINE_DEFAULTS = {
    "max_new_tokens": 256,
    "do_sample": True,
    "temperature": 0.7,
}  # where nothing else set them
SAMPLING = ("temperature", "top_k", "top_p")
GENERATION_KEYS = (*GLOBAL_DEFAULTS, "eos_token_id", "pad_token_id", "bos_token_id")


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


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
        self.model_settings = {k: v for k, v in saved.items() if k in GENERATION_KEYS}
        config = engine.model_config
        self.eos = _ids(saved.get("eos_token_id", config.get("eos_token_id")))
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
        if s["num_return_sequences"] != 1:
            raise ValueError("stream() gives one sequence: num_return_sequences must be 1")
        sent, text = "", ""
        for new in self._steps([self._encode(text_input, s["truncate"])], s):
            text = self._cut_at_stop(self._decode(new[0]), s["stop"])
            if len(text) > len(sent) and text.startswith(sent) and not text.endswith("\ufffd"):
                yield text[len(sent) :]
                sent = text
        if len(text) > len(sent) and text.startswith(sent):  # the end: what generation left unfinished, too
            yield text[len(sent) :]

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
        """The generation settings of a call, as transformers' pipeline resolves them."""
        unknown = set(kwargs) - {*GENERATION_KEYS, "stop", "seed", "truncate"}
        if unknown:
            raise ValueError(f"text-generation: unknown argument(s) {', '.join(sorted(unknown))}")
        set_params = {**self.model_settings, **{k: v for k, v in kwargs.items() if k in GENERATION_KEYS}}
        added = {
            k: v
            for k, v in PIPELINE_DEFAULTS.items()
            if k not in set_params and not (k == "max_new_tokens" and "max_length" in set_params)
        }
        if not {**set_params, **added}.get("do_sample"):
            added = {k: v for k, v in added.items() if k not in SAMPLING}
        s = {**GLOBAL_DEFAULTS, **set_params, **added}
        for key, low in (("max_new_tokens", 0), ("num_return_sequences", 1), ("top_k", 0)):
            if s[key] is not None and (
                not isinstance(s[key], int) or isinstance(s[key], bool) or s[key] < low
            ):
                raise ValueError(f"{key}={s[key]!r}: give an integer >= {low}")
        for key in ("temperature", "repetition_penalty"):
            if not isinstance(s[key], (int, float)) or s[key] <= 0:
                raise ValueError(f"{key}={s[key]!r}: give a number > 0")
        if not isinstance(s["top_p"], (int, float)) or not 0 < s["top_p"] <= 1:
            raise ValueError(f"top_p={s['top_p']!r}: give a number in (0, 1]")
        stop = kwargs.get("stop") or []
        s["stop"] = [stop] if isinstance(stop, str) else list(stop)
        s["seed"], s["truncate"] = kwargs.get("seed"), bool(kwargs.get("truncate", False))
        return s

    # ---------------------------------------------------------------------------------------- generation

    def _generate(self, prompts: list[Any], kwargs: dict[str, Any]) -> list[list[str]]:
        """Per prompt, its num_return_sequences generated texts (new text only)."""
        s = self.settings(kwargs)
        encoded = [self._encode(p, s["truncate"]) for p in prompts]
        rows = [ids for ids in encoded for _ in range(s["num_return_sequences"])]
        texts = [self._cut_at_stop(self._decode(ids), s["stop"]) for ids in self.generate_ids(rows, s)]
        n = s["num_return_sequences"]
        return [texts[i * n : (i + 1) * n] for i in range(len(prompts))]

    def generate_ids(
        self, rows: list[list[int]], s: dict[str, Any], ignore_eos: bool = False
    ) -> list[list[int]]:
        """The new token ids of each row (a prompt's ids), until eos (included, as generate() returns it), a
        stop string, max_new_tokens or the context's end. `s`: resolved settings (settings()); ignore_eos: run to
        the end."""
        new: list[list[int]] = [[] for _ in rows]
        for state in self._steps(rows, s, ignore_eos):
            new = state
        return new

    def _steps(
        self, rows: list[list[int]], s: dict[str, Any], ignore_eos: bool = False
    ) -> Iterator[list[list[int]]]:
        """The generation loop; yields every row's new ids after each step. The prompt batch runs once with an
        empty past; then each step feeds only the chosen tokens and the cache the previous step returned."""
        longest = max(len(r) for r in rows)
        budget = s["max_new_tokens"] if s["max_new_tokens"] is not None else max(s["max_length"] - longest, 0)
        budget = min(budget, self.max_positions - longest)
        rng = np.random.default_rng(s["seed"])
        batch = len(rows)
        ids = np.full((batch, longest), self.pad, dtype=np.int64)
        mask = np.zeros((batch, longest), dtype=np.int64)
        for i, r in enumerate(rows):  # left padding
            if r:
                ids[i, longest - len(r) :] = r
                mask[i, longest - len(r) :] = 1
        history = [list(r) for r in rows]  # what repetition penalty sees: each row's real tokens
        new: list[list[int]] = [[] for _ in rows]
        finished = np.zeros(batch, dtype=bool)
        past = {
            n: np.zeros((batch, self.kv_heads, 0, self.head_dim), dtype=np.float32) for n in self.past_names
        }
        outputs = ["logits", *self.present_names]
        step_ids, step_mask = ids, mask
        for _ in range(budget):
            position = np.maximum(step_mask.cumsum(-1) - 1, 0)[:, -step_ids.shape[1] :]
            out = self.engine.run(
                outputs,
                {"input_ids": step_ids, "attention_mask": step_mask, "position_ids": position, **past},
            )
            past = dict(zip(self.past_names, out[1:], strict=True))
            scores = np.asarray(out[0][:, -1, :], dtype=np.float32)
            chosen = np.full(batch, self.pad, dtype=np.int64)  # a finished row gets the pad token
            for i in np.flatnonzero(~finished):
                token = self._next(scores[i], history[i], s, rng)
                chosen[i] = token
                new[i].append(token)
                history[i].append(token)
                if (
                    not ignore_eos
                    and token in self.eos
                    or s["stop"]
                    and any(stop in self._decode(new[i]) for stop in s["stop"])
                ):
                    finished[i] = True
            yield new
            if finished.all():
                return
            step_ids = chosen[:, None]
            step_mask = np.concatenate([step_mask, np.ones((batch, 1), dtype=np.int64)], axis=1)

    def _next(
        self, scores: np.ndarray, history: list[int], s: dict[str, Any], rng: np.random.Generator
    ) -> int:
        """transformers' order: repetition penalty, then (sampling only) temperature, top-k, top-p."""
        if s["repetition_penalty"] != 1.0 and history:
            seen = np.unique(np.asarray(history, dtype=np.int64))
            values = scores[seen]
            scores = scores.copy()
            scores[seen] = np.where(
                values < 0, values * s["repetition_penalty"], values / s["repetition_penalty"]
            )
        if not s["do_sample"]:
            return int(np.argmax(scores))
        scores = scores / np.float32(s["temperature"])
        if s["top_k"]:
            k = min(int(s["top_k"]), scores.size)
            kth = np.partition(scores, -k)[-k]
            scores = np.where(scores < kth, -np.inf, scores)
        if s["top_p"] < 1.0:
            order = np.argsort(scores, kind="stable")  # ascending, as transformers sorts
            probs = _softmax(scores[order])
            cumulative = np.cumsum(probs)
            remove = cumulative <= (1 - s["top_p"])
            remove[-1] = False  # keep at least one
            scores = scores.copy()
            scores[order[remove]] = -np.inf
        probs = _softmax(scores).astype(np.float64)
        return int(rng.choice(scores.size, p=probs / probs.sum()))

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


def _softmax(x: np.ndarray) -> np.ndarray:
    finite = x[np.isfinite(x)]
    shifted = np.exp(x - (finite.max() if finite.size else 0.0))
    return shifted / shifted.sum()


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
