"""Tiny random models with real (trained) tokenizers: BERT and DistilBERT with WordPiece, RoBERTa with
byte-level BPE. One folder per architecture and task head, saved as transformers would."""

from __future__ import annotations

from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoConfig, PreTrainedTokenizerFast

CORPUS = [
    "George Washington was the first president of the United States.",
    "Apple Inc. is headquartered in Cupertino, California.",
    "The quick brown fox jumps over the lazy dog.",
    "Paris is the capital and largest city of France.",
    "I absolutely loved this film; the acting was superb.",
    "Terrible service. I will never come back here again!",
    "Café naïve résumé: accents, ümlauts, and emoji.",
    "Who was the first president? Where is Apple headquartered? What is the capital?",
] * 3

HEADS = {
    "feature-extraction": "AutoModel",
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
}
LABELS = {
    "text-classification": ["NEGATIVE", "NEUTRAL", "POSITIVE"],
    "token-classification": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"],
}
MAX_POSITIONS = 128


def wordpiece_tokenizer(lowercase: bool = True) -> Tokenizer:
    """A WordPiece vocabulary made directly (the trainer is not deterministic across processes): the corpus's
    words, and every character alone and as a ##continuation, so unseen words split into real subwords."""
    normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    pre = pre_tokenizers.BertPreTokenizer()
    words = sorted({w for text in CORPUS for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(text))})
    chars = sorted(
        {c for text in CORPUS for c in normalizer.normalize_str(text) if not c.isspace()}
        | set("abcdefghijklmnopqrstuvwxyz0123456789")
    )
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens = specials + chars + [f"##{c}" for c in chars] + [w for w in words if w not in chars]
    tok = Tokenizer(models.WordPiece(vocab={t: i for i, t in enumerate(tokens)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.WordPiece()
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return tok


def bpe_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False
    )
    return tok


def wrap(tok: Tokenizer, model_type: str) -> PreTrainedTokenizerFast:
    if model_type == "roberta":
        specials = dict(
            bos_token="<s>",
            eos_token="</s>",
            sep_token="</s>",
            cls_token="<s>",
            unk_token="<unk>",
            pad_token="<pad>",
            mask_token="<mask>",
        )
        names = ["input_ids", "attention_mask"]
    else:
        specials = dict(
            unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]"
        )
        names = (
            ["input_ids", "token_type_ids", "attention_mask"]
            if model_type == "bert"
            else ["input_ids", "attention_mask"]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, model_max_length=MAX_POSITIONS, model_input_names=names, **specials
    )


def config_for(model_type: str, task: str, vocab_size: int):  # type: ignore[no-untyped-def]
    common = dict(vocab_size=vocab_size, initializer_range=0.2)
    if model_type == "distilbert":
        kw = dict(
            dim=32,
            n_layers=2,
            n_heads=4,
            hidden_dim=64,
            max_position_embeddings=MAX_POSITIONS,
            pad_token_id=0,
        )
    elif model_type == "roberta":
        kw = dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=MAX_POSITIONS + 2,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            type_vocab_size=1,
        )
    else:
        kw = dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=MAX_POSITIONS,
            pad_token_id=0,
        )
    labels = LABELS.get(task)
    if labels:
        kw |= dict(id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)})
    return AutoConfig.for_model(model_type, **common, **kw)


def make_model(root: Path, model_type: str, task: str) -> Path:
    folder = root / f"tiny-{model_type}-{task}"
    tok = wrap(bpe_tokenizer() if model_type == "roberta" else wordpiece_tokenizer(), model_type)
    torch.manual_seed(0)
    cls = getattr(transformers, HEADS[task])
    model = cls.from_config(config_for(model_type, task, tok.backend_tokenizer.get_vocab_size()))
    model.eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
