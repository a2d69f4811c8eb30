"""Evaluation from local files (every format, column mapping), the quality gate, and bad datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import bundles_in, read_json, run_builder, slow_beyond

SENTIMENT = [
    ("I loved this film, it was wonderful.", "positive"),
    ("Terrible food and rude staff.", "negative"),
    ("A brilliant, moving story.", "positive"),
    ("The worst purchase I ever made.", "negative"),
]


def build(model: Path, out: Path, *extra: str, env: dict | None = None):  # type: ignore[no-untyped-def]
    return run_builder(
        f"model.source={model}",
        "task=text-classification",
        "benchmark=none",
        "fidelity.min_agreement=0.5",
        f"output_dir={out}",
        *extra,
        env=env,
    )


@pytest.mark.parametrize("fmt", slow_beyond(["jsonl", "json", "csv", "parquet"], ("jsonl", "csv")))
def test_local_file_with_column_mapping(tiny_models: dict, tmp_path: Path, fmt: str) -> None:
    import datasets

    rows = [{"sentence": t, "sentiment": lab} for t, lab in SENTIMENT]
    path = tmp_path / f"reviews.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "json":
        path.write_text(json.dumps(rows))
    else:
        getattr(datasets.Dataset.from_list(rows), f"to_{fmt}")(str(path))
    out = tmp_path / "out"
    proc = build(
        tiny_models[("bert", "text-classification")],
        out,
        f"evaluation.dataset={path}",
        "evaluation.columns.text=sentence",
        "evaluation.columns.label=sentiment",
    )
    assert proc.returncode == 0, proc.stderr
    (folder,) = bundles_in(out)
    ev = read_json(folder / "metrics.json")["evaluation"]
    assert ev["examples"] == 4 and ev["dataset"] == str(path.resolve())
    assert 0 <= ev["bundle"]["accuracy"] <= 1 and "macro_f1" in ev["baseline"]
    assert "accuracy" in (folder / "README.md").read_text()


def test_max_samples_and_seed_pick_a_reproducible_subset(tiny_models: dict, tmp_path: Path) -> None:
    picks = []
    for run in ("a", "b"):
        proc = build(
            tiny_models[("bert", "text-classification")],
            tmp_path / run,
            "evaluation.max_samples=7",
            "evaluation.seed=3",
        )
        assert proc.returncode == 0, proc.stderr
        (folder,) = bundles_in(tmp_path / run)
        ev = read_json(folder / "metrics.json")["evaluation"]
        assert ev["examples"] == 7 and ev["rows_available"] == 60
        picks.append(ev["bundle"])
    assert picks[0] == picks[1]


def test_gate_that_cannot_be_met_publishes_nothing(tiny_models: dict, tmp_path: Path) -> None:
    proc = build(
        tiny_models[("bert", "text-classification")],
        tmp_path,
        "quantization=none",
        "evaluation.gate.max_relative_drop=-0.5",
    )  # demands 150% of the baseline
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "quality gate" in proc.stderr and "evaluation.gate.max_relative_drop=-0.5" in proc.stderr
    assert bundles_in(tmp_path) == []
    (report,) = (tmp_path / ".rejected").glob("*.json")
    record = read_json(report)
    assert record["metrics"]["evaluation"]["gate"]["passed"] is False
    assert "baseline" in record["metrics"]["evaluation"] and str(report) in proc.stderr


def test_gate_that_holds_is_recorded(tiny_models: dict, tmp_path: Path) -> None:
    proc = build(
        tiny_models[("bert", "text-classification")],
        tmp_path,
        "quantization=none",
        "evaluation.gate.max_relative_drop=0.01",
    )
    assert proc.returncode == 0, proc.stderr
    (folder,) = bundles_in(tmp_path)
    assert read_json(folder / "metrics.json")["evaluation"]["gate"]["passed"] is True
    assert "Quality gate" in (folder / "README.md").read_text()


@pytest.mark.parametrize(
    ("content", "extra", "needle"),
    [
        ("", [], "the file is empty"),
        ('{"sentence": "a", "label": "positive"}\n', [], "no column 'text'"),
        ('{"text": ["a"], "label": "positive"}\n', [], "row 1 column 'text': expected text"),
        ('{"text": "a", "label": 1.5}\n', [], "expected a label name or id"),
        ('{"text": "a", "label": "positive"}\n', ["evaluation.columns.label=stars"], "no column 'stars'"),
        ("{not json\n", [], "cannot read it as json"),
    ],
    ids=["empty", "missing-column", "wrong-type", "bad-label", "bad-mapping", "malformed"],
)
def test_bad_local_dataset_is_one_clear_error(tmp_path: Path, content: str, extra: list, needle: str) -> None:
    from builder.config import compose_config
    from builder.errors import ConfigError
    from builder.make.eval_data import load_examples

    path = tmp_path / "data.jsonl"
    path.write_text(content)
    cfg = compose_config(["task=text-classification", f"evaluation.dataset={path}", *extra])
    with pytest.raises(ConfigError) as err:
        load_examples(cfg)
    assert f"evaluation.dataset={path}" in str(err.value) and needle in str(err.value), str(err.value)


def test_bad_dataset_through_the_cli_fails_cleanly(tiny_models: dict, tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"sentence": "a", "label": "positive"}\n')
    proc = build(tiny_models[("bert", "text-classification")], tmp_path / "out", f"evaluation.dataset={path}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "evaluation.columns.text=<column>" in proc.stderr
    assert bundles_in(tmp_path / "out") == []


def test_missing_file_and_unreachable_hub(tiny_models: dict, tmp_path: Path) -> None:
    proc = build(
        tiny_models[("bert", "text-classification")], tmp_path, f"evaluation.dataset={tmp_path / 'no.jsonl'}"
    )
    assert proc.returncode != 0 and "no such file" in proc.stderr
    proc = build(
        tiny_models[("bert", "text-classification")], tmp_path, "evaluation=sst2", env={"HF_HUB_OFFLINE": "1"}
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "unreachable" in proc.stderr and "local .jsonl" in proc.stderr


def test_shipped_sets_have_what_the_issue_asks() -> None:
    from importlib import resources

    rows = {
        task: [
            json.loads(line)
            for line in (resources.files("builder.data") / f"{task}.jsonl").read_text().splitlines()
        ]
        for task in (
            "feature-extraction",
            "question-answering",
            "text-classification",
            "token-classification",
        )
    }
    sts = rows["feature-extraction"]
    assert len(sts) >= 100 and {r["kind"] for r in sts} == {"paraphrase", "related", "unrelated"}
    assert any(not r["answers"]["text"] for r in rows["question-answering"])  # unanswerable questions
    for r in rows["question-answering"]:
        for text, start in zip(r["answers"]["text"], r["answers"]["answer_start"], strict=True):
            assert r["context"][start : start + len(text)] == text
    assert all(len(r["tokens"]) == len(r["tags"]) for r in rows["token-classification"])
