"""Regenerate tests/golden/seq2seq_golden.json: the outputs of transformers 4.57's summarization, translation and
text2text-generation pipelines (the last release that has them) on the tiny encoder-decoders the tests build.

    .venv/bin/python tests/golden/make_seq2seq_golden.py [--remake-models]

Creates its own virtualenv (.golden-venv, git-ignored; the same as make_qa_golden.py's) with transformers==4.57.6
and the CPU torch, runs every case of seq2seq_cases.py there on the tiny models committed in
tests/golden/seq2seq-models/ (made once with tests/tiny_models.py; --remake-models makes them again), and writes
the results. The models are committed with the goldens: a model made again elsewhere is not byte-identical."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
MODELS = HERE / "seq2seq-models"
ARCHITECTURES = ("t5", "bart", "marian")
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from make_qa_golden import ensure_venv  # noqa: E402

RUNNER = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import transformers
from transformers import AutoModelForSeq2SeqLM, MarianTokenizer, PreTrainedTokenizerFast, pipeline
from seq2seq_cases import CASES
models = json.loads(sys.argv[1])
out = {"transformers_version": transformers.__version__, "cases": []}
pipelines = {}
for task, arch, inputs, kwargs in CASES:
    folder = models[arch]
    if (task, arch) not in pipelines:
        # 4.57 does not know transformers 5's tokenizer_class names: build the fast tokenizer from tokenizer.json.
        # Marian has none: its own MarianTokenizer (SentencePiece), what users of 4.57 ran.
        config = json.load(open(folder + "/tokenizer_config.json"))
        specials = {k: v for k, v in config.items() if k.endswith("_token") and isinstance(v, str)}
        if arch == "marian":
            tok = MarianTokenizer.from_pretrained(folder)
        else:
            tok = PreTrainedTokenizerFast(tokenizer_file=folder + "/tokenizer.json", model_input_names=["input_ids",
                                          "attention_mask"], model_max_length=config["model_max_length"], **specials)
        # a model of its own per pipeline: a pipeline pops the task's prefix out of the model's config when made
        model = AutoModelForSeq2SeqLM.from_pretrained(folder)
        pipelines[(task, arch)] = pipeline(task, model=model, tokenizer=tok, device="cpu")
    run = pipelines[(task, arch)]
    try:
        out["cases"].append({"output": run(inputs, **kwargs)})
    except Exception as e:
        out["cases"].append({"error": type(e).__name__, "message": str(e)[:200]})
print(json.dumps(out))
"""


def main() -> None:
    from tiny_models import make_seq2seq

    from builder.source import folder_hash

    python = ensure_venv()
    if "--remake-models" in sys.argv:
        shutil.rmtree(MODELS, ignore_errors=True)
    for arch in ARCHITECTURES:  # those not committed yet
        if not (MODELS / arch).exists():
            shutil.move(str(make_seq2seq(MODELS, arch)), str(MODELS / arch))
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
    (HERE / "seq2seq_golden.json").write_text(
        json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {HERE / 'seq2seq_golden.json'} with transformers {result['transformers_version']}")


if __name__ == "__main__":
    main()
