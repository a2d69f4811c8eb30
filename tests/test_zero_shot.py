"""zero-shot-classification bundles answer as transformers 5's pipeline("zero-shot-classification") does on the
same tiny NLI models: same labels in the same order, scores within 1e-4; every pair in padded batches; the
entailment label found as transformers finds it, first or last; evaluation and the gate on its own data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import RecordingSession, bundles_in, read_json, run_builder, same
from tiny_models import NLI, make_model

import builder

LONG = " ".join(
    ["George Washington visited Apple Inc. in Cupertino, California, with people from Paris."] * 20
)
TWENTY = [
    "politics", "sports", "technology", "cooking", "health", "business", "travel", "science", "music", "art",
    "history", "weather", "law", "education", "religion", "fashion", "finance", "gaming", "movies", "nature",
]  # fmt: skip
CASES: list[tuple[Any, tuple, dict[str, Any]]] = [
    ("George Washington was the first president.", (["politics", "cooking", "sports"],), {}),
    ("I loved this film, the acting was superb!", ("positive, negative , ,neutral",), {}),  # a string, split
    (
        "Apple Inc. is headquartered in Cupertino.",
        (["business", "technology", "travel"],),
        {"multi_label": True},
    ),
    ("The quick brown fox jumps over the lazy dog.", (["animals"],), {}),  # one label: scored alone
    ("Paris is the capital and largest city of France.", (TWENTY,), {}),
    ("Paris is the capital and largest city of France.", (TWENTY,), {"multi_label": True}),
    ("Café naïve résumé — ümlauts, ß, emoji 🙂 and 日本語.", (["food", "language", "emoji 🙂"],), {}),
    (LONG, (["history", "geography"],), {}),  # longer than the model's maximum: only the sequence is cut
    (
        ["Terrible service.", "What a wonderful day.", "The senate passed the bill."],
        (["bad", "good", "law"],),
        {},
    ),
    (
        "Who was the first president?",
        (),
        {"candidate_labels": ["history", "music"], "hypothesis_template": "It is about {}."},
    ),
    (
        "The match was great.",
        (["sports", "sports", "politics"],),
        {},
    ),  # duplicates kept, as transformers does
]


@pytest.fixture(scope="module")
def nli_models(tiny_models: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Entailment first (BERT), last (RoBERTa), and a two-label entailment / not_entailment DeBERTa-v3."""
    root = tmp_path_factory.mktemp("nli")
    return {
        "bert": tiny_models[("bert", "zero-shot-classification")],
        "roberta": make_model(
            root, "roberta", "zero-shot-classification", labels=NLI[::-1], name="roberta-last"
        ),
        "deberta-v2": make_model(
            root,
            "deberta-v2",
            "zero-shot-classification",
            labels=["entailment", "not_entailment"],
            name="deberta",
        ),
    }


@pytest.fixture(scope="module")
def bundles(nli_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("zero-shot")
    return {
        arch: builder.build(
            overrides=[
                f"model.source={source}",
                "task=zero-shot-classification",
                "quantization=none",
                "benchmark=none",
                f"output_dir={out / arch}",
            ],
            quiet=True,
        )
        for arch, source in nli_models.items()
    }


@pytest.mark.parametrize("arch", ["bert", "roberta", "deberta-v2"])
def test_zero_shot_matches_transformers(bundles: dict, nli_models: dict, arch: str) -> None:
    from transformers import pipeline

    ours = builder.load(bundles[arch])
    theirs = pipeline("zero-shot-classification", model=str(nli_models[arch]), device="cpu")
    label2id = read_json(nli_models[arch] / "config.json")["label2id"]
    assert ours.pipeline.entailment_id == theirs.entailment_id == label2id["entailment"]
    for sequences, args, kwargs in CASES:
        same(ours(sequences, *args, **kwargs), theirs(sequences, *args, **kwargs), f"{arch} {args} {kwargs}")


def test_errors_are_transformers_errors(bundles: dict) -> None:
    zsc = builder.load(bundles["bert"])
    with pytest.raises(ValueError, match="at least one label"):
        zsc("a text", candidate_labels=[])
    with pytest.raises(ValueError, match="at least one label"):
        zsc("a text", candidate_labels=" , ")
    with pytest.raises(ValueError, match="was not able to be formatted"):
        zsc("a text", ["a", "b"], hypothesis_template="No placeholder.")
    with pytest.raises(ValueError, match="candidate_labels"):
        zsc("a text")


def test_every_pair_goes_to_the_session_in_padded_batches(bundles: dict) -> None:
    zsc = builder.load(bundles["bert"])
    zsc.engine.session = RecordingSession(zsc.engine.session)
    texts, labels = ["one text", "and a second, longer text"], ["a", "b", "c"]
    together = zsc(texts, labels)
    assert zsc.session.batches == [6]
    assert together == [zsc(t, labels) for t in texts]
    zsc.session.batches.clear()
    zsc(texts, labels, batch_size=4)
    assert zsc.session.batches == [4, 2]


def test_bundle_defaults_come_from_the_task_settings(nli_models: dict, tmp_path: Path) -> None:
    folder = builder.build(
        overrides=[
            f"model.source={nli_models['bert']}",
            "task=zero-shot-classification",
            "task.hypothesis_template='The topic is {}.'",  # quoted: braces are Hydra syntax
            "task.multi_label=true",
            "quantization=none",
            "benchmark=none",
            "evaluation=none",
            f"output_dir={tmp_path}",
        ],
        quiet=True,
    )
    zsc = builder.load(folder)
    assert zsc.runtime["options"] == {"hypothesis_template": "The topic is {}.", "multi_label": True}
    labels = ["politics", "cooking"]
    assert zsc("A text.", labels) == zsc(
        "A text.", labels, hypothesis_template="The topic is {}.", multi_label=True
    )


def test_predict_streams_zero_shot_lines(bundles: dict, tmp_path: Path) -> None:
    lines = tmp_path / "in.jsonl"
    lines.write_text(
        '{"sequences": "The senate passed the bill.", "candidate_labels": ["politics", "sports"]}\n'
        '{"inputs": "A goal in the last minute.", "parameters": {"candidate_labels": "politics, sports"}}\n'
        '{"sequences": "No labels here.", "candidate_labels": []}\n'
    )
    proc = run_builder("predict", str(bundles["bert"]), "--input", str(lines))
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == 2 and sorted(out[0]["labels"]) == ["politics", "sports"]
    assert out[1]["sequence"] == "A goal in the last minute." and "line 3: ValueError" in proc.stderr


def test_a_model_without_an_entailment_label_is_refused(tiny_models: dict, tmp_path: Path) -> None:
    model = tiny_models[("bert", "text-classification")]  # labels NEGATIVE / NEUTRAL / POSITIVE
    proc = run_builder(f"model.source={model}", "task=zero-shot-classification", f"output_dir={tmp_path}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "entailment label" in proc.stderr and "NEGATIVE, NEUTRAL, POSITIVE" in proc.stderr
    assert bundles_in(tmp_path) == []


def test_a_template_without_a_placeholder_is_refused(nli_models: dict, tmp_path: Path) -> None:
    proc = run_builder(
        f"model.source={nli_models['bert']}",
        "task=zero-shot-classification",
        "task.hypothesis_template=No placeholder.",
        f"output_dir={tmp_path}",
    )
    assert proc.returncode == 2 and "task.hypothesis_template='No placeholder.'" in proc.stderr


def test_evaluation_on_the_shipped_set_a_local_file_and_the_gate(nli_models: dict, tmp_path: Path) -> None:
    common = [
        f"model.source={nli_models['roberta']}",
        "task=zero-shot-classification",
        "quantization=none",
        "benchmark=none",
    ]
    proc = run_builder(
        *common, "evaluation.gate.max_relative_drop=0.01", f"output_dir={tmp_path / 'builtin'}"
    )
    assert proc.returncode == 0, proc.stderr
    (folder,) = bundles_in(tmp_path / "builtin")
    ev = read_json(folder / "metrics.json")["evaluation"]
    assert ev["metric"] == "accuracy" and ev["examples"] == 60 and ev["gate"]["passed"]
    assert ev["bundle"]["accuracy"] == pytest.approx(ev["baseline"]["accuracy"])  # fp32: the same predictions

    data = tmp_path / "topics.jsonl"
    rows = [
        {"sentence": "The striker scored twice.", "labels": "sports, politics", "gold": "sports"},
        {"sentence": "Parliament voted on the bill.", "labels": ["sports", "politics"], "gold": "politics"},
        {"sentence": "Bake the bread for an hour.", "labels": ["cooking", "travel"], "gold": "cooking"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    mapping = ["evaluation.columns.text=sentence", "evaluation.columns.candidate_labels=labels"]
    mapping.append("evaluation.columns.label=gold")
    proc = run_builder(*common, f"evaluation.dataset={data}", *mapping, f"output_dir={tmp_path / 'local'}")
    assert proc.returncode == 0, proc.stderr
    (folder,) = bundles_in(tmp_path / "local")
    ev = read_json(folder / "metrics.json")["evaluation"]
    assert ev["examples"] == 3 and ev["dataset"] == str(data.resolve())
    # Computed here from the bundle's own answers: the recorded accuracy is the share it got right.
    zsc = builder.load(folder)
    right = [zsc(r["sentence"], r["labels"])["labels"][0] == r["gold"] for r in rows]
    assert ev["bundle"]["accuracy"] == pytest.approx(sum(right) / 3)

    proc = run_builder(*common, "evaluation.gate.max_relative_drop=-0.5", f"output_dir={tmp_path / 'gate'}")
    assert proc.returncode != 0 and "quality gate" in proc.stderr and bundles_in(tmp_path / "gate") == []


def test_a_gold_label_outside_the_candidates_is_a_clear_error(nli_models: dict, tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "A goal.", "candidate_labels": ["politics", "cooking"], "label": "sports"}\n')
    proc = run_builder(
        f"model.source={nli_models['bert']}",
        "task=zero-shot-classification",
        f"evaluation.dataset={data}",
        "benchmark=none",
        f"output_dir={tmp_path / 'out'}",
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "'sports' is not one of its candidate_labels" in proc.stderr
