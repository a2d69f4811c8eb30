"""A fast tokenizer (tokenizer.json) for models that ship only SentencePiece files: Marian's `source.spm` +
`vocab.json` (MarianTokenizer has no fast version, and bundles need one so apps run without transformers).

Contract: `marian_tokenizer(folder)` encodes as MarianTokenizer does — the source model's Unigram lattice over its
own pieces and scores, each piece then looked up in `vocab.json` — and decodes ids back to text as it does. The
SentencePiece normalizer spec (precompiled character map, extra whitespace, dummy prefix) is followed as
SentencePiece applies it. Pieces that only the target model has (vocab.json is shared) keep their ids but can
never win the source lattice, whose pieces all score higher. One difference remains where vocab.json lacks a
source piece (counted, see below): MarianTokenizer gives <unk> for it, this tokenizer smaller pieces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from builder.errors import StageError

MARIAN_FILES = ("source.spm", "target.spm", "vocab.json")


def _proto(path: Path) -> Any:
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(path.read_bytes())
    return proto


def marian_tokenizer(folder: Path, settings: dict[str, Any]) -> Any:
    """`settings`: the folder's tokenizer_config.json (special tokens, model_max_length)."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    missing = [name for name in MARIAN_FILES if not (folder / name).is_file()]
    if missing:
        raise StageError(
            f"{folder}: a Marian model needs {', '.join(MARIAN_FILES)}; missing: {', '.join(missing)}"
        )
    if settings.get("separate_vocabs"):
        raise StageError(
            f"{folder}: tokenizer_config.json sets separate_vocabs (a target vocabulary of its own); builder's "
            "tokenizer.json holds one vocabulary, so this Marian model is not supported"
        )
    vocab: dict[str, int] = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    proto = _proto(folder / "source.spm")
    if proto.trainer_spec.model_type != 1:
        raise StageError(f"{folder / 'source.spm'}: a SentencePiece model of type {proto.trainer_spec.model_type}; "
                         "builder converts Unigram models (type 1) only")  # fmt: skip
    unk, eos, pad = (str(settings.get(k) or d) for k, d in (("unk_token", "<unk>"), ("eos_token", "</s>"),
                                                          ("pad_token", "<pad>")))  # fmt: skip
    ids = sorted(set(vocab.values()))
    if ids != list(range(len(ids))) or any(t not in vocab for t in (unk, eos, pad)):
        raise StageError(f"{folder / 'vocab.json'}: expected ids 0..N-1 without gaps and the tokens {unk}, {eos}, "
                         f"{pad}")  # fmt: skip
    source = {p.piece: p.score for p in proto.pieces if p.type == 1}  # normal pieces: the lattice's
    # Pieces of source.spm that vocab.json lacks (Marian's vocabulary is built from the encoded training data):
    # MarianTokenizer emits such a piece and maps it to <unk>; one Unigram vocabulary cannot give two pieces one
    # id, so they are left out of the lattice and a text that needs one is split into smaller pieces instead.
    # Counted in the saved tokenizer_config.json (builder_pieces_not_in_vocab) so that the difference is visible.
    lacking = sum(p not in vocab for p in source)
    floor = min(source.values(), default=0.0) - 1e6  # below any path through source pieces
    by_id = {i: t for t, i in vocab.items()}
    pieces = [(by_id[i], source.get(by_id[i], floor)) for i in range(len(by_id))]
    tok = Tokenizer(models.Unigram(pieces, unk_id=vocab[unk], byte_fallback=False))

    spec = proto.normalizer_spec  # SentencePiece's order: character map, whitespace, escape, dummy prefix
    steps: list[Any] = []
    if spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(spec.precompiled_charsmap))
    if spec.remove_extra_whitespaces:
        steps += [normalizers.Replace(Regex(r"\A +| +\z"), ""), normalizers.Replace(Regex(" {2,}"), " ")]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="always" if spec.add_dummy_prefix else "never", split=False
    )
    # MarianTokenizer strips the decoded text at both ends (the dummy prefix's space and a final lone "▁").
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.Fuse(), decoders.Replace(Regex(r"\A\s+|\s+\z"), "")]
    )
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", pair=f"$A $B {eos}", special_tokens=[(eos, vocab[eos])]
    )
    # Target-language codes (>>fra<<) open a multilingual model's input; MarianTokenizer keeps one whole.
    codes = [t for t in vocab if t.startswith(">>") and t.endswith("<<")]
    tok.add_tokens([AddedToken(c, normalized=False) for c in codes])
    tok.add_special_tokens([AddedToken(t, normalized=False) for t in (eos, unk, pad)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        builder_pieces_not_in_vocab=lacking,
        unk_token=unk,
        eos_token=eos,
        pad_token=pad,
        model_max_length=int(settings.get("model_max_length") or 512),
        model_input_names=["input_ids", "attention_mask"],
    )
