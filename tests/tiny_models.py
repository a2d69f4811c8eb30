"""Tiny random models with real tokenizers, one folder per architecture and task head, saved as transformers
would. The heads come from builder's task registry. Tokenizers of the kinds the real checkpoints use: WordPiece
(BERT, DistilBERT, MPNet's specials), byte-level BPE (RoBERTa, ModernBERT's specials), and a SentencePiece-style
Unigram with Metaspace (DeBERTa-v3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoConfig, PreTrainedTokenizerFast

from builder.tasks import TASKS

CORPUS = [
    "George Washington was the first president of the United States.",
    "Apple Inc. is headquartered in Cupertino, California.",
    "The quick brown fox jumps over the lazy dog.",
    "Paris is the capital and largest city of France.",
    "I absolutely loved this film; the acting was superb.",
    "Terrible service. I will never come back here again!",
    "Café naïve résumé: accents, ümlauts, and emoji.",
    "Who was the first president? Where is Apple headquartered? What is the capital?",
    "This example is about politics, sports, cooking, travel and science.",
] * 3

HEADS = {name: task.head for name, task in TASKS.items()}
NLI = ["entailment", "neutral", "contradiction"]
LABELS = {
    "text-classification": ["NEGATIVE", "NEUTRAL", "POSITIVE"],
    "token-classification": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"],
    "zero-shot-classification": NLI,
}
MAX_POSITIONS = 128
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # MPNet's too: pad id 1, as its config says


def _words_and_chars(
    normalizer: normalizers.Normalizer, pre: pre_tokenizers.PreTokenizer
) -> tuple[list, list]:
    words = sorted({w for text in CORPUS for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(text))})
    chars = sorted(
        {c for text in CORPUS for c in normalizer.normalize_str(text) if not c.isspace()}
        | set("abcdefghijklmnopqrstuvwxyz0123456789")
    )
    return words, chars


def wordpiece_tokenizer(lowercase: bool = True, specials: list[str] = BERT_SPECIALS) -> Tokenizer:
    """A WordPiece vocabulary made directly (the trainer is not deterministic across processes): the corpus's
    words, and every character alone and as a ##continuation, so unseen words split into real subwords.
    specials: [pad, unk, cls, sep, mask] in the checkpoint's order."""
    normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    pre = pre_tokenizers.BertPreTokenizer()
    words, chars = _words_and_chars(normalizer, pre)
    tokens = specials + chars + [f"##{c}" for c in chars] + [w for w in words if w not in chars]
    unk, cls_token, sep = _role(specials, "unk"), _role(specials, "cls"), _role(specials, "sep")
    tok = Tokenizer(models.WordPiece(vocab={t: i for i, t in enumerate(tokens)}, unk_token=unk))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.WordPiece()
    cls, sep_id = tok.token_to_id(cls_token), tok.token_to_id(sep)
    pair = (
        f"{cls_token} $A {sep} $B:1 {sep}:1"
        if specials == BERT_SPECIALS
        else f"{cls_token} $A {sep} {sep} $B {sep}"
    )
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls_token} $A {sep}", pair=pair, special_tokens=[(cls_token, cls), (sep, sep_id)]
    )
    return tok


def unigram_tokenizer() -> Tokenizer:
    """SentencePiece-style (DeBERTa-v3): a Unigram vocabulary with ▁-prefixed word pieces and characters,
    Metaspace pre-tokenizer and decoder, [CLS] A [SEP] B [SEP] with token types."""
    normalizer = normalizers.NFKC()
    pre = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    words, chars = _words_and_chars(normalizer, pre)
    pieces = [(t, 0.0) for t in BERT_SPECIALS]
    pieces += [(w, -float(len(w))) for w in words if len(w) > 1]
    pieces += [(c, -20.0) for c in chars if c != "▁"] + [("▁", -5.0)]
    tok = Tokenizer(models.Unigram(pieces, unk_id=1, byte_fallback=False))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return tok


def trained_bpe(specials: list[str], vocab_size: int) -> Tokenizer:
    """Byte-level BPE trained on the corpus (deterministic for a fixed corpus and specials)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    return tok


def bpe_tokenizer(specials: list[str] = ROBERTA_SPECIALS) -> Tokenizer:
    tok = trained_bpe(specials, 400)
    if specials == ROBERTA_SPECIALS:
        tok.post_processor = processors.RobertaProcessing(
            ("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False
        )
    else:  # ModernBERT: [CLS] A [SEP] B [SEP], byte-level offsets trimmed
        cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.Sequence(
            [
                processors.ByteLevel(trim_offsets=True),
                processors.TemplateProcessing(
                    single="[CLS] $A [SEP]",
                    pair="[CLS] $A [SEP] $B [SEP]",
                    special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
                ),
            ]
        )
    return tok


def _role(specials: list[str], role: str) -> str:
    return dict(zip(("pad", "unk", "cls", "sep", "mask"), specials, strict=True))[role]


TOKENIZERS = {  # model type -> (make the tokenizer, its specials, the inputs its checkpoints' tokenizers return)
    "bert": (wordpiece_tokenizer, BERT_SPECIALS, ["input_ids", "token_type_ids", "attention_mask"]),
    "distilbert": (wordpiece_tokenizer, BERT_SPECIALS, ["input_ids", "attention_mask"]),
    "roberta": (bpe_tokenizer, ROBERTA_SPECIALS, ["input_ids", "attention_mask"]),
    "deberta-v2": (unigram_tokenizer, BERT_SPECIALS, ["input_ids", "token_type_ids", "attention_mask"]),
    "mpnet": (
        lambda: wordpiece_tokenizer(specials=ROBERTA_SPECIALS),
        ROBERTA_SPECIALS,
        ["input_ids", "attention_mask"],
    ),
    "modernbert": (lambda: bpe_tokenizer(BERT_SPECIALS), BERT_SPECIALS, ["input_ids", "attention_mask"]),
}


def make_tokenizer(model_type: str) -> PreTrainedTokenizerFast:
    make, specials, names = TOKENIZERS[model_type]
    roles = dict(
        zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"), specials, strict=True)
    )
    if specials == ROBERTA_SPECIALS:
        roles |= {"bos_token": "<s>", "eos_token": "</s>"}
    return PreTrainedTokenizerFast(
        tokenizer_object=make(), model_max_length=MAX_POSITIONS, model_input_names=names, **roles
    )


def config_for(model_type: str, task: str, tok: PreTrainedTokenizerFast, labels: list[str] | None = None):  # type: ignore[no-untyped-def]
    common = dict(vocab_size=tok.backend_tokenizer.get_vocab_size(), initializer_range=0.2)
    layers = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    pad = tok.pad_token_id
    if model_type == "distilbert":
        kw = dict(
            dim=32,
            n_layers=2,
            n_heads=4,
            hidden_dim=64,
            max_position_embeddings=MAX_POSITIONS,
            pad_token_id=pad,
        )
    elif model_type == "roberta":
        kw = layers | dict(
            max_position_embeddings=MAX_POSITIONS + 2,
            pad_token_id=pad,
            bos_token_id=0,
            eos_token_id=2,
            type_vocab_size=1,
        )
    elif model_type == "deberta-v2":
        # DeBERTa-v3's layout: relative attention, no absolute positions or token types
        kw = layers | dict(
            max_position_embeddings=MAX_POSITIONS,
            relative_attention=True,
            position_buckets=16,
            norm_rel_ebd="layer_norm",
            share_att_key=True,
            pos_att_type=["p2c", "c2p"],
            position_biased_input=False,
            type_vocab_size=0,
            max_relative_positions=-1,
            pad_token_id=pad,
        )
    elif model_type == "mpnet":
        kw = layers | dict(
            max_position_embeddings=MAX_POSITIONS + 2, pad_token_id=pad, bos_token_id=0, eos_token_id=2
        )
    elif model_type == "modernbert":  # 3 layers: two local (sliding window) and one global attention layer
        kw = layers | dict(
            num_hidden_layers=3,
            max_position_embeddings=MAX_POSITIONS,
            global_attn_every_n_layers=3,
            local_attention=8,
            pad_token_id=pad,
            cls_token_id=tok.cls_token_id,
            sep_token_id=tok.sep_token_id,
            bos_token_id=tok.cls_token_id,
            eos_token_id=tok.sep_token_id,
        )
    else:
        kw = layers | dict(max_position_embeddings=MAX_POSITIONS, pad_token_id=pad)
    labels = labels or LABELS.get(task)
    if labels:
        kw |= dict(id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)})
    return AutoConfig.for_model(model_type, **common, **kw)


def make_model(
    root: Path, model_type: str, task: str, labels: list[str] | None = None, name: str = ""
) -> Path:
    folder = root / (name or f"tiny-{model_type}-{task}")
    tok = make_tokenizer(model_type)
    torch.manual_seed(0)
    cls = getattr(transformers, HEADS[task])
    model = cls.from_config(config_for(model_type, task, tok, labels))
    model.eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


# ------------------------------------------------------------------------------------------------- decoders

DECODERS = ("gpt2", "llama", "qwen2", "qwen3", "mistral", "phi3")
TRAIN_STEPS = 200
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def decoder_tokenizer(bos: bool) -> PreTrainedTokenizerFast:
    """Byte-level BPE as GPT-2, Qwen and SmolLM ship it; with bos=True a leading <s> as Llama's tokenizers add."""
    tok = trained_bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<s>"], 420)
    if bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=MAX_POSITIONS,
        bos_token="<s>" if bos else "<|endoftext|>",
        eos_token="<|im_end|>" if bos else "<|endoftext|>",
        model_input_names=["input_ids", "attention_mask"],
        chat_template=CHATML,
    )


def decoder_config(model_type: str, tok: PreTrainedTokenizerFast):  # type: ignore[no-untyped-def]
    ids = dict(
        vocab_size=tok.backend_tokenizer.get_vocab_size(),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=None,  # as GPT-2, Llama and SmolLM ship (Phi-3's default 32000 is outside this vocabulary)
        initializer_range=0.2,
    )
    # Heads of 16: ONNX Runtime's GroupQueryAttention takes head sizes in multiples of 16.
    if model_type == "gpt2":
        return AutoConfig.for_model("gpt2", n_embd=32, n_layer=2, n_head=2, n_positions=MAX_POSITIONS, **ids)
    layers = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    # grouped-query attention: 1 key/value head for 2 query heads; Qwen3 and Phi-3 2 for 4, their head size set
    # apart from hidden / heads (Phi-3 at 2 heads, trained as the others, kept 79.5% of PyTorch's top-1 tokens
    # under int4 blocks of 32, below the int4 gate's 0.8)
    four = {"num_attention_heads": 4, "head_dim": 16, "num_key_value_heads": 2}
    heads = four if model_type in ("qwen3", "phi3") else {}
    return AutoConfig.for_model(
        model_type,
        **{**layers, "num_key_value_heads": 1, **heads},
        max_position_embeddings=MAX_POSITIONS,
        **ids,
    )


def make_decoder(root: Path, model_type: str, name: str = "", steps: int = TRAIN_STEPS) -> Path:
    """A tiny decoder trained `steps` steps on the corpus: random weights leave top-1/top-2 logit margins of
    ~0.01, where any int8 rounding flips the next token; trained ones have real margins (and still answer
    through every code path the same way)."""
    folder = root / (name or f"tiny-{model_type}-text-generation")
    tok = decoder_tokenizer(bos=model_type != "gpt2")
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(decoder_config(model_type, tok))
    if steps:
        train(model, tok, steps)
    model.eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def train(model: torch.nn.Module, tok: PreTrainedTokenizerFast, steps: int) -> None:
    """The corpus and the task's built-in prompts (what fidelity reads the model on), next-token loss."""
    from builder.tasks.text_generation import PROMPTS

    texts = sorted(set(CORPUS)) + PROMPTS
    batch = [tok(t)["input_ids"] for t in texts]
    longest = max(len(b) for b in batch)
    ids = torch.tensor([b + [tok.eos_token_id] * (longest - len(b)) for b in batch])
    mask = torch.tensor([[1] * len(b) + [0] * (longest - len(b)) for b in batch])
    labels = ids.masked_fill(mask == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def sentence_transformers_folder(source: Path, folder: Path, pooling: str, max_seq_length: int) -> Path:
    """The tiny model as a sentence-transformers checkpoint: Transformer, Pooling, Normalize (as all-mpnet-base-v2
    and gte-modernbert-base ship), the pooling module in a folder that modules.json names."""
    shutil.copytree(source, folder)
    hidden = json.loads((source / "config.json").read_text())["hidden_size"]
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length}))
    (folder / "pooling").mkdir()
    (folder / "pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": hidden,
                "pooling_mode_cls_token": pooling == "cls",
                "pooling_mode_mean_tokens": pooling == "mean",
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
            }
        )
    )
    (folder / "2_Normalize").mkdir()
    return folder


# -------------------------------------------------------------------------------------------- encoder-decoders

SEQ2SEQ = ("t5", "bart")
T5_SPECIALS = ["<pad>", "</s>", "<unk>"]


def seq2seq_tokenizer(model_type: str) -> PreTrainedTokenizerFast:
    """T5's kind (SentencePiece-style Unigram, `text </s>`, pad 0 eos 1; mT5's too), BART's (byte-level BPE,
    `<s> text </s>`, bos 0 pad 1 eos 2) or mBART's (Unigram, `text </s> en_XX`, its 25 language codes)."""
    if model_type == "mbart":
        from transformers import MBartTokenizer

        pre = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        words, chars = _words_and_chars(normalizers.NFKC(), pre)
        pieces = [(t, 0.0) for t in ("<s>", "<pad>", "</s>", "<unk>")]
        pieces += [(w, -float(len(w))) for w in words if len(w) > 1] + [(c, -20.0) for c in chars if c != "▁"]
        return MBartTokenizer(vocab=[*pieces, ("▁", -5.0)], src_lang="en_XX", model_max_length=MAX_POSITIONS)
    if model_type == "bart":
        return PreTrainedTokenizerFast(
            tokenizer_object=bpe_tokenizer(), model_max_length=MAX_POSITIONS, bos_token="<s>", pad_token="<pad>",
            eos_token="</s>", unk_token="<unk>", mask_token="<mask>", model_input_names=["input_ids", "attention_mask"],
        )  # fmt: skip
    normalizer = normalizers.NFKC()
    pre = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    words, chars = _words_and_chars(normalizer, pre)
    pieces = [(t, 0.0) for t in T5_SPECIALS] + [(w, -float(len(w))) for w in words if len(w) > 1]
    pieces += [(c, -20.0) for c in chars if c != "▁"] + [("▁", -5.0)]
    tok = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, model_max_length=MAX_POSITIONS, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
        model_input_names=["input_ids", "attention_mask"],
    )  # fmt: skip


def marian_tokenizer(folder: Path):  # type: ignore[no-untyped-def]
    """Marian's kind: SentencePiece Unigram models for each side (source.spm, target.spm; the target's trained on
    other text, so some pieces are the target's only) and one vocab.json over both (</s> 0, <unk> 1, <pad> last);
    no fast version. Trained here on the pairs' texts (one thread: the same files every run)."""
    import sentencepiece as spm
    from transformers import MarianTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    pairs = seq2seq_pairs()
    sides = {
        "source": [s for s, _ in pairs],
        "target": [t for _, t in pairs] + ["Ich bin ein kleiner Frosch."],
    }
    vocab: dict[str, int] = {}
    for side, texts in sides.items():
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_prefix=str(folder / side), vocab_size=120, model_type="unigram",
            character_coverage=1.0, pad_id=-1, bos_id=-1, eos_id=0, unk_id=1, hard_vocab_limit=False,
            num_threads=1, minloglevel=2,
        )  # fmt: skip
        (folder / f"{side}.model").replace(folder / f"{side}.spm")
        (folder / f"{side}.vocab").unlink()
        sp = spm.SentencePieceProcessor(model_file=str(folder / f"{side}.spm"))
        for i in range(sp.get_piece_size()):
            vocab.setdefault(sp.id_to_piece(i), len(vocab))
    vocab["<pad>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    return MarianTokenizer(
        str(folder / "source.spm"), str(folder / "target.spm"), str(folder / "vocab.json"),
        model_max_length=MAX_POSITIONS,
    )  # fmt: skip


def seq2seq_config(model_type: str, tok: PreTrainedTokenizerFast):  # type: ignore[no-untyped-def]
    if (
        model_type == "marian"
    ):  # opus-mt's settings: start from <pad>, never generate it, sinusoidal positions
        pad = tok.pad_token_id
        return AutoConfig.for_model(
            "marian", vocab_size=len(tok), decoder_vocab_size=len(tok), d_model=32, encoder_layers=2,
            decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
            decoder_ffn_dim=64, max_position_embeddings=MAX_POSITIONS, pad_token_id=pad, eos_token_id=0,
            decoder_start_token_id=pad, bad_words_ids=[[pad]], scale_embedding=True, init_std=0.2,
        )  # fmt: skip
    vocab = tok.backend_tokenizer.get_vocab_size()
    if model_type == "mbart":
        return AutoConfig.for_model(
            "mbart", vocab_size=len(tok), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=MAX_POSITIONS,
            pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, init_std=0.2,
        )  # fmt: skip
    if model_type in ("t5", "mt5"):  # with T5's task prefixes and search settings (task_specific_params)
        return AutoConfig.for_model(
            model_type, vocab_size=vocab, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
            relative_attention_num_buckets=8, relative_attention_max_distance=32, pad_token_id=0, eos_token_id=1,
            decoder_start_token_id=0, initializer_range=0.2,
            task_specific_params={
                "summarization": {"prefix": "summarize: ", "num_beams": 2, "no_repeat_ngram_size": 3},
                "translation_en_to_de": {"prefix": "translate English to German: ", "num_beams": 3},
            },
        )  # fmt: skip
    return AutoConfig.for_model(
        "bart", vocab_size=vocab, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=MAX_POSITIONS,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=2,
        forced_bos_token_id=0, init_std=0.2,
    )  # fmt: skip


def seq2seq_pairs() -> list[tuple[str, str]]:
    """What the tiny encoder-decoders learn: each sentence of the corpus to its words in reverse order, at most six
    (a task with real margins: random weights would flip tokens on any rounding)."""
    from builder.tasks.seq2seq import INPUTS

    texts = sorted(set(CORPUS)) + INPUTS
    return [(t, " ".join(t.split()[::-1][:6])) for t in texts]


def make_seq2seq(root: Path, model_type: str, name: str = "", steps: int = TRAIN_STEPS) -> Path:
    folder = root / (name or f"tiny-{model_type}-seq2seq")
    tok = marian_tokenizer(folder) if model_type == "marian" else seq2seq_tokenizer(model_type)
    torch.manual_seed(0)
    model = transformers.AutoModelForSeq2SeqLM.from_config(seq2seq_config(model_type, tok))
    if model_type == "marian":
        model.generation_config.bad_words_ids = [[tok.pad_token_id]]
    if steps:
        pairs = seq2seq_pairs()
        enc = tok([s for s, _ in pairs], padding=True, return_tensors="pt")
        target = (
            {"text_target": [t for _, t in pairs]}
            if model_type == "marian"
            else {"text": [t for _, t in pairs]}
        )
        labels = tok(**target, padding=True, return_tensors="pt")["input_ids"]
        labels = labels.masked_fill(labels == tok.pad_token_id, -100)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        model.train()
        for _ in range(steps):
            loss = model(**enc, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
