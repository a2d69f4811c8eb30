"""One decode step, builder vs onnxruntime-genai, in one process: where a batch-1 step's time goes when the graphs
are alike. Uses the models of a `generation_latency.py` work folder (its int4 bundle, genai's int4 model and the
genai packages it installed), so run that first.

- loop: builder's generation loop (`generate_ids`, greedy) vs genai's `Generator`, milliseconds per decode step
  after a 128-token prompt (the prompt step left out); rounds interleaved, who goes first rotates;
- graph: the two graphs under one plain harness (a raw InferenceSession, one cache buffer per layer bound as past
  and present, the same feeds), run in lock step: builder's step, genai's step, genai's, builder's, ... so the
  host's drift falls on both alike and a round's median per-step ratio is steady to ~1%. Thread spinning is off in
  both sessions here: on two cores one session's spinning workers would slow the other's step. Each round makes
  new sessions, the two in turn first: the one a process creates first runs a few percent slower;
- python: builder's time per step outside `session.run_with_iobinding` (the Python loop);
- blocks (--blocks): MatMulNBits at block sizes 32, 64 and 128 on one step's matmuls of this shape (random weights,
  symmetric, accuracy level 4): what a larger block saves.

Medians of per-round ratios.

    .venv/bin/python benchmarks/decode_step.py --work <generation_latency work folder> [--rounds 9] [--blocks]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

PROMPT, NEW, THREADS = 128, 128, 2


def session(path: Path, spinning: bool = True) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = THREADS, 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class RawSteps:
    """Greedy decode steps of one graph through a bare IOBinding loop (one cache buffer per layer and kind)."""

    def __init__(self, sess: ort.InferenceSession, kv_heads: int, head_dim: int):
        self.sess, self.kv_heads, self.head_dim = sess, kv_heads, head_dim
        self.names = [i.name for i in sess.get_inputs()]

    def start(self, prompt: np.ndarray) -> None:
        """Bind fresh cache buffers and run the prompt."""
        self.binding = self.sess.io_binding()
        for name in (n for n in self.names if n.startswith("past_key_values")):
            shape = (1, self.kv_heads, PROMPT + NEW, self.head_dim)
            buffer = ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, np.float32))
            self.binding.bind_ortvalue_input(name, buffer)
            self.binding.bind_ortvalue_output(name.replace("past_key_values", "present"), buffer)
        self.ids, self.length = prompt, 0
        self.step()

    def step(self) -> float:
        """One step; seconds in the session."""
        ids, length = self.ids, self.length
        feeds = {"input_ids": ids, "attention_mask": np.ones((1, length + ids.shape[1]), np.int64)}
        if "position_ids" in self.names:
            feeds["position_ids"] = np.arange(length, length + ids.shape[1], dtype=np.int64)[None]
        for k, v in feeds.items():
            self.binding.bind_cpu_input(k, v)
        self.binding.bind_output("logits", "cpu")
        start = time.perf_counter()
        self.sess.run_with_iobinding(self.binding)
        spent = time.perf_counter() - start
        logits = self.binding.get_outputs()[0].numpy()
        self.length += ids.shape[1]
        self.ids = logits.reshape(1, -1, logits.shape[-1])[:, -1].argmax(-1).astype(np.int64)[:, None]
        return spent


def lockstep(a: RawSteps, b: RawSteps, prompt: np.ndarray) -> tuple[float, float, float]:
    """NEW - 1 decode steps of each graph, alternating step by step (who goes first flips each step): the median
    per-step ratio a / b and each side's median ms a step."""
    a.start(prompt)
    b.start(prompt)
    ratios, ta, tb = [], [], []
    for i in range(NEW - 1):
        x, y = (a.step(), b.step()) if i % 2 == 0 else tuple(reversed((b.step(), a.step())))
        ratios.append(x / y)
        ta.append(x)
        tb.append(y)
    return statistics.median(ratios), 1000 * statistics.median(ta), 1000 * statistics.median(tb)


def block_sizes(hidden: int, inter: int, qkv: int, layers: int, vocab: int, rounds: int) -> dict[str, float]:
    """ms per step of a decoder's matmuls as MatMulNBits, by block size."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    rng = np.random.default_rng(0)
    shapes = [(hidden, qkv), (hidden, hidden), (hidden, inter), (hidden, inter), (inter, hidden)] * layers
    shapes.append((hidden, vocab))
    sessions = {}
    for block in (32, 64, 128):
        nodes, inits, outs = [], [], []
        for i, (k, n) in enumerate(shapes):
            weight = (rng.standard_normal((k, n)) * 0.02).astype(np.float32)
            inits.append(numpy_helper.from_array(weight, f"w{i}"))
            nodes.append(helper.make_node("MatMul", ["x" if k == hidden else "h", f"w{i}"], [f"y{i}"]))
            outs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None))
        inputs = [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, hidden]),
            helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 1, inter]),
        ]
        model = helper.make_model(
            helper.make_graph(nodes, "matmuls", inputs, outs, inits),
            opset_imports=[helper.make_opsetid("", 21)],
        )
        config = DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=True, accuracy_level=4)
        quantizer = MatMulNBitsQuantizer(model, algo_config=config)
        quantizer.process()
        path = Path(f"/tmp/decode_step_blocks_{block}.onnx")
        onnx.save(quantizer.model.model, str(path), save_as_external_data=True, location=path.name + ".data")
        sessions[f"block {block}"] = session(path)
    feeds = {
        "x": rng.standard_normal((1, 1, hidden)).astype(np.float32),
        "h": rng.standard_normal((1, 1, inter)).astype(np.float32),
    }
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for r in range(rounds):
        for name in list(sessions)[r % 3 :] + list(sessions)[: r % 3]:
            for _ in range(5):
                sessions[name].run(None, feeds)
            start = time.perf_counter()
            for _ in range(40):
                sessions[name].run(None, feeds)
            times[name].append(1000 * (time.perf_counter() - start) / 40)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", required=True, help="a generation_latency.py work folder")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--blocks", action="store_true", help="also time MatMulNBits block sizes 32/64/128")
    args = parser.parse_args()
    work = Path(args.work)
    bundle = next((work / "int4").glob("*/manifest.json")).parent
    genai_folder = work / "genai-int4"
    sys.path.insert(0, str(work / "genai-packages"))
    import onnxruntime_genai as og

    import builder

    config = json.loads((work / "model" / "config.json").read_text())
    kv_heads = config["num_key_value_heads"]
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    prompt = np.random.default_rng(0).integers(3, config["vocab_size"], size=(1, PROMPT))

    genai_model = og.Model(str(genai_folder))
    gen = builder.load(bundle, intra_op_threads=THREADS).pipeline
    greedy = gen.settings({"do_sample": False})

    def genai_loop() -> float:
        params = og.GeneratorParams(genai_model)
        params.set_search_options(
            do_sample=False, max_length=PROMPT + NEW, min_length=PROMPT + NEW, batch_size=1
        )
        generator = og.Generator(genai_model, params)
        generator.append_tokens(prompt.astype(np.int32))
        generator.generate_next_token()
        start, n = time.perf_counter(), 0
        while not generator.is_done():
            generator.generate_next_token()
            n += 1
        return 1000 * (time.perf_counter() - start) / n

    spent = [0.0]
    run = ort.InferenceSession.run_with_iobinding

    def timed(self, *a, **k):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return run(self, *a, **k)
        finally:
            spent[0] += time.perf_counter() - start

    python: list[float] = []

    def builder_loop() -> float:
        start = time.perf_counter()
        gen.generate_ids(prompt.tolist(), {**greedy, "max_new_tokens": 1}, ignore_eos=True)
        first = time.perf_counter() - start
        ort.InferenceSession.run_with_iobinding, spent[0] = timed, 0.0
        try:
            start = time.perf_counter()
            gen.generate_ids(prompt.tolist(), {**greedy, "max_new_tokens": NEW}, ignore_eos=True)
            whole = time.perf_counter() - start
        finally:
            ort.InferenceSession.run_with_iobinding = run
        python.append(1000 * (whole - spent[0]) / NEW)
        return 1000 * (whole - first) / (NEW - 1)

    sides = {"loop builder": builder_loop, "loop genai": genai_loop}
    times: dict[str, list[float]] = {k: [] for k in sides}
    for r in range(args.rounds):
        for name in list(sides)[r % len(sides) :] + list(sides)[: r % len(sides)]:
            times[name].append(sides[name]())
        print(
            f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in times.items()) + " ms/step",
            flush=True,
        )
    # the graphs in lock step, after the loops: sessions of their own, with spinning off, new each round. The
    # session a process creates first steps 2-4% slower than its twin created next (the same graph against itself),
    # so the order of creation alternates round by round.
    paths = (bundle / "model.onnx", genai_folder / "model.onnx")
    steps = []
    for r in range(args.rounds):
        order = paths if r % 2 == 0 else paths[::-1]
        made = {p: RawSteps(session(p, spinning=False), kv_heads, head_dim) for p in order}
        steps.append(lockstep(made[paths[0]], made[paths[1]], prompt.astype(np.int64)))
        del made
    loop_rounds = [x / y for x, y in zip(times["loop builder"], times["loop genai"], strict=True)]
    graph_rounds = [s[0] for s in steps]
    print(
        f"\nms per decode step, medians of {args.rounds} rounds (2 threads, batch 1, {PROMPT}-token prompt):"
    )
    for name, values in times.items():
        print(f"  {name:14s} {statistics.median(values):6.2f}")
    for i, name in ((1, "graph builder"), (2, "graph genai")):
        print(f"  {name:14s} {statistics.median(s[i] for s in steps):6.2f} (lock step, no spinning)")
    print(
        f"loop: builder's step / genai's = {statistics.median(loop_rounds):.3f} "
        f"(per round {', '.join(f'{x:.2f}' for x in loop_rounds)})"
    )
    print(
        f"graph: builder's / genai's = {statistics.median(graph_rounds):.3f} "
        f"(per round {', '.join(f'{x:.3f}' for x in graph_rounds)})"
    )
    print(f"builder's Python around the session: {statistics.median(python):.2f} ms a step")
    if args.blocks:
        inter, qkv = config["intermediate_size"], config["hidden_size"] + 2 * kv_heads * head_dim
        blocks = block_sizes(
            config["hidden_size"], inter, qkv, config["num_hidden_layers"], config["vocab_size"], args.rounds
        )
        print("MatMulNBits, one step's matmuls: " + ", ".join(f"{k} {v:.2f} ms" for k, v in blocks.items()))


if __name__ == "__main__":
    main()
