"""The runtime's pipelines on fp32 bundles give what transformers' pipelines give on the PyTorch model:
same labels, answers, entity spans and offsets; scores within 1e-4. Question answering is compared with
golden outputs of transformers 4.57 (tests/golden/make_qa_golden.py), the last release with that pipeline."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ARCHITECTURES, RecordingSession, run_builder, run_without_build_packages, same

import builder
from builder.source import folder_hash

sys.path.insert(0, str(Path(__file__).parent / "golden"))
from qa_cases import CASES as QA_CASES  # noqa: E402

GOLDEN = json.loads((Path(__file__).parent / "golden" / "qa_golden.json").read_text(encoding="utf-8"))
GOLDEN_MODELS = Path(__file__).parent / "golden" / "qa-models"  # the models the goldens were made with
LONG = " ".join(
    ["George Washington visited Apple Inc. in Cupertino, California, with people from Paris."] * 20
)
TEXTS = [
    "George Washington visited Apple Inc. in Cupertino, California.",
    "",
    "   ",
    "Café naïve résumé — ümlauts, ß, emoji 🙂 and 日本語 Zanzibar.",
    "I absolutely loved this film; the acting was superb!",
    LONG,  # longer than the model's maximum: truncated
]


@pytest.fixture(scope="module")
def bundles(tiny_models: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    out = tmp_path_factory.mktemp("pipelines")
    made = {}
    for (arch, task), source in tiny_models.items():
        # the other families: test_families.py; zero-shot: test_zero_shot.py
        if arch not in ARCHITECTURES or task == "zero-shot-classification":
            continue
        if task == "question-answering":
            source = GOLDEN_MODELS / arch
        made[(arch, task)] = builder.build(
            overrides=[
                f"model.source={source}",
                f"task={task}",
                "quantization=none",
                "benchmark=none",
                f"output_dir={out}",
            ],
            quiet=True,
        )
    return made


# ------------------------------------------------------------------------------------------ question answering


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_question_answering_matches_transformers_457(bundles: dict, arch: str) -> None:
    assert folder_hash(GOLDEN_MODELS / arch) == GOLDEN["model_hashes"][arch], (
        "tests/golden/qa-models changed: regenerate the goldens with tests/golden/make_qa_golden.py"
    )
    qa = builder.load(bundles[(arch, "question-answering")])
    for case, expected in zip(QA_CASES, GOLDEN["models"][arch], strict=True):
        if "error" in expected:
            with pytest.raises(Exception) as err:  # noqa: PT011 - the same exception type as transformers
                qa(**case)
            assert type(err.value).__name__ == expected["error"] and str(err.value) == expected["message"]
        else:
            same(qa(**case), expected["output"], f"{arch} {case['question']!r}")


def test_question_answering_call_shapes(bundles: dict) -> None:
    qa = builder.load(bundles[("bert", "question-answering")])
    q, c = "Who was the first president?", "George Washington was the first president."
    one = qa(question=q, context=c)
    assert qa(q, c) == one and qa({"question": q, "context": c}) == one
    assert qa([{"question": q, "context": c}] * 2) == [one, one]
    with pytest.raises(ValueError, match="same lengths"):
        qa(question=[q, q], context=[c])


# ----------------------------------------------------------------------------------------- text classification


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_text_classification_matches_transformers(bundles: dict, tiny_models: dict, arch: str) -> None:
    from transformers import pipeline

    ours = builder.load(bundles[(arch, "text-classification")])
    theirs = pipeline(
        "text-classification", model=str(tiny_models[(arch, "text-classification")]), device="cpu"
    )
    calls: list[tuple[Any, dict]] = [
        (TEXTS[0], {}),
        (TEXTS, {}),
        (TEXTS[3], {"top_k": None}),
        (TEXTS, {"top_k": 2}),
        (TEXTS[4], {"top_k": 1}),
        (TEXTS[:3], {"function_to_apply": "sigmoid"}),
        (TEXTS[4], {"function_to_apply": "none", "top_k": None}),
        ({"text": "Paris is in France.", "text_pair": "Is Paris in France?"}, {}),
        ([{"text": "a b", "text_pair": "c"}, {"text": TEXTS[3], "text_pair": TEXTS[0]}], {"top_k": None}),
    ]
    for inputs, kwargs in calls:
        same(ours(inputs, **kwargs), theirs(inputs, truncation=True, **kwargs), f"{arch} {kwargs}")


# ---------------------------------------------------------------------------------------- token classification


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_token_classification_matches_transformers(bundles: dict, tiny_models: dict, arch: str) -> None:
    from transformers import pipeline

    ours = builder.load(bundles[(arch, "token-classification")])
    theirs = pipeline(
        "token-classification", model=str(tiny_models[(arch, "token-classification")]), device="cpu"
    )
    for strategy in ("none", "simple", "first", "average", "max"):
        for ignore in (None, []):
            kwargs = {"aggregation_strategy": strategy, "ignore_labels": ignore}
            same(ours(TEXTS, **kwargs), theirs(TEXTS, **kwargs), f"{arch} {kwargs}")
            same(ours(TEXTS[0], **kwargs), theirs(TEXTS[0], **kwargs), f"{arch} single {kwargs}")
    for strategy in ("simple", "first"):  # long text read in overlapping windows
        kwargs = {"aggregation_strategy": strategy, "stride": 16, "ignore_labels": []}
        same(ours(LONG, **kwargs), theirs(LONG, **kwargs), f"{arch} stride {strategy}")


# ---------------------------------------------------------------------------------------- feature extraction


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_feature_extraction_matches_transformers(bundles: dict, tiny_models: dict, arch: str) -> None:
    import torch
    from transformers import pipeline

    ours = builder.load(bundles[(arch, "feature-extraction")])
    theirs = pipeline(
        "feature-extraction", model=str(tiny_models[(arch, "feature-extraction")]), device="cpu"
    )
    texts = TEXTS[:5]
    tokens = ours(texts, token_features=True)
    for text, got in zip(texts, tokens, strict=True):
        expected = np.array(theirs(text)[0])
        np.testing.assert_allclose(got, expected, atol=1e-4)
        mean = expected.mean(axis=0)
        emb = ours(text)
        np.testing.assert_allclose(emb, mean / np.linalg.norm(mean), atol=1e-4)
    assert ours(texts).shape == (len(texts), tokens[0].shape[1])
    assert torch is not None


# ------------------------------------------------------------------------------- batching, threads, isolation


def test_lists_are_batched_not_looped(bundles: dict) -> None:
    bundle = builder.load(bundles[("roberta", "text-classification")])
    bundle.engine.session = RecordingSession(bundle.engine.session)
    expected = [bundle(t) for t in TEXTS]
    bundle.session.batches.clear()
    assert [[r] for r in bundle(TEXTS)] == expected
    assert bundle.session.batches == [len(TEXTS)]
    bundle(TEXTS, batch_size=4)
    assert bundle.session.batches[1:] == [4, 2]


@pytest.mark.parametrize("task", ["question-answering", "token-classification"])
def test_concurrent_calls_equal_sequential_calls(bundles: dict, task: str) -> None:
    bundle = builder.load(bundles[("distilbert", task)])
    if task == "question-answering":
        jobs = [
            dict(question=q, context=c, doc_stride=16 + i, top_k=2)
            for i, (q, c) in enumerate(
                [("Who?", TEXTS[0]), ("Where?", LONG), ("What?", TEXTS[3]), ("When?", TEXTS[4])] * 3
            )
        ]
    else:
        jobs = [
            dict(inputs=t, aggregation_strategy=s, stride=8 if s != "none" else None)
            for t in TEXTS
            for s in ("none", "first")
        ]
    sequential = [bundle(**job) for job in jobs]
    results: dict[int, Any] = {}

    def work(i: int) -> None:
        results[i] = bundle(**jobs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(len(jobs))] == sequential


def test_runtime_runs_every_task_without_build_time_packages(bundles: dict) -> None:
    paths = {task: str(bundles[("bert", task)]) for _, task in bundles}
    code = (
        "import sys, json, builder\n"
        f"paths = json.loads({json.dumps(json.dumps(paths))})\n"
        "builder.load(paths['feature-extraction'])(['a text', 'another'])\n"
        "builder.load(paths['text-classification'])(['a text', 'another'], top_k=None)\n"
        "builder.load(paths['token-classification'])('George went to Paris', aggregation_strategy='first')\n"
        "builder.load(paths['question-answering'])(question='Who?', context='George went to Paris')\n"
    )
    run_without_build_packages(code)


def test_predict_reads_json_lines_and_skips_bad_ones(bundles: dict, tmp_path: Path) -> None:
    lines = tmp_path / "in.jsonl"
    lines.write_text(
        '{"question": "Who?", "context": "George Washington was here."}\n'
        "{not json\n"
        '{"question": "", "context": "x"}\n'
        '{"inputs": {"question": "Who?", "context": "George was here."}, "parameters": {"top_k": 2}}\n'
    )
    proc = run_builder("predict", str(bundles[("bert", "question-answering")]), "--input", str(lines))
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == 2 and set(out[0]) == {"score", "start", "end", "answer"} and len(out[1]) == 2
    assert "line 2: not valid JSON" in proc.stderr and "line 3: ValueError" in proc.stderr
    strict = run_builder(
        "predict", str(bundles[("bert", "question-answering")]), "--input", str(lines), "--strict"
    )
    assert strict.returncode != 0


def test_hub_bundle_while_hub_unreachable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from builder.errors import BuilderError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BuilderError, match="the Hugging Face Hub is unreachable from here"):
        builder.load("someone/some-bundle")


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, "2", True])
def test_a_batch_size_below_one_is_a_clear_error(bundles: dict, batch_size: Any) -> None:
    """Before, batch_size=0 ran a batch of no rows and ONNX Runtime died with SIGFPE."""
    classify = builder.load(bundles[("bert", "text-classification")])
    with pytest.raises(ValueError, match=rf"batch_size={batch_size!r}: give an integer >= 1"):
        classify(["a", "b"], batch_size=batch_size)


def test_predict_and_the_build_refuse_batch_size_zero(
    bundles: dict, tiny_models: dict, tmp_path: Path
) -> None:
    lines = tmp_path / "in.jsonl"
    lines.write_text('{"inputs": ["a", "b"], "parameters": {"batch_size": 0}}\n"fine"\n')
    proc = run_builder("predict", str(bundles[("bert", "text-classification")]), "--input", str(lines))
    assert proc.returncode == 0 and "line 1: ValueError: batch_size=0" in proc.stderr
    assert len(proc.stdout.splitlines()) == 1
    proc = run_builder(
        f"model.source={tiny_models[('bert', 'text-classification')]}", "task=text-classification",
        "evaluation.batch_size=0", f"output_dir={tmp_path / 'out'}",
    )  # fmt: skip
    assert proc.returncode == 2 and "evaluation.batch_size=0" in proc.stderr
