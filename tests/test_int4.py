"""int4 weight-only quantization (MatMulNBits): every decoder architecture and an encoder, measured against
PyTorch (logits cosine, teacher-forced top-1 agreement, greedy match, perplexity retention), the same bytes for
the same inputs, nodes kept in float by name, embedding tables in int4 at opset 21."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import Lazy, read_json, slow_beyond
from tiny_models import DECODERS

import builder


def _ops(folder: Path) -> tuple[list[onnx.NodeProto], set[str]]:
    model = onnx.load(str(folder / "model.onnx"))
    return list(model.graph.node), {i.name for i in model.graph.initializer}


def _build(source: Path, out: Path, *extra: str, task: str = "text-generation") -> Path:
    return builder.build(
        overrides=[
            f"model.source={source}",
            f"task={task}",
            "quantization=int4",
            "benchmark=none",
            f"output_dir={out}",
            *extra,
        ],  # fmt: skip
        quiet=True,
    )


@pytest.fixture(scope="module")
def int4_decoders(tiny_decoders: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("int4-decoders")
    return Lazy(lambda arch: _build(tiny_decoders[arch], out), DECODERS)


# Llama (grouped-query attention) and GPT-2 (Gemm layers) in the default suite; the rest with the slow tests.
ARCHS = slow_beyond(DECODERS, ("llama", "gpt2"))


@pytest.mark.parametrize("arch", ARCHS)
def test_every_weight_of_a_decoder_is_int4(int4_decoders: dict, arch: str) -> None:
    folder = int4_decoders[arch]
    nodes, weights = _ops(folder)
    assert not [n.name for n in nodes if n.op_type in ("MatMul", "Gemm") and n.input[1] in weights]
    blocks = [n for n in nodes if n.op_type == "MatMulNBits"]
    metrics = read_json(folder / "metrics.json")
    q = metrics["quantize"]
    assert len(blocks) + sum(n.op_type == "GatherBlockQuantized" for n in nodes) == q["quantized_nodes"]
    assert blocks
    for node in blocks:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert (attrs["bits"], attrs["block_size"], attrs["accuracy_level"]) == (4, 32, 4)
        assert len(node.input) < 4 or not node.input[3]  # symmetric: no zero points
    assert metrics["size"]["ratio_to_fp32"] < 0.45  # scales and the small dims of tiny models: ~0.36
    # Measured, gated on top-1 agreement (the tiny decoders keep ~0.9) and recorded in the card.
    fidelity, ev = metrics["fidelity"], metrics["evaluation"]
    assert fidelity["passed"] and fidelity["outputs"]["logits"]["argmax_agreement"] >= 0.8
    assert 0 <= fidelity["generation"]["greedy_match"] <= 1
    assert ev["metric"] == "perplexity" and 95 < ev["retention_percent"] < 110
    card = (folder / "README.md").read_text()
    assert (
        "int4 weight-only (MatMulNBits): blocks of 32, symmetric, accuracy level 4, ops MatMul, Gather"
        in card
    )
    assert [n for n in nodes if n.op_type == "GatherBlockQuantized"]  # the embedding table
    gen = builder.load(folder)
    text = gen("Once upon a time", max_new_tokens=6, do_sample=False)[0]["generated_text"]
    assert text.startswith("Once upon a time") and len(text) > len("Once upon a time")
    # MatMulNBits quantizes each row's activations by itself: a batch gives what each prompt gives alone (dynamic
    # int8 scales a step's activations by the whole batch's range, so there it only comes close)
    prompts = ["Hello, my name is", "The quick brown fox", "A", "Once upon a time, in a land far away, there"]
    greedy = {"max_new_tokens": 12, "do_sample": False}
    assert gen(prompts, **greedy) == [gen(p, **greedy) for p in prompts]


def test_int4_bytes_depend_only_on_the_inputs(
    int4_decoders: dict, tiny_decoders: dict, tmp_path: Path
) -> None:
    again = _build(tiny_decoders["llama"], tmp_path / "out", f"cache_dir={tmp_path / 'cache'}")
    first = int4_decoders["llama"]
    assert again.name == first.name
    digest = [hashlib.sha256((f / "model.onnx").read_bytes()).hexdigest() for f in (first, again)]
    assert digest[0] == digest[1]


def test_named_nodes_stay_in_float_and_options_reach_the_graph(tiny_decoders: dict, tmp_path: Path) -> None:
    folder = _build(
        tiny_decoders["qwen2"], tmp_path, "quantization.exclude_nodes=['*lm_head*']",
        "quantization.int4.block_size=16", "quantization.int4.symmetric=false",
        "quantization.int4.accuracy_level=0",
    )  # fmt: skip
    nodes, weights = _ops(folder)
    float_weights = [n.name for n in nodes if n.op_type == "MatMul" and n.input[1] in weights]
    assert len(float_weights) == 1 and "lm_head" in float_weights[0]
    q = read_json(folder / "metrics.json")["quantize"]
    assert q["float_nodes"] == float_weights
    for node in (n for n in nodes if n.op_type == "MatMulNBits"):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert (attrs["block_size"], attrs.get("accuracy_level", 0)) == (16, 0)  # 0, the default: not written
        assert len(node.input) >= 4 and node.input[3]  # asymmetric: zero points
    assert f"kept in float: {float_weights[0]}" in (folder / "README.md").read_text()


def test_encoder_int4_with_embedding_tables(tiny_models: dict, tmp_path: Path) -> None:
    """An encoder's MatMuls in MatMulNBits and its embedding tables in GatherBlockQuantized (opset 21, the
    default with int4): the
    embedding stays close to PyTorch's and the bundle answers as its fp32 sibling does, within int4's error."""
    source = tiny_models[("bert", "feature-extraction")]
    folder = _build(source, tmp_path, task="feature-extraction")
    nodes, _ = _ops(folder)
    kinds = {n.op_type for n in nodes}
    assert {"MatMulNBits", "GatherBlockQuantized"} <= kinds
    metrics = read_json(folder / "metrics.json")
    assert metrics["fidelity"]["outputs"]["sentence_embedding"]["cosine_mean"] > 0.9
    fp32 = builder.build(
        overrides=[
            f"model.source={source}",
            "quantization=none",
            "evaluation=none",
            "benchmark=none",
            f"output_dir={tmp_path / 'fp32'}",
        ],  # fmt: skip
        quiet=True,
    )
    texts = ["A man is playing a guitar.", "Stocks fell sharply on Monday."]
    a, b = np.asarray(builder.load(folder)(texts)), np.asarray(builder.load(fp32)(texts))
    assert ((a * b).sum(1) > 0.9).all()


@pytest.mark.parametrize(
    "trans_b,alpha,beta,bias", [(1, 1.0, 1.0, True), (0, 0.5, 2.0, True), (1, 1.0, 1.0, False)]
)
def test_gemm_as_matmul_computes_the_same(trans_b: int, alpha: float, beta: float, bias: bool) -> None:
    """GPT-2's Conv1D layers export as Gemm, which the MatMul quantizers skip: the rewrite to MatMul + Add gives
    ONNX Runtime's Gemm result, whatever transB, alpha and beta say."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from builder.make.stages.quantize.gemm import gemm_as_matmul

    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 8) if trans_b else (8, 6)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w")]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "b"))
    node = helper.make_node("Gemm", ["x", "w", *(["b"] if bias else [])], ["y"], name="g", transB=trans_b,
                            alpha=alpha, beta=beta)  # fmt: skip
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 6])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((3, 8)).astype(np.float32)

    def run(m: onnx.ModelProto) -> np.ndarray:
        return ort.InferenceSession(m.SerializeToString()).run(["y"], {"x": x})[0]

    expected = run(model)
    assert gemm_as_matmul(model) == 1
    assert [n.op_type for n in model.graph.node] == ["MatMul", *(["Add"] if bias else [])]
    np.testing.assert_allclose(run(model), expected, rtol=1e-5, atol=1e-5)
