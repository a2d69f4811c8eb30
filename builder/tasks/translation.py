"""translation: an encoder-decoder model (T5 with its "translate English to German: " prefix, BART-family
translation models) as transformers 4.57's TranslationPipeline answered: [{"translation_text": ...}], scored by
BLEU and chrF against reference translations. task.src_lang / task.tgt_lang pick T5's task_specific_params entry
(translation_<src>_to_<tgt>)."""

from __future__ import annotations

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

    def runtime_options(self, options: dict[str, Any], folder: Path) -> dict[str, Any]:
        languages = {k: options.get(k) for k in ("src_lang", "tgt_lang")}
        return super().runtime_options(options, folder) | {"languages": languages}

    def task_params_key(self, options: dict[str, Any]) -> str:
        """transformers' pipeline task translation_<src>_to_<tgt> (T5's task_specific_params keys)."""
        if options.get("src_lang") and options.get("tgt_lang"):
            return f"translation_{options['src_lang']}_to_{options['tgt_lang']}"
        return self.name


TASK = Translation()
