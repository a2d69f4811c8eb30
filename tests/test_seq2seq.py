"""Sequence-to-sequence bundles (T5, BART): an encoder graph and a decoder with a key/value cache in Optimum's file
layout and names, and text2text-generation, summarization and translation pipelines whose greedy and beam search
answer token for token as transformers' generate() does, with the task settings its pipelines apply."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import (
    build_fp16_for_cuda,
    bundles_in,
    float_types,
    is_cache,
    read_json,
    run_builder,
    run_without_build_packages,
)
from tiny_models import SEQ2SEQ

import builder

sys.path.insert(0, str(Path(__file__).parent / "golden"))
from seq2seq_cases import CASES  # noqa: E402

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A",
    "Paris is the capital and largest city of France.",
    "Café naïve résumé 🙂 — 日本語:",
]
SEARCHES = [  # greedy, the pipeline's default beams, and beam search with its settings
    {"num_beams": 1, "max_new_tokens": 10},
    {"max_new_tokens": 10},
    {
        "num_beams": 4,
        "length_penalty": 2.0,
        "no_repeat_ngram_size": 2,
        "early_stopping": True,
        "max_new_tokens": 12,
    },
    {"num_beams": 3, "num_return_sequences": 2, "max_new_tokens": 8, "min_length": 5},
    {
        "num_beams": 2,
        "early_stopping": "never",
        "length_penalty": 0.5,
        "repetition_penalty": 1.3,
        "max_new_tokens": 8,
    },
]


def _build(source: Path, out: Path, task: str, *extra: str) -> Path:
    return builder.build(
        overrides=[f"model.source={source}", f"task={task}", "quantization=none", "evaluation=none",
                   "benchmark=none", f"output_dir={out}", *extra],
        quiet=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def bundles(tiny_seq2seq: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("seq2seq")
    return {arch: _build(tiny_seq2seq[arch], out, "summarization") for arch in SEQ2SEQ}


def _expected(
    source: Path, text: str, prefix: str, settings: dict, src_lang: str | None = None
) -> list[list[int]]:
    """transformers' generate() with the pipeline's settings: its defaults (256 new tokens, 4 beams) under the
    model's generation config, the task's params over them, the call's over all."""
    import torch
    import transformers

    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(source).eval()
    tok = transformers.AutoTokenizer.from_pretrained(source)
    if src_lang:
        tok.src_lang = src_lang
    with torch.no_grad():
        out = model.generate(**tok([prefix + text], return_tensors="pt"), **settings)
    eos, pad = model.generation_config.eos_token_id, model.generation_config.pad_token_id
    rows = []
    for row in (
        r[1:].tolist() for r in out
    ):  # without the decoder start token; to the first eos, which it keeps
        if eos in row:
            rows.append(row[: row.index(eos) + 1])
        else:  # cut short by the budget: shorter rows are filled (with pad, or eos when pad is 0)
            rows.append(row[: len(row) - next((i for i, t in enumerate(reversed(row)) if t != pad), 0)])
    return rows


def test_three_graphs_in_optimum_names(bundles: dict) -> None:
    for arch, folder in bundles.items():
        manifest = builder.verify(folder)
        graphs = manifest["runtime"]["graphs"]
        assert set(graphs) == {"encoder_model", "decoder_model", "decoder_with_past_model"}
        layers = manifest["runtime"]["options"]["num_layers"]
        own = [f"present.{i}.decoder.{kv}" for i in range(layers) for kv in ("key", "value")]
        cross = [n.replace("decoder", "encoder") for n in own]
        assert graphs["encoder_model"]["inputs"] == ["input_ids", "attention_mask"]
        assert graphs["encoder_model"]["outputs"] == ["last_hidden_state"]
        assert graphs["decoder_model"]["inputs"] == [
            "input_ids",
            "encoder_attention_mask",
            "encoder_hidden_states",
        ]
        assert set(graphs["decoder_model"]["outputs"]) == {"logits", *own, *cross}
        past = [n.replace("present", "past_key_values") for n in graphs["decoder_model"]["outputs"][1:]]
        assert graphs["decoder_with_past_model"]["inputs"] == ["input_ids", "encoder_attention_mask", *past]
        assert graphs["decoder_with_past_model"]["outputs"] == ["logits", *own]
        for role in graphs:
            assert (folder / f"{role}.onnx").is_file() and f"{role}.onnx" in manifest["files"]
        dims = {
            i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
            for i in onnx.load(str(folder / "decoder_with_past_model.onnx")).graph.input
        }
        assert dims["past_key_values.0.decoder.key"][2] == "past_decoder_sequence_length"
        assert dims["past_key_values.0.encoder.key"][2] == "encoder_sequence_length"
        metrics = read_json(folder / "metrics.json")
        assert metrics["fidelity"]["passed"] and metrics["fidelity"]["generation"]["greedy_match"] == 1.0, (
            arch
        )
        # the weights in one data file, each once: the decoder files (and a tied embedding) share theirs
        refs: dict[str, set] = {}
        for role in graphs:
            for tensor in onnx.load(str(folder / f"{role}.onnx"), load_external_data=False).graph.initializer:
                info = {e.key: e.value for e in tensor.external_data}
                if info:
                    assert info["location"] == "model.onnx_data"
                    refs.setdefault(role, set()).add((int(info["offset"]), int(info["length"])))
        data = (folder / "model.onnx_data").stat().st_size
        assert data == sum(length for _, length in set().union(*refs.values()))
        assert len(refs["decoder_model"] & refs["decoder_with_past_model"]) >= 4 * layers
        assert sum(length for r in refs.values() for _, length in r) > 1.5 * data
        graph_files = [f for f in manifest["files"] if f.endswith((".onnx", ".onnx_data"))]
        assert metrics["size"]["bundle_model_bytes"] == sum((folder / f).stat().st_size for f in graph_files)


@pytest.mark.parametrize("arch", SEQ2SEQ)
def test_search_equals_transformers_generate(bundles: dict, tiny_seq2seq: dict, arch: str) -> None:
    """Every search and its settings, on short, one-token and unicode inputs: the same texts and token ids."""
    bundle = builder.load(bundles[arch])
    options = bundle.engine.options
    for kwargs in SEARCHES:
        for text in TEXTS:
            settings = {"max_new_tokens": 256, "num_beams": 4, **options["generation"], **kwargs}
            want = _expected(tiny_seq2seq[arch], text, options["prefix"], settings)
            assert bundle.pipeline.generate_ids([text], bundle.pipeline.settings(kwargs)) == want, (
                kwargs,
                text,
            )
            got = bundle(text, return_tensors=True, **kwargs)
            assert [r["summary_token_ids"][1:] for r in got] == want
        texts = bundle(TEXTS, **kwargs)
        alone = [bundle(t, **kwargs) for t in TEXTS]
        assert texts == ([a[0] for a in alone] if kwargs.get("num_return_sequences", 1) == 1 else alone)


def test_the_task_settings_come_from_task_specific_params(tiny_seq2seq: dict, tmp_path: Path) -> None:
    """T5's "summarize: " prefix and search settings for summarization, the en-de entry for translation; a BART
    without task params takes the pipeline's defaults and its own generation config (forced eos)."""
    t5 = builder.load(_build(tiny_seq2seq["t5"], tmp_path, "summarization"))
    assert t5.engine.options["prefix"] == "summarize: "
    s = t5.pipeline.settings({})
    assert (s["num_beams"], s["no_repeat_ngram_size"], s["max_new_tokens"]) == (2, 3, 256)
    translator = builder.load(
        _build(tiny_seq2seq["t5"], tmp_path, "translation", "task.src_lang=en", "task.tgt_lang=de")
    )
    assert translator.engine.options["prefix"] == "translate English to German: "
    assert translator.pipeline.settings({})["num_beams"] == 3
    out = translator(TEXTS[0], num_beams=1, max_new_tokens=6)
    assert list(out[0]) == ["translation_text"]
    with pytest.raises(ValueError, match="this bundle translates en to de"):
        translator(TEXTS[0], src_lang="fr")
    plain = builder.load(_build(tiny_seq2seq["t5"], tmp_path, "text2text-generation"))
    assert plain.engine.options["prefix"] == "" and plain.pipeline.settings({})["num_beams"] == 4
    assert list(plain(TEXTS[0], num_beams=1, max_new_tokens=4)[0]) == ["generated_text"]
    bart = builder.load(_build(tiny_seq2seq["bart"], tmp_path, "text2text-generation"))
    s = bart.pipeline.settings({})
    assert (s["forced_eos_token_id"], s["num_beams"], s["max_new_tokens"]) == (2, 4, 256)


def test_output_shapes_and_long_inputs(bundles: dict) -> None:
    bundle = builder.load(bundles["bart"])
    one = bundle(TEXTS[0], num_beams=1, max_new_tokens=5)
    assert isinstance(one, list) and len(one) == 1 and isinstance(one[0]["summary_text"], str)
    several = bundle(TEXTS[:2], num_beams=2, num_return_sequences=2, max_new_tokens=5)
    assert [len(r) for r in several] == [2, 2]
    assert bundle([], num_beams=1) == []
    long = " ".join(["George Washington was the first president of the United States."] * 20)
    with pytest.raises(ValueError, match="truncation=True"):
        bundle(long, num_beams=1, max_new_tokens=4)
    assert bundle(long, truncation=True, num_beams=1, max_new_tokens=4)[0]["summary_text"]
    with pytest.raises(ValueError, match="num_return_sequences=3 > num_beams=2"):
        bundle(TEXTS[0], num_beams=2, num_return_sequences=3)
    with pytest.raises(ValueError, match="must be a text or a list of texts"):
        bundle(None)


@pytest.mark.parametrize("method", ["dynamic", "int4"])
def test_quantized_graphs_measured_against_pytorch(tiny_seq2seq: dict, tmp_path: Path, method: str) -> None:
    """int8 and int4 on every graph, each compared with PyTorch on the built-in inputs run as the runtime runs them
    (PyTorch's own encoder output and first-step cache feed the decoders); int8 keeps the trained model's greedy
    tokens."""
    folder = builder.build(
        overrides=[f"model.source={tiny_seq2seq['t5']}", "task=summarization", f"quantization={method}",
                   "evaluation=none", "benchmark=none", f"output_dir={tmp_path}"],
        quiet=True,
    )  # fmt: skip
    metrics = read_json(folder / "metrics.json")
    # smaller than the fp32 weights stored once (a tiny model: graph structure and small tensors are much of it)
    assert metrics["fidelity"]["passed"] and metrics["size"]["ratio_to_fp32"] < 0.9
    compared = metrics["fidelity"]["outputs"]
    assert {"decoder_model.logits", "decoder_with_past_model.logits"} <= set(compared)
    if method == "dynamic":
        assert metrics["fidelity"]["generation"]["greedy_match"] == 1.0
    quantized = {"dynamic": {"MatMulInteger", "DynamicQuantizeMatMul"}, "int4": {"MatMulNBits"}}[method]
    for role in ("encoder_model", "decoder_model", "decoder_with_past_model"):
        ops = {n.op_type for n in onnx.load(str(folder / f"{role}.onnx")).graph.node}
        assert ops & quantized, (role, ops)


def test_fp16_for_cuda_on_every_graph(tiny_seq2seq: dict, bundles: dict, tmp_path: Path) -> None:
    """hardware=cuda optimization=O4: every graph's weights in float16, and the key/value caches (the decoders' past
    inputs and present outputs) in float16 too, so a step feeds back what the last one gave; every other input and
    output stays float32. On this CPU host the graphs still run and keep the fp32 bundle's greedy and beam-search
    tokens on the trained model."""
    folder = build_fp16_for_cuda(tiny_seq2seq["bart"], "summarization", tmp_path)
    for role in ("encoder_model", "decoder_model", "decoder_with_past_model"):
        graph = onnx.load(str(folder / f"{role}.onnx"), load_external_data=False).graph
        weights, io = float_types(graph)
        assert weights == {onnx.TensorProto.FLOAT16}, role
        half = {name for name, t in io.items() if t == onnx.TensorProto.FLOAT16}
        assert half == {name for name in io if is_cache(name)}, (role, io)
        assert role == "encoder_model" or half, role
    assert read_json(folder / "metrics.json")["fidelity"]["generation"]["greedy_match"] == 1.0
    fp16, fp32 = builder.load(folder), builder.load(bundles["bart"])
    for kwargs in SEARCHES[:3]:
        assert fp16(TEXTS, **kwargs) == fp32(TEXTS, **kwargs), kwargs


def test_the_io_binding_path_keeps_the_caches_and_the_answers(bundles: dict) -> None:
    """On a GPU the engine runs through IOBinding and the decoders' caches stay the session's OrtValues on the
    device, bound back as the next step's past (beam search gathers their rows). The same code runs here with host
    memory as the device: the caches are OrtValues between steps, and every search answers as session.run does."""
    from builder.runtime.pipelines.text2text_generation import Seq2SeqSteps

    for arch in ("bart", "t5"):
        plain_run, bound = builder.load(bundles[arch]), builder.load(bundles[arch])
        bound.engine.io_binding = True
        for kwargs in SEARCHES:
            assert bound(TEXTS, **kwargs) == plain_run(TEXTS, **kwargs), (arch, kwargs)
        gen = bound.pipeline
        steps = Seq2SeqSteps(gen, [gen.tok.base.encode(t).ids for t in TEXTS[:2]])
        steps.first()
        steps.next(np.array([5, 6]))
        steps.reorder(np.array([1, 1]))
        assert all(not isinstance(v, np.ndarray) for v in steps.own + steps.cross), arch


def test_runs_without_build_time_packages(bundles: dict) -> None:
    run_without_build_packages(
        "import builder\n"
        f"b = builder.load({str(bundles['t5'])!r})\n"
        "out = b(['The quick brown fox jumps over the lazy dog.', 'A'], num_beams=2, max_new_tokens=6)\n"
        "assert len(out) == 2 and all(isinstance(o['summary_text'], str) for o in out), out\n"
    )


def test_unknown_languages_are_refused_before_work(tiny_seq2seq: dict, tmp_path: Path) -> None:
    proc = run_builder(f"model.source={tiny_seq2seq['t5']}", "task=translation", "task.src_lang=en",
                       f"output_dir={tmp_path}")  # fmt: skip
    assert proc.returncode == 2 and "task.src_lang='en' without task.tgt_lang" in proc.stderr, proc.stderr


@pytest.mark.parametrize(("task", "metric"), [("summarization", "rougeL"), ("translation", "bleu")])
def test_evaluation_scores_baseline_and_bundle(
    tiny_seq2seq: dict, tmp_path: Path, task: str, metric: str
) -> None:
    """The shipped set through both pipelines, scored by builder's ROUGE or BLEU/chrF, with retention and a gate;
    the card shows the table. (The tiny model reverses words: it scores low, but the same on both sides.)"""
    langs = ["task.src_lang=en", "task.tgt_lang=de"] if task == "translation" else []
    folder = builder.build(
        overrides=[f"model.source={tiny_seq2seq['t5']}", f"task={task}", *langs, "quantization=none",
                   "benchmark=none", "evaluation.gate.max_relative_drop=0.01", f"output_dir={tmp_path}"],
        quiet=True,
    )  # fmt: skip
    ev = read_json(folder / "metrics.json")["evaluation"]
    assert ev["metric"] == metric and ev["examples"] == 24 and ev["gate"]["passed"]
    keys = {"rouge1", "rouge2", "rougeL", "rougeLsum"} if metric == "rougeL" else {"bleu", "chrf"}
    assert set(ev["bundle"]) == keys == set(ev["baseline"])
    assert ev["bundle"][metric] == pytest.approx(ev["baseline"][metric], rel=1e-6)  # fp32: the same texts
    assert ev["retention_percent"] == pytest.approx(100 * ev["bundle"][metric] / ev["baseline"][metric])
    assert f"| {metric} (primary) |" in (folder / "README.md").read_text()


def test_stream_and_predict_give_the_greedy_text(bundles: dict, tmp_path: Path) -> None:
    """stream() yields the greedy text in whole characters; `builder predict` answers lines in batches, and a
    line with "stream": true as one JSON line per piece, then the whole text."""
    import json

    bundle = builder.load(bundles["bart"])
    for text in TEXTS:
        pieces = list(bundle.pipeline.stream(text, max_new_tokens=10))
        assert "".join(pieces) == bundle(text, num_beams=1, max_new_tokens=10)[0]["summary_text"]
        assert all(p and "\ufffd" not in p[-1:] for p in pieces[:-1])
    with pytest.raises(ValueError, match="num_beams and num_return_sequences must be 1"):
        list(bundle.pipeline.stream(TEXTS[0], num_beams=2))
    lines = [
        json.dumps({"inputs": TEXTS[0], "parameters": {"num_beams": 1, "max_new_tokens": 6}}),
        json.dumps({"inputs": TEXTS[2], "parameters": {"num_beams": 1, "max_new_tokens": 6}}),
        json.dumps({"inputs": TEXTS[0], "parameters": {"stream": True, "max_new_tokens": 6}}),
    ]
    source = tmp_path / "lines.jsonl"
    source.write_text("\n".join(lines) + "\n")
    proc = run_builder("predict", str(bundles["bart"]), "--input", str(source))
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    expected = bundle(TEXTS[0], num_beams=1, max_new_tokens=6)[0]
    assert out[0] == expected and out[1] == bundle(TEXTS[2], num_beams=1, max_new_tokens=6)[0]
    assert out[-1] == expected and "".join(o["token"] for o in out[2:-1]) == expected["summary_text"]


GOLDEN_DIR = Path(__file__).parent / "golden"
GOLDEN = json.loads((GOLDEN_DIR / "seq2seq_golden.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def golden_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """The committed tiny models the goldens were made with, built for each task the cases use."""
    out = tmp_path_factory.mktemp("golden-seq2seq")
    tasks = {(task, arch) for task, arch, _, _ in CASES}
    made = {}
    for task, arch in sorted(tasks):
        name, langs = (task, [])
        if task.startswith(
            "translation_"
        ):  # transformers' translation_en_to_de: builder's task and languages
            _, src, _, tgt = task.split("_")
            name, langs = "translation", [f"task.src_lang={src}", f"task.tgt_lang={tgt}"]
        made[(task, arch)] = _build(GOLDEN_DIR / "seq2seq-models" / arch, out, name, *langs)
    return made


def test_pipelines_answer_as_transformers_457(golden_bundles: dict) -> None:
    """Every case of tests/golden/seq2seq_cases.py (greedy, 2 and 4 beams, length penalty, n-gram blocking, early
    stopping, several sequences, empty and unicode inputs, a long input truncated, batches, T5's prefixes) gives
    what transformers 4.57's summarization, translation and text2text-generation pipelines gave."""
    from builder.source import folder_hash

    for arch in ("t5", "bart", "marian"):
        assert folder_hash(GOLDEN_DIR / "seq2seq-models" / arch) == GOLDEN["model_hashes"][arch], (
            "tests/golden/seq2seq-models changed: regenerate the goldens with tests/golden/make_seq2seq_golden.py"
        )
    for (task, arch, inputs, kwargs), expected in zip(CASES, GOLDEN["cases"], strict=True):
        assert "output" in expected, expected
        assert builder.load(golden_bundles[(task, arch)])(inputs, **kwargs) == expected["output"], (
            task,
            arch,
            inputs,
        )


@pytest.mark.parametrize(
    ("arch", "task", "langs"),
    [
        pytest.param("mt5", "summarization", {}, marks=pytest.mark.slow),
        pytest.param(
            "mbart", "translation", {"src_lang": "fr_XX", "tgt_lang": "de_DE"}, marks=pytest.mark.slow
        ),
        ("marian", "translation", {}),
    ],
)
def test_mt5_mbart_and_marian_equal_transformers_generate(
    tmp_path: Path, arch: str, task: str, langs: dict
) -> None:
    """mT5 (T5's graphs, its own model type); mBART translating between two of its language codes: the source
    text ends `</s> fr_XX` and the first generated token is de_DE's code, as transformers' translation pipeline
    asks generate() (forced_bos_token_id); Marian, whose tokenizer builder converts from its SentencePiece files
    (generate() runs MarianTokenizer) and whose <pad> is never generated (bad_words_ids): the same tokens as
    generate()."""
    from tiny_models import make_seq2seq

    source = make_seq2seq(tmp_path / "src", arch, steps=50)
    bundle = builder.load(
        _build(source, tmp_path / "out", task, *(f"task.{k}={v}" for k, v in langs.items()))
    )
    options = bundle.engine.options
    if arch == "mbart":
        assert bundle.tokenizer.base.encode("The quick").tokens[-2:] == ["</s>", "fr_XX"]
        assert options["generation"]["forced_bos_token_id"] == bundle.tokenizer.base.token_to_id("de_DE")
    for kwargs in SEARCHES[:3]:
        for text in TEXTS:
            settings = {"max_new_tokens": 256, "num_beams": 4, **options["generation"], **kwargs}
            want = _expected(source, text, options["prefix"], settings, langs.get("src_lang"))
            assert bundle.pipeline.generate_ids([text], bundle.pipeline.settings(kwargs)) == want, (
                arch,
                kwargs,
                text,
            )
    if arch == "marian":  # opus-mt's generation config: start from <pad>, never generate it
        pad = bundle.tokenizer.base.token_to_id("<pad>")
        settings = bundle.pipeline.settings({})
        assert settings["bad_words_ids"] == [[pad]] and settings["decoder_start_token_id"] == pad
    if arch == "mbart":  # a language the model has no code for is refused before work
        proc = run_builder(f"model.source={source}", "task=translation", "task.src_lang=en", "task.tgt_lang=de_DE",
                           f"output_dir={tmp_path / 'refused'}")  # fmt: skip
        assert proc.returncode == 2 and "task.src_lang='en'" in proc.stderr and "de_DE" in proc.stderr, (
            proc.stderr
        )


def test_marian_tokenizer_json_encodes_and_decodes_as_marian_tokenizer(tmp_path: Path) -> None:
    """builder's tokenizer.json for a Marian model (source.spm's Unigram lattice, ids from vocab.json, the target's
    own pieces never chosen) gives MarianTokenizer's ids and texts: whitespace runs, NFKC forms (full-width,
    ligatures), characters neither SentencePiece model knows, special tokens typed in the text; any ids decode as
    it decodes them."""
    import random

    from tiny_models import marian_tokenizer
    from transformers import MarianTokenizer

    from builder.make.spm_tokenizer import marian_tokenizer as convert

    folder = tmp_path / "marian"
    marian_tokenizer(folder).save_pretrained(folder)
    reference = MarianTokenizer.from_pretrained(folder)
    fast = convert(folder, read_json(folder / "tokenizer_config.json"))
    target_only = set(reference.get_vocab()) - {reference.spm_source.id_to_piece(i)
                                                for i in range(reference.spm_source.get_piece_size())}  # fmt: skip
    assert target_only, "the fixture should have pieces only the target model has"
    texts = [*TEXTS, "", " ", "  two  spaces   ", "tab\there\nline", "Ｆｕｌｌｗｉｄｔｈ １２３", "ﬁ ½ ① ™",
             "</s> typed <pad> specials <unk>", "x" * 40, "Ich bin ein kleiner Frosch.", "Straße 日本語 ∑"]  # fmt: skip
    for text in texts:
        ids = reference(text).input_ids
        assert fast(text).input_ids == ids, text
        assert fast.decode(ids, skip_special_tokens=True) == reference.decode(ids, skip_special_tokens=True)
    rng = random.Random(0)
    for _ in range(200):
        ids = [rng.randrange(len(reference)) for _ in range(rng.randrange(1, 12))]
        assert fast.decode(ids, skip_special_tokens=True) == reference.decode(
            ids, skip_special_tokens=True
        ), ids
    assert fast.init_kwargs["builder_pieces_not_in_vocab"] == 0
    # a source piece vocab.json lacks is counted, not refused; texts that do not need it encode as before
    vocab = read_json(folder / "vocab.json")
    dropped = "▁president"  # a piece of the fixture's source model
    kept = [t for t in sorted(vocab, key=vocab.get) if t != dropped]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(kept)}), encoding="utf-8")
    fewer = convert(folder, read_json(folder / "tokenizer_config.json"))
    assert fewer.init_kwargs["builder_pieces_not_in_vocab"] == 1
    quick = "The quick brown fox"
    assert fewer.convert_ids_to_tokens(fewer(quick).input_ids) == fast.convert_ids_to_tokens(
        fast(quick).input_ids
    )
    assert dropped in fast.tokenize("the president") and dropped not in fewer.tokenize("the president")


def test_a_marian_model_without_its_sentencepiece_file_is_refused(tmp_path: Path) -> None:
    from tiny_models import make_seq2seq

    source = make_seq2seq(tmp_path / "src", "marian", steps=0)
    (source / "source.spm").unlink()
    proc = run_builder(f"model.source={source}", "task=translation", f"output_dir={tmp_path / 'out'}")
    assert (
        proc.returncode != 0
        and f"model.source={source}" in proc.stderr
        and "missing: source.spm" in proc.stderr
    )
    assert "Traceback" not in proc.stderr and not bundles_in(tmp_path / "out")
