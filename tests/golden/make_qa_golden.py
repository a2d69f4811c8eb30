"""Regenerate tests/golden/qa_golden.json: the outputs of transformers 4.57's question-answering pipeline
(the last release that has it) on the tiny QA models the tests build.

    .venv/bin/python tests/golden/make_qa_golden.py [--remake-models]

Creates its own virtualenv (.golden-venv, git-ignored) with transformers==4.57.6 and the CPU torch, runs every
case of qa_cases.py there on the tiny QA models committed in tests/golden/qa-models/ (made once with
tests/tiny_models.py; --remake-models makes them again), and writes the results. The models are committed
with the goldens because a model made again under another transformers version is not byte-identical.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
VENV = ROOT / ".golden-venv"
MODELS = HERE / "qa-models"
ARCHITECTURES = ("bert", "roberta", "distilbert")
TRANSFORMERS = "transformers==4.57.6"
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

RUNNER = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import transformers
from transformers import AutoModelForQuestionAnswering, PreTrainedTokenizerFast, pipeline
from qa_cases import CASES
models = json.loads(sys.argv[1])
out = {"transformers_version": transformers.__version__, "models": {}}
for arch, folder in models.items():
    # 4.57 does not know transformers 5's tokenizer_class names: build the fast tokenizer from tokenizer.json.
    config = json.load(open(folder + "/tokenizer_config.json"))
    specials = {k: v for k, v in config.items() if k.endswith("_token") and isinstance(v, str)}
    tok = PreTrainedTokenizerFast(tokenizer_file=folder + "/tokenizer.json", model_max_length=config["model_max_length"],
                                  padding_side=config.get("padding_side", "right"),
                                  model_input_names=config.get("model_input_names"), **specials)
    model = AutoModelForQuestionAnswering.from_pretrained(folder)
    qa = pipeline("question-answering", model=model, tokenizer=tok, device="cpu")
    results = []
    for case in CASES:
        kwargs = dict(case)
        try:
            results.append({"output": qa(**kwargs)})
        except Exception as e:
            results.append({"error": type(e).__name__, "message": str(e)[:200]})
    out["models"][arch] = results
print(json.dumps(out))
"""


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)  # the CPU build; never an unpinned torch
        subprocess.run([*pip, TRANSFORMERS, "numpy"], check=True)
    if subprocess.run([str(python), "-c", "import sentencepiece"], capture_output=True).returncode:
        # MarianTokenizer's (the seq2seq goldens'); an older .golden-venv lacks it
        subprocess.run([str(python), "-m", "pip", "install", "-q", "sentencepiece"], check=True)
    return python


def main() -> None:
    from tiny_models import make_model

    from builder.source import folder_hash

    python = ensure_venv()
    if "--remake-models" in sys.argv or not MODELS.exists():
        shutil.rmtree(MODELS, ignore_errors=True)
        for arch in ARCHITECTURES:
            shutil.move(str(make_model(MODELS, arch, "question-answering")), str(MODELS / arch))
    folders = {arch: MODELS / arch for arch in ARCHITECTURES}
    proc = subprocess.run(
        [str(python), "-c", RUNNER, json.dumps({a: str(f) for a, f in folders.items()})],
        capture_output=True,
        text=True,
        cwd=HERE,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["model_hashes"] = {arch: folder_hash(f) for arch, f in folders.items()}
    (HERE / "qa_golden.json").write_text(
        json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {HERE / 'qa_golden.json'} with transformers {result['transformers_version']}")


if __name__ == "__main__":
    main()
