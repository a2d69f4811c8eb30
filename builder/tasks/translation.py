"""translation: an encoder-decoder model (T5 with its "translate English to German: " prefix, BART-family
translation models) as transformers 4.57's TranslationPipeline answered: [{"translation_text": ...}], scored by
BLEU and chrF against reference translations. task.src_lang / task.tgt_lang pick T5's task_specific_params entry
(translation_<src>_to_<tgt>)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.tasks.seq2seq import Seq2SeqTask


@dataclass
class Options:
    src_lang: str | None = None  # e.g. en: T5's translation_en_to_de prefix and settings
    tgt_lang: str | None = None  # e.g. de


class Translation(Seq2SeqTask):
    name = "translation"
    summary = "translation with an encoder-decoder (T5 with src_lang/tgt_lang, BART-family pairs)"
    pipeline = "translation"
    metric = "bleu"
    gate_metric = "bleu"
    Options = Options

    def option_problems(self, options: dict[str, Any]) -> list[str]:
        given = [k for k in ("src_lang", "tgt_lang") if options.get(k)]
        if len(given) == 1:
            missing = "tgt_lang" if given == ["src_lang"] else "src_lang"
            return [f"task.{given[0]}={options[given[0]]!r} without task.{missing}: give both, or neither"]
        return []

    def model_problems(
        self, model_config: dict[str, Any], source: str, folder: Path, options: dict[str, Any]
    ) -> list[str]:
        """A multilingual model (mBART: language codes among its tokenizer's special tokens) needs both languages,
        each one of its codes."""
        codes = _language_codes(folder)
        if not codes:
            return []
        bad = [k for k in ("src_lang", "tgt_lang") if options.get(k) not in codes]
        shown = ", ".join(sorted(codes)[:8]) + (", ..." if len(codes) > 8 else "")
        return [
            f"task.{k}={options.get(k)!r}: model.source={source} translates between language codes; give one of "
            f"{shown}"
            for k in bad
        ]

    def prepare_tokenizer(self, tokenizer: Any, options: dict[str, Any]) -> None:
        if options.get("src_lang") and hasattr(tokenizer, "src_lang"):  # mBART: `text </s> en_XX`
            tokenizer.src_lang = options["src_lang"]

    def runtime_options(self, options: dict[str, Any], folder: Path) -> dict[str, Any]:
        """The languages; for a multilingual model, its first generated token is the target language's code
        (forced_bos_token_id, as transformers' translation pipeline passes it)."""
        languages = {k: options.get(k) for k in ("src_lang", "tgt_lang")}
        resolved = super().runtime_options(options, folder) | {"languages": languages}
        codes = _language_codes(folder)
        if options.get("tgt_lang") in codes:
            resolved["generation"] = {
                **resolved["generation"],
                "forced_bos_token_id": codes[options["tgt_lang"]],
            }
        return resolved

    def task_params_key(self, options: dict[str, Any]) -> str:
        """transformers' pipeline task translation_<src>_to_<tgt> (T5's task_specific_params keys)."""
        if options.get("src_lang") and options.get("tgt_lang"):
            return f"translation_{options['src_lang']}_to_{options['tgt_lang']}"
        return self.name


TASK = Translation()


def _language_codes(folder: Path) -> dict[str, int]:
    """A multilingual tokenizer's language codes and their ids (mBART's lang_code_to_id); none for others."""
    return dict(_codes(str(folder), folder.stat().st_mtime_ns if folder.exists() else 0))


@functools.lru_cache(maxsize=8)
def _codes(folder: str, _changed: int) -> tuple[tuple[str, int], ...]:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except Exception:  # the model check names a tokenizer that cannot load
        return ()
    return tuple((getattr(tokenizer, "lang_code_to_id", None) or {}).items())
