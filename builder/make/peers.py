"""How the libraries users already have load a bundle: Optimum's ORTModelFor* classes with transformers'
pipelines, and sentence-transformers' ONNX backend for embeddings. The model card's usage snippets come from
here, and tests/test_peers.py runs these versions against real bundles (in their own virtualenv: Optimum needs
transformers < 4.58)."""

from __future__ import annotations

PEER_VERSIONS = {
    "optimum-onnx[onnxruntime]": "0.1.0",
    "transformers": "4.57.6",
    "sentence-transformers": "5.1.2",
}


def pip_line(*names: str) -> str:
    return "pip install " + " ".join(f'"{n}=={PEER_VERSIONS[n]}"' for n in names)


def usage_lines(task: str, optimum_class: str | None, name: str) -> list[str]:
    """Markdown: how to load the bundle `name` (a folder or Hub repo) with each peer that loads this task."""
    if task == "feature-extraction":
        return [
            "With sentence-transformers (its ONNX backend runs `model.onnx`; the bundle's `modules.json`,",
            "`sentence_bert_config.json` and `1_Pooling/` give it the same length limit, pooling and normalization):",
            "",
            "```python",
            f"# {pip_line('sentence-transformers', 'optimum-onnx[onnxruntime]', 'transformers')}",
            "from sentence_transformers import SentenceTransformer",
            "",
            f'model = SentenceTransformer("{name}", backend="onnx")',
            'embeddings = model.encode(["A sentence to embed."])',
            "```",
        ]
    if optimum_class is None:
        return []
    return [
        "With Optimum and a transformers pipeline:",
        "",
        "```python",
        f"# {pip_line('optimum-onnx[onnxruntime]', 'transformers')}",
        f"from optimum.onnxruntime import {optimum_class}",
        "from transformers import AutoTokenizer, pipeline",
        "",
        f'model = {optimum_class}.from_pretrained("{name}")',
        f'pipe = pipeline("{task}", model=model, tokenizer=AutoTokenizer.from_pretrained("{name}"))',
        "```",
    ]
