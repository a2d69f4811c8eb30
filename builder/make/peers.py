"""How the libraries users already have load a bundle: Optimum's ORTModelFor* classes with transformers'
pipelines, sentence-transformers' ONNX backend for embeddings, onnxruntime-genai for decoders. The model card's usage snippets come from
here, and tests/test_peers.py runs these versions against real bundles (in their own virtualenv: Optimum needs
transformers < 4.58)."""

from __future__ import annotations

PEER_VERSIONS = {
    "optimum-onnx[onnxruntime]": "0.1.0",
    "transformers": "4.57.6",
    "sentence-transformers": "5.1.2",
}


# onnxruntime-genai runs a decoder bundle with its own generation loop (genai_config.json); installed without its
# dependencies, beside the onnxruntime the bundle was built with.
GENAI_VERSION = "0.18.0"


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
    optimum = [
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
    if task != "text-generation":
        return optimum
    optimum.insert(-1, 'print(pipe("Once upon a time", max_new_tokens=20, do_sample=False))')
    return [
        "With onnxruntime-genai (its own generation loop; the bundle's `genai_config.json` describes the graph):",
        "",
        "```python",
        f'# pip install --no-deps "onnxruntime-genai=={GENAI_VERSION}"  (beside onnxruntime)',
        "import onnxruntime_genai as og",
        "",
        f'model = og.Model("{name}")',
        "tokenizer = og.Tokenizer(model)",
        "params = og.GeneratorParams(model)",
        "params.set_search_options(max_length=64, do_sample=False)",
        "generator = og.Generator(model, params)",
        'generator.append_tokens(tokenizer.encode("Once upon a time"))',
        "while not generator.is_done():",
        "    generator.generate_next_token()",
        "print(tokenizer.decode(generator.get_sequence(0)))",
        "```",
        "",
        *optimum,
    ]
