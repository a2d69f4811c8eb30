"""Every user error: one clear message naming the key or path and the fix, a non-zero exit, no traceback,
and no bundle folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import bundles_in, run_builder


def fails_cleanly(proc, out: Path, *needles: str) -> str:  # type: ignore[no-untyped-def]
    text = proc.stderr + proc.stdout
    assert proc.returncode != 0, text
    assert "Traceback" not in text, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"
    assert bundles_in(out) == []
    leftovers = [p.name for p in out.iterdir()] if out.exists() else []
    assert not [n for n in leftovers if n.startswith((".staging", ".work", ".trash"))], leftovers
    return text


def test_unknown_group_option(tmp_path: Path) -> None:
    proc = run_builder("quantization=int3", f"output_dir={tmp_path}")
    fails_cleanly(proc, tmp_path, "quantization", "int3", "dynamic", "none")  # names the available options


def test_misspelled_key_and_wrong_type_reported_together(tmp_path: Path) -> None:
    proc = run_builder("quantization.per_chanel=true", "benchmark.iterations=many", f"output_dir={tmp_path}")
    text = fails_cleanly(
        proc, tmp_path, "quantization.per_channel?", "benchmark.iterations=many: expected an integer"
    )
    assert "2 configuration problems" in text


def test_conflicting_hydra_flags_give_one_message(tmp_path: Path) -> None:
    proc = run_builder("-m", "quantization=none,dynamic", f"output_dir={tmp_path}", "--cfg", "job")
    fails_cleanly(proc, tmp_path, "Only one of --run, --multirun, --cfg")


def test_added_unknown_key_rejected(tmp_path: Path) -> None:
    proc = run_builder("+model.colour=red", f"output_dir={tmp_path}")
    fails_cleanly(proc, tmp_path, "model.colour", "unknown key")


def test_wrong_value(tmp_path: Path) -> None:
    proc = run_builder("optimization.level=O7", f"output_dir={tmp_path}")
    fails_cleanly(proc, tmp_path, "optimization.level='O7'", "O1")


def test_nonexistent_local_model_folder(tmp_path: Path) -> None:
    proc = run_builder(f"model.source={tmp_path / 'no-such-model'}", f"output_dir={tmp_path / 'out'}")
    fails_cleanly(proc, tmp_path / "out", "no-such-model", "no such folder")


def test_hub_id_while_hub_unreachable(tmp_path: Path) -> None:
    proc = run_builder("model=distilbert_sst2", f"output_dir={tmp_path}", env={"HF_HUB_OFFLINE": "1"})
    fails_cleanly(
        proc, tmp_path, "distilbert-base-uncased-finetuned-sst-2-english", "unreachable", "model.source=DIR"
    )


def test_architecture_without_export(tmp_path: Path) -> None:
    model = tmp_path / "whisper-like"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "whisper", "d_model": 8}))
    proc = run_builder(f"model.source={model}", "task=question-answering", f"output_dir={tmp_path / 'out'}")
    fails_cleanly(proc, tmp_path / "out", "'whisper' has no export", "supported: bert")
    decoder = tmp_path / "gpt2-like"
    decoder.mkdir()
    (decoder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 8}))
    proc = run_builder(f"model.source={decoder}", "task=question-answering", f"output_dir={tmp_path / 'out'}")
    fails_cleanly(
        proc, tmp_path / "out", "task=question-answering: not available for 'gpt2'", "text-generation"
    )


def test_unwritable_output_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = run_builder(f"output_dir={blocker / 'bundles'}")
    fails_cleanly(proc, tmp_path, "output_dir=", "is a file, not a folder")


def test_unsupported_combination(tmp_path: Path) -> None:
    proc = run_builder("hardware=cuda", "quantization=dynamic", f"output_dir={tmp_path}")
    fails_cleanly(proc, tmp_path, "quantization=dynamic with hardware=cuda", "optimization=O4")


def test_full_error_env_shows_the_traceback(tmp_path: Path) -> None:
    proc = run_builder("optimization.level=O7", f"output_dir={tmp_path}", env={"HYDRA_FULL_ERROR": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_fidelity_gate_failure_publishes_nothing(tiny_models: dict, tmp_path: Path) -> None:
    model = tiny_models[("bert", "feature-extraction")]
    proc = run_builder(
        f"model.source={model}", "fidelity.min_cosine=1.0", "benchmark=none", f"output_dir={tmp_path}"
    )
    fails_cleanly(proc, tmp_path, "fidelity", "fidelity.min_cosine=1.0", "No bundle was written")


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_interrupted_build_leaves_no_bundle(tiny_models: dict, tmp_path: Path, monkeypatch, exc) -> None:  # type: ignore[no-untyped-def]
    """A build stopped after the model is built but before it is published leaves nothing behind."""
    import builder
    from builder.make import stages

    def stop(ctx) -> dict:  # type: ignore[no-untyped-def]
        assert ctx.graphs["model"].exists()
        raise exc("stopped")

    monkeypatch.setattr(stages, "STAGES", (*stages.STAGES, stages.Stage("stop", stop)))
    model = tiny_models[("bert", "feature-extraction")]
    with pytest.raises(exc):
        builder.build(
            overrides=[f"model.source={model}", "benchmark=none", f"output_dir={tmp_path}"], quiet=True
        )
    # No bundle and no partial folders; only complete stage-cache entries of the stages that finished.
    assert [p.name for p in tmp_path.iterdir()] == [".cache"]
    from builder.make.cache import StageCache

    cache = StageCache(tmp_path / ".cache")
    for stage, info in cache.info()["stages"].items():
        for entry in (tmp_path / ".cache" / stage).iterdir():
            if entry.is_dir():
                assert cache.load(stage, entry.name) is not None  # intact
        assert info["entries"] == 1
