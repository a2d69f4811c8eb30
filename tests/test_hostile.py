"""What a hostile user tries, one table per surface: config, runtime, predict, tampering, faults. A new case is
one line. Each failure must be one clear message naming the key or argument, its value and what is allowed; no
traceback, no crash, nothing half-written."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import run_builder

import builder
from builder.errors import BundleIntegrityError, ConfigError

# ------------------------------------------------------------------------------------------------- config

# (overrides, what the message must say). {fe}/{tc}: the tiny BERT feature-extraction / text-classification
# models; {no_tokenizer}, {no_weights}, {bad_config}, {a_file}: broken sources made by the fixture.
CONFIG_CASES = [
    # from the issue
    (
        ["evaluation=none", "evaluation.gate.max_relative_drop=0.01"],
        ["with evaluation=none", "remove the gate"],
    ),
    (["evaluation.max_samples=1", "evaluation.gate.max_relative_drop=0.01"], ["fewer than 20 examples"]),
    (["evaluation.batch_size=0"], ["evaluation.batch_size=0"]),
    (["optimization=O4"], ["fp16 is fast on GPUs only", "hardware=cuda", "optimization=O3"]),
    (["model.source={no_tokenizer}"], ["has no tokenizer files", "tokenizer.save_pretrained"]),
    (
        ["model.source={fe}", "benchmark.batch_sizes=[1,2]", "benchmark.iterations=0"],
        ["benchmark.iterations=0"],
    ),
    # more
    (["evaluation.batch_size=-3"], ["evaluation.batch_size=-3"]),
    (["evaluation.max_samples=0"], ["evaluation.max_samples=0"]),
    (["evaluation.gate.max_relative_drop=1.5"], ["evaluation.gate.max_relative_drop=1.5", "a fraction"]),
    (["hardware=avx2", "optimization=O4"], ["optimization=O4 (fp16) with hardware=avx2"]),
    (["hardware=cuda", "quantization=dynamic"], ["dynamic int8 runs on CPUs only"]),
    (
        [
            "task=text-generation",
            "hardware=cuda",
            "optimization=O4",
            "quantization=none",
            "export.attention=fused",
        ],
        [
            "export.attention=fused with hardware=cuda",
            "refuses the attention bias",
            "export.attention=auto or plain",
        ],
    ),
    (["hardware=avx2", "quantization.activation_type=int8"], ["computes activations as uint8"]),
    (["quantization.calibration.n=0"], ["quantization.calibration.n"]),
    (["quantization.calibration.percentile=150"], ["percentile=150.0"]),
    (["quantization.weight_type=int4"], ["quantization.weight_type='int4'", "int8, uint8"]),
    (["hardware.intra_op_threads=-1"], ["hardware.intra_op_threads=-1"]),
    (["hardware.session_optimization=turbo"], ["hardware.session_optimization='turbo'"]),
    (["optimization.ort_level=2"], ["optimization.ort_level=2"]),
    (["export.opset=9"], ["export.opset=9"]),
    (["export.external_data=never"], ["export.external_data='never'", "auto, always"]),
    (["benchmark.batch_sizes=[0]"], ["benchmark.batch_sizes=[0]"]),
    (["benchmark.sequence_lengths=[-5]"], ["benchmark.sequence_lengths=[-5]"]),
    (["benchmark.new_tokens=0"], ["benchmark.new_tokens=0"]),
    (["benchmark.warmup=-1"], ["benchmark.warmup=-1"]),
    (["benchmark.max_seconds=0"], ["benchmark.max_seconds=0.0", "or null"]),
    (["fidelity.min_cosine=1.5"], ["fidelity.min_cosine"]),
    (["fidelity.min_agreement=-0.1"], ["fidelity.min_agreement"]),
    (["fidelity.greedy_tokens=0"], ["fidelity.greedy_tokens=0"]),
    (["task.pooling=median"], ["task.pooling='median'", "mean"]),
    (["task=text-generation", "quantization=static", "model.source={fe}"], ["not available for 'bert'"]),
    (["model.source=/no/such/model"], ["model.source=/no/such/model: no such folder"]),
    (["model.source={a_file}"], ["no such folder"]),
    (["model.source={no_weights}"], ["has no weights", "save_pretrained"]),
    (["model.source={bad_config}"], ["cannot read config.json"]),
    (["output_dir={a_file}/bundles"], ["output_dir=", "is a file, not a folder"]),
    (["cache_dir={a_file}/cache"], ["cache_dir=", "is a file"]),
    (["quantization.per_chanel=true"], ["quantization.per_channel?"]),
    (["benchmark.iterations=many"], ["benchmark.iterations=many: expected an integer"]),
    (["model.name=my{x}model"], ["quote the value"]),
    (["+model.colour=red"], ["model.colour"]),
    (["task.normalise=false"], ["task.normalize?"]),
    (
        ["quantization=int4", "quantization.int4.block_size=48"],
        ["quantization.int4.block_size=48", "power of two"],
    ),
    (
        ["quantization=int4", "quantization.int4.block_size=8"],
        ["quantization.int4.block_size=8", "16 to 256"],
    ),
    (
        ["quantization=int4", "quantization.int4.accuracy_level=7"],
        ["quantization.int4.accuracy_level=7", "(int8)"],
    ),
    (["quantization=int4", "quantization.op_types=[Attention]"], ["with quantization=int4", "not Attention"]),
    (
        ["quantization=int4", "export.opset=17"],
        ["export.opset=17", "Add export.opset=21"],
    ),
    (
        ["quantization=int4", "optimization=O4", "hardware=cuda"],
        ["(fp16) with quantization=int4", "pick one"],
    ),
    # sentence-transformers modules the graph would not reproduce (pooling=auto follows the model's own)
    (
        ["model.source={st_dense}"],
        ["modules.json", "sentence_transformers.models.Dense", "task.pooling=mean|cls|max"],
    ),
    (["model.source={st_lasttoken}"], ["pooling_mode_lasttoken", "task.pooling=mean|cls|max"]),
]


@pytest.fixture(scope="module")
def sources(tiny_models: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("hostile-sources")
    fe = tiny_models[("bert", "feature-extraction")]
    broken = {}
    for name, drop in (
        ("no_tokenizer", ("tokenizer.json", "tokenizer_config.json")),
        ("no_weights", ("model.safetensors",)),
    ):
        folder = root / name
        shutil.copytree(fe, folder, ignore=shutil.ignore_patterns(*drop))
        broken[name] = str(folder)
    for name, modules, modes in (
        ("st_dense", ["Transformer", "Pooling", "Dense", "Normalize"], {"pooling_mode_mean_tokens": True}),
        ("st_lasttoken", ["Transformer", "Pooling"], {"pooling_mode_lasttoken": True}),
    ):
        folder = root / name
        shutil.copytree(fe, folder)
        paths = {"Transformer": "", "Pooling": "1_Pooling"}
        listed = [{"idx": i, "name": str(i), "path": paths.get(m, f"{i}_{m}"),
                   "type": f"sentence_transformers.models.{m}"} for i, m in enumerate(modules)]  # fmt: skip
        (folder / "modules.json").write_text(json.dumps(listed))
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(
            json.dumps({"word_embedding_dimension": 32, **modes})
        )
        broken[name] = str(folder)
    (root / "bad_config").mkdir()
    (root / "bad_config" / "config.json").write_text("{not json")
    (root / "a_file").write_text("a file, not a folder")
    return {
        "fe": str(fe),
        "tc": str(tiny_models[("bert", "text-classification")]),
        "a_file": str(root / "a_file"),
        "bad_config": str(root / "bad_config"),
        **broken,
    }


def config_message(argv: list[str]) -> str:
    """What the CLI says of these overrides before any model work: its command-line checks, composition, and
    validation, in that order ('' when all pass)."""
    from builder.config import compose_config, override_problems, validate

    problems = override_problems(argv)
    if problems:
        return str(ConfigError(problems))
    try:
        validate(compose_config(argv))
    except ConfigError as e:
        return str(e)
    return ""


@pytest.mark.parametrize("overrides,needles", CONFIG_CASES, ids=[" ".join(c[0]) for c in CONFIG_CASES])
def test_config(sources: dict, tmp_path: Path, overrides: list[str], needles: list[str]) -> None:
    argv = [o.format(x="{x}", **sources) for o in overrides]
    if not any(a.startswith("output_dir=") for a in argv):
        argv.append(f"output_dir={tmp_path}")
    message = config_message(argv)
    assert message, f"{argv} was accepted"
    for needle in needles:
        assert needle.format(**sources) in message, f"{needle!r} not in:\n{message}"


# ------------------------------------------------------------------------------------------------ runtime

LONG_QUESTION = " ".join(["why"] * 200)
QA = {"context": "The cat sat on the mat."}

# (task, the call, what the message must say): each must raise ValueError (TypeError for an unknown keyword).
RUNTIME_CASES: list[tuple[str, Callable[[Any], Any], list[str]]] = [
    # from the issue
    ("feature-extraction", lambda b: b(["a", "b"], batch_size=0), ["batch_size=0"]),
    ("feature-extraction", lambda b: b(None), ["got NoneType"]),
    ("feature-extraction", lambda b: b(5), ["got int 5"]),
    ("feature-extraction", lambda b: b(b"bytes"), ["got bytes"]),
    ("feature-extraction", lambda b: b({"one": 1, "two": 2}), ["got dict"]),
    ("question-answering", lambda b: b(question="q", context="c", doc_stride=-1), ["doc_stride=-1"]),
    ("question-answering", lambda b: b(question=LONG_QUESTION, **QA), ["question of", "no room is left"]),
    (
        "question-answering",
        lambda b: b(question="q", max_seq_len=100_000, **QA),
        ["max_seq_len=100000", "128"],
    ),
    ("token-classification", lambda b: b("a b", aggregation_strategy="simple", stride=-2), ["stride=-2"]),
    (
        "token-classification",
        lambda b: b("a b", aggregation_strategy="simple", stride=10**6),
        ["stride=1000000"],
    ),
    # more
    ("feature-extraction", lambda b: b(["fine", 3]), ["a list holding int 3"]),
    ("feature-extraction", lambda b: b("a", token_features="yes"), ["token_features='yes'"]),
    ("feature-extraction", lambda b: b("a", batch_size=2.5), ["batch_size=2.5"]),
    ("feature-extraction", lambda b: b("a", batch_size=True), ["batch_size=True"]),
    ("feature-extraction", lambda b: b("a", pooling="cls"), ["pooling"]),
    ("text-classification", lambda b: b(None), ["got NoneType"]),
    ("text-classification", lambda b: b({"txt": "a"}), ["got dict"]),
    ("text-classification", lambda b: b({"text": 5}), ["got dict"]),
    ("text-classification", lambda b: b({"text": "a", "text_pair": 3}), ["text_pair=3"]),
    ("text-classification", lambda b: b("a", top_k=0), ["top_k=0"]),
    ("text-classification", lambda b: b("a", top_k="2"), ["top_k='2'"]),
    (
        "text-classification",
        lambda b: b("a", function_to_apply="relu"),
        ["function_to_apply='relu'", "softmax"],
    ),
    ("token-classification", lambda b: b(["a", None]), ["a list holding NoneType"]),
    ("token-classification", lambda b: b("a", aggregation_strategy="best"), ["aggregation_strategy='best'"]),
    ("token-classification", lambda b: b("a", ignore_labels="O"), ["ignore_labels='O'"]),
    ("question-answering", lambda b: b(question="q", context="c", top_k=0), ["top_k=0"]),
    ("question-answering", lambda b: b(question="q", context="c", max_answer_len=0), ["max_answer_len=0"]),
    ("question-answering", lambda b: b(question=5, context="c"), ["question=5"]),
    ("question-answering", lambda b: b({"question": "q", "context": 7}), ["context=7"]),
    ("question-answering", lambda b: b("just a text"), ["needs a question and a context"]),
    (
        "question-answering",
        lambda b: b(question="q", context="c", handle_impossible_answer="yes"),
        ["true or false"],
    ),
    (
        "question-answering",
        lambda b: b(question="a b c d e f", max_seq_len=16, doc_stride=12, **QA),
        ["doc_stride=12"],
    ),
]


@pytest.mark.parametrize(
    "task,call,needles", RUNTIME_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(RUNTIME_CASES)]
)
def test_runtime(bert_bundles: dict, task: str, call: Callable, needles: list[str]) -> None:
    bundle = builder.load(bert_bundles[task])
    with pytest.raises((ValueError, TypeError)) as caught:
        call(bundle)
    for needle in needles:
        assert needle in str(caught.value), f"{needle!r} not in: {caught.value}"


# ------------------------------------------------------------------------------------------------ predict

# (task, one input line, what its stderr line must say). All lines of a task go through one `builder predict`;
# a good line follows each table, and must still be answered.
PREDICT_CASES = [
    # from the issue
    ("feature-extraction", b'{"inputs": ["a", "b"], "parameters": {"batch_size": 0}}', "batch_size=0"),
    ("feature-extraction", b"\xff\xfe not utf-8", "not valid UTF-8"),
    ("question-answering", b'{"question": "q", "context": "c d", "doc_stride": -1}', "doc_stride=-1"),
    ("question-answering", json.dumps({"question": LONG_QUESTION, **QA}).encode(), "no room is left"),
    ("question-answering", b'{"question": "q", "context": "c", "max_seq_len": 999999}', "max_seq_len=999999"),
    ("question-answering", b'"a plain text"', "needs a question and a context"),
    (
        "token-classification",
        b'{"inputs": "a", "parameters": {"aggregation_strategy": "simple", "stride": -1}}',
        "stride=-1",
    ),
    (
        "token-classification",
        b'{"inputs": "a", "parameters": {"aggregation_strategy": "simple", "stride": 4096}}',
        "stride=4096",
    ),
    # more
    ("feature-extraction", b"not json", "not valid JSON"),
    ("feature-extraction", b"null", "got NoneType"),
    ("feature-extraction", b"123", "got int"),
    ("feature-extraction", b"[1, 2]", "a list holding int"),
    ("feature-extraction", b'{"inputs": "a", "parameters": [1]}', '"parameters" must be an object'),
    ("feature-extraction", b'{"inputs": "a", "parameters": {"nope": 1}}', "nope"),
    ("feature-extraction", b'{"inputs": ["a", {"b": 1}]}', "a list holding dict"),
    ("feature-extraction", b'{"inputs": "a", "parameters": {"batch_size": "8"}}', "batch_size='8'"),
    ("text-classification", b'{"text": 5}', "got dict"),
    ("text-classification", b'{"inputs": "a", "parameters": {"top_k": -1}}', "top_k=-1"),
    (
        "text-classification",
        b'{"inputs": "a", "parameters": {"function_to_apply": 3}}',
        "function_to_apply=3",
    ),
    ("text-classification", b"\x00\x01", "not valid JSON"),
    (
        "token-classification",
        b'{"inputs": "a", "parameters": {"aggregation_strategy": 1}}',
        "aggregation_strategy=1",
    ),
    ("token-classification", b'{"inputs": "a", "parameters": {"ignore_labels": 5}}', "ignore_labels=5"),
    ("question-answering", b'{"question": "q"}', "question"),
    ("question-answering", b'{"question": "q", "context": "c", "top_k": "x"}', "top_k='x'"),
    ("question-answering", b'{"question": "", "context": "c"}', "cannot be empty"),
    ("question-answering", b'{"question": "q", "context": "c", "max_answer_len": 0}', "max_answer_len=0"),
    (
        "question-answering",
        b'{"question": "q", "context": "c", "handle_impossible_answer": 1}',
        "true or false",
    ),
    ("text-classification", b'{"inputs": "a", "parameters": {"top_k": 0}}', "top_k=0"),
    ("token-classification", b'{"inputs": ["a", 5]}', "a list holding int"),
    ("feature-extraction", b'{"inputs": "a", "parameters": {"token_features": "no"}}', "token_features='no'"),
]
GOOD_LINE = {
    "feature-extraction": b'"a good line"',
    "text-classification": b'"a good line"',
    "token-classification": b'"a good line"',
    "question-answering": b'{"question": "where?", "context": "on the mat"}',
}


@pytest.mark.parametrize("task", sorted(GOOD_LINE))
def test_predict(bert_bundles: dict, task: str) -> None:
    import subprocess

    from conftest import BUILDER

    cases = [(line, needle) for t, line, needle in PREDICT_CASES if t == task]
    stdin = b"\n".join([GOOD_LINE[task], *(line for line, _ in cases), GOOD_LINE[task]]) + b"\n"
    proc = subprocess.run(
        [str(BUILDER), "predict", str(bert_bundles[task])], input=stdin, capture_output=True, timeout=300
    )
    out, err = proc.stdout.decode(), proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert len(out.splitlines()) == 2, (out, err)  # the good line before and after the bad ones
    for number, (_, needle) in enumerate(cases, 2):
        line = next((x for x in err.splitlines() if x.startswith(f"line {number}: ")), "")
        assert needle in line and line.endswith("skipped"), (
            f"line {number}: {needle!r} not in {line!r}\n{err}"
        )
    assert f"{len(cases)} line(s) skipped" in err
    strict = subprocess.run(
        [str(BUILDER), "predict", "--strict", str(bert_bundles[task])], input=stdin, capture_output=True
    )
    assert strict.returncode == 1


# ---------------------------------------------------------------------------------------------- tampering


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size, different bytes
    path.write_bytes(bytes(data))


def _manifest(folder: Path, change: Callable[[dict], Any]) -> None:
    """Edit the manifest in place (`change` mutates it)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _rehash(folder: Path) -> None:
    """What a tamperer who also rewrites the manifest does: sizes and hashes match again."""
    from builder.runtime.manifest import file_table

    _manifest(folder, lambda m: m.update(files=file_table(folder)))


def _external(folder: Path, where: str) -> None:
    """Move the graph's weights to a file outside the bundle, referenced from `where`: a sparse initializer, a
    Constant's sparse value, or a model-local function's Constant."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(folder / "model.onnx"))
    values = numpy_helper.from_array(np.ones(4, np.float32), "sparse_values")
    indices = numpy_helper.from_array(np.arange(4, dtype=np.int64), "sparse_indices")
    for tensor in (values, indices):
        tensor.data_location = onnx.TensorProto.EXTERNAL
        tensor.ClearField("raw_data")
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", "../../outside.bin"
    sparse = helper.make_sparse_tensor(values, indices, [8])
    if where == "sparse_initializer":
        sparse.values.name = "sparse_init"
        model.graph.sparse_initializer.append(sparse)
    elif where == "constant":
        model.graph.node.append(helper.make_node("Constant", [], ["sparse_const"], sparse_value=sparse))
    else:  # a function holding the Constant
        const = helper.make_node("Constant", [], ["y"], sparse_value=sparse)
        model.functions.append(
            helper.make_function("local", "f", [], ["y"], [const], [helper.make_opsetid("", 17)])
        )
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    _rehash(folder)


def _missing_external(folder: Path) -> None:
    """The graph's weights moved to model.onnx_data, which is then deleted: the manifest no longer lists it."""
    import onnx

    model = onnx.load(str(folder / "model.onnx"))
    onnx.save_model(model, str(folder / "model.onnx"), save_as_external_data=True, location="model.onnx_data")
    (folder / "model.onnx_data").unlink()
    _rehash(folder)


TAMPER_CASES: list[tuple[str, Callable[[Path], Any], str]] = [
    # from the issue
    ("same-size edit of the graph", lambda f: _flip_byte(f / "model.onnx"), "model.onnx: changed"),
    (
        "manifest files is a list",
        lambda f: _manifest(f, lambda m: m.update(files=list(m["files"]))),
        '"files" is list',
    ),
    ("format version -5", lambda f: _manifest(f, lambda m: m.update(format_version=-5)), "format_version -5"),
    (
        "external data via a sparse initializer",
        lambda f: _external(f, "sparse_initializer"),
        "outside the bundle",
    ),
    ("external data via a Constant's sparse value", lambda f: _external(f, "constant"), "outside the bundle"),
    ("external data via a local function", lambda f: _external(f, "function"), "outside the bundle"),
    (
        "tokenizer.json damaged, manifest rewritten",
        lambda f: ((f / "tokenizer.json").write_text("{}"), _rehash(f)),
        "tokenizer.json",
    ),
    # more
    (
        "same-size edit of the tokenizer",
        lambda f: _flip_byte(f / "tokenizer.json"),
        "tokenizer.json: changed",
    ),
    ("same-size edit of config.json", lambda f: _flip_byte(f / "config.json"), "config.json: changed"),
    ("a file deleted", lambda f: (f / "tokenizer.json").unlink(), "tokenizer.json: missing"),
    ("a file added", lambda f: (f / "extra.py").write_text("import os"), "extra.py: added"),
    (
        "a file in a new folder",
        lambda f: ((f / "sub").mkdir(), (f / "sub" / "x.onnx").write_bytes(b"x")),
        "sub/x.onnx: added",
    ),
    (
        "a file replaced by a link",
        lambda f: ((f / "config.json").unlink(), (f / "config.json").symlink_to(f / "tokenizer_config.json")),
        "is a link",
    ),
    ("manifest not JSON", lambda f: (f / "manifest.json").write_text("{"), "unreadable manifest"),
    ("manifest a JSON list", lambda f: (f / "manifest.json").write_text("[]"), "unreadable manifest"),
    ("manifest deleted", lambda f: (f / "manifest.json").unlink(), "not a builder bundle"),
    (
        "format version a word",
        lambda f: _manifest(f, lambda m: m.update(format_version="two")),
        "unreadable manifest",
    ),
    (
        "format version from the future",
        lambda f: _manifest(f, lambda m: m.update(format_version=99)),
        "Upgrade builder",
    ),
    ("no bundle id", lambda f: _manifest(f, lambda m: m.__delitem__("bundle_id")), '"bundle_id"'),
    (
        "a size that is a word",
        lambda f: _manifest(f, lambda m: m["files"]["config.json"].update(size="big")),
        '"files" entry',
    ),
    (
        "a path leading out",
        lambda f: _manifest(f, lambda m: m["files"].update({"../x": m["files"]["config.json"]})),
        "leads outside",
    ),
    ("runtime section a list", lambda f: _manifest(f, lambda m: m.update(runtime=[])), '"runtime" is list'),
    (
        "runtime section emptied (seen at load)",
        lambda f: _manifest(f, lambda m: m.update(runtime={})),
        "runtime section lacks",
    ),
    (
        "graph replaced by garbage, manifest rewritten",
        lambda f: ((f / "model.onnx").write_bytes(b"garbage"), _rehash(f)),
        "model.onnx",
    ),
    (
        "config.json garbage, manifest rewritten",
        lambda f: ((f / "config.json").write_text("{"), _rehash(f)),
        "config.json: not valid JSON",
    ),
    (
        "an empty file table",
        lambda f: _manifest(f, lambda m: m.update(files={})),
        "model.onnx: added (not in the manifest)",
    ),
    ("a file emptied", lambda f: (f / "model.onnx").write_bytes(b""), "model.onnx: changed"),
    (
        "a sha256 that is not hex",
        lambda f: _manifest(f, lambda m: m["files"]["config.json"].update(sha256="zz")),
        "config.json: changed",
    ),
    (
        "external data named but not there, manifest rewritten",
        lambda f: _missing_external(f),
        "not in its manifest",
    ),
]


@pytest.mark.parametrize("case,tamper,needle", TAMPER_CASES, ids=[c[0] for c in TAMPER_CASES])
def test_tampering(bert_bundles: dict, tmp_path: Path, case: str, tamper: Callable, needle: str) -> None:
    folder = tmp_path / "bundle"
    shutil.copytree(bert_bundles["text-classification"], folder)
    tamper(folder)
    with pytest.raises(BundleIntegrityError) as caught:
        builder.load(folder)
    assert needle in str(caught.value), str(caught.value)
    proc = run_builder("verify", str(folder))
    if "rewritten" not in case and "at load" not in case:  # verify checks files; these show when loading
        assert proc.returncode != 0 and needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
