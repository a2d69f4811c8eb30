"""Bundles load on the oldest onnxruntime the runtime declares (pyproject.toml) and answer there as they do on
ours: a fused decoder (GroupQueryAttention, int8) and an encoder. A decoder graph written by a newer ONNX Runtime
names operator inputs and attributes older releases refuse (builder/make/files.py, builder/tasks/decoder_attention.py);
onnxruntime-gpu's newest release trails onnxruntime's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_peer

import builder

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ["Hello, my name is", "The quick brown fox", "A"]

RUN = """
import json, sys
request = json.load(sys.stdin)
sys.path.insert(0, request["root"])
import onnxruntime, builder
gen = builder.load(request["decoder"])
greedy = dict(max_new_tokens=10, do_sample=False, return_full_text=False)
classify = builder.load(request["encoder"])
print(json.dumps({
    "onnxruntime": onnxruntime.__version__,
    "alone": [gen(p, **greedy)[0]["generated_text"] for p in request["prompts"]],
    "beams": gen(request["prompts"][0], num_beams=3, **greedy)[0]["generated_text"],
    "classes": classify(request["prompts"], top_k=None),
}))
"""


def declared_floor() -> str:
    """The version in the runtime's `"onnxruntime>=X"` (the build extra names onnxruntime[symbolic])."""
    found = re.search(r'^\s*"onnxruntime>=([\d.]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert found, "pyproject.toml: no onnxruntime>= among the runtime's dependencies"
    return found.group(1)


@pytest.fixture(scope="module")
def floor_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the runtime's dependencies, onnxruntime at the oldest release the runtime declares."""
    venv = tmp_path_factory.mktemp("floor-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    wanted = [
        f"onnxruntime=={declared_floor()}.*",
        "tokenizers",
        "numpy",
        "huggingface_hub",
        "pyyaml",
        "jinja2",
    ]
    proc = subprocess.run([*pip, *wanted], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv / "bin" / "python"


@pytest.mark.slow
def test_bundles_answer_alike_on_the_oldest_onnxruntime_declared(
    floor_python: Path, tiny_decoders: dict, tiny_models: dict, tmp_path: Path
) -> None:
    common = ["evaluation=none", "benchmark=none", f"output_dir={tmp_path}"]
    decoder = builder.build(overrides=[f"model.source={tiny_decoders['llama']}", "task=text-generation", *common],
                            quiet=True)  # fmt: skip
    encoder = builder.build(overrides=[f"model.source={tiny_models[('bert', 'text-classification')]}",
                                       "task=text-classification", *common], quiet=True)  # fmt: skip
    request = {"root": str(ROOT), "decoder": str(decoder), "encoder": str(encoder), "prompts": PROMPTS}
    theirs = run_peer(floor_python, RUN, request)
    assert theirs["onnxruntime"].startswith(declared_floor() + ".")
    gen, classify = builder.load(decoder), builder.load(encoder)
    greedy = dict(max_new_tokens=10, do_sample=False, return_full_text=False)
    assert theirs["alone"] == [gen(p, **greedy)[0]["generated_text"] for p in PROMPTS]
    assert theirs["beams"] == gen(PROMPTS[0], num_beams=3, **greedy)[0]["generated_text"]
    ours = classify(PROMPTS, top_k=None)
    for a, b in zip(theirs["classes"], ours, strict=True):
        assert [x["label"] for x in a] == [x["label"] for x in b]
        assert [x["score"] for x in a] == pytest.approx([x["score"] for x in b], abs=1e-5)
