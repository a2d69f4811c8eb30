"""Every config file composes and validates; validation reports every problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from builder.config import (
    CONF_DIR,
    ConfigError,
    combination_problems,
    compose_config,
    override_problems,
    validate,
)
from builder.hardware import host_can_run
from builder.tasks import TASKS

GROUPS = ("model", "task", "hardware", "optimization", "quantization", "benchmark")
# Options that need a partner to form a supported build.
PARTNERS = {
    ("hardware", "cuda"): ["optimization=O4", "quantization=none"],
    ("optimization", "O4"): ["hardware=cuda", "quantization=none"],
    ("task", "zero-shot-classification"): ["model=deberta_v3_zeroshot"],  # needs an NLI model
    ("task", "text-generation"): ["model=smollm2_135m_instruct"],  # needs a decoder
    **{("task", t): ["model=t5_small"] for t in ("text2text-generation", "summarization", "translation")},
}


def all_options() -> list[tuple[str, str]]:
    return [(g, p.stem) for g in GROUPS for p in sorted((Path(CONF_DIR) / g).glob("*.yaml"))]


def test_every_group_has_its_options() -> None:
    options = all_options()
    for expected in (
        [("hardware", h) for h in ("avx2", "avx512_vnni", "cuda", "auto")]
        + [("optimization", o) for o in ("none", "O1", "O2", "O3", "O4")]
        + [("quantization", "none"), ("quantization", "dynamic")]
        + [("model", m) for m in ("minilm_l6", "roberta_base_squad2", "distilbert_sst2", "bert_ner")]
        + [("model", m) for m in ("all_mpnet_base_v2", "modernbert_base", "deberta_v3_zeroshot")]
        + [("model", m) for m in ("smollm2_135m_instruct", "qwen2_5_0_5b_instruct")]
        + [("model", m) for m in ("t5_small", "bart_large_cnn")]
        + [("task", t) for t in TASKS]
    ):
        assert expected in options


@pytest.mark.parametrize(("group", "option"), all_options(), ids=lambda v: str(v))
def test_every_config_file_composes_and_validates(group: str, option: str, tmp_path: Path) -> None:
    overrides = [f"{group}={option}", f"output_dir={tmp_path}", *PARTNERS.get((group, option), [])]
    cfg = compose_config(overrides)
    assert not OmegaConf.missing_keys(cfg)
    assert cfg.hardware.name != "auto"
    validate(cfg)  # raises ConfigError on any problem


def test_hardware_auto_picks_a_profile_this_host_runs() -> None:
    cfg = compose_config([])
    assert cfg.hardware.name in ("avx2", "avx512_vnni")
    assert host_can_run(cfg.hardware)
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if " avx512_vnni" in flags:
        assert cfg.hardware.name == "avx512_vnni"


def test_hardware_auto_keeps_user_overrides_of_the_profile() -> None:
    cfg = compose_config(["hardware.intra_op_threads=3"])
    assert cfg.hardware.intra_op_threads == 3


def test_model_config_chooses_its_task_and_command_line_wins() -> None:
    assert compose_config(["model=roberta_base_squad2"]).task.name == "question-answering"
    assert compose_config(["model=bert_ner"]).task.name == "token-classification"
    assert (
        compose_config(["model=distilbert_sst2", "task=feature-extraction"]).task.name == "feature-extraction"
    )
    assert compose_config(["model=roberta_base_squad2"]).model.revision  # pinned


def test_quantization_brings_its_fidelity_bounds() -> None:
    assert compose_config(["quantization=none"]).fidelity.min_cosine > compose_config([]).fidelity.min_cosine
    assert compose_config(["quantization=none", "fidelity.min_cosine=0.5"]).fidelity.min_cosine == 0.5


def test_validation_reports_every_problem_at_once(tmp_path: Path) -> None:
    cfg = compose_config(
        [
            "+model.foo=1",
            "optimization.level=O9",
            "quantization.method=xyz",
            "task.name=translate-everything",
            f"output_dir={tmp_path}",
        ]
    )
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert len(err.value.problems) == 1 and "model.foo" in str(err.value)  # unknown keys first
    cfg = compose_config(
        [
            "optimization.level=O9",
            "quantization.method=xyz",
            "task.name=translate-everything",
            "hardware.session_optimization=max",
            f"output_dir={tmp_path}",
        ]
    )
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    text = str(err.value)
    assert len(err.value.problems) == 4
    for key in (
        "optimization.level='O9'",
        "quantization.method='xyz'",
        "task.name='translate-everything'",
        "hardware.session_optimization='max' is not one of: disable, basic, extended, all",
    ):
        assert key in text


def test_unsupported_combinations_say_why_and_how_to_fix() -> None:
    problems = combination_problems(compose_config(["hardware=cuda", "quantization=dynamic"]))
    assert any("dynamic" in p and "O4" in p for p in problems)
    problems = combination_problems(compose_config(["hardware=avx2", "optimization=O4", "quantization=none"]))
    assert any("fp16" in p and "hardware=cuda" in p for p in problems)
    problems = combination_problems(compose_config(["hardware=avx2", "quantization.activation_type=int8"]))
    assert any("uint8" in p for p in problems)


def test_command_line_keys_and_types_are_checked_before_composing() -> None:
    problems = override_problems(
        [
            "quantization.per_chanel=true",
            "optimisation=O2",
            "benchmark.iterations=many",
            "fidelity.max_abs_diff=null",
            "hardware.intra_op_threads=2",
            "model.revision=null",
            "benchmark.baseline=maybe",
        ]
    )
    assert len(problems) == 4
    assert "Did you mean quantization.per_channel?" in problems[0]
    assert "Did you mean optimization?" in problems[1]
    assert "expected an integer" in problems[2]
    assert "expected true or false" in problems[3]


def test_sweep_overrides_are_checked_value_by_value() -> None:
    assert (
        override_problems(["-m", "quantization.per_channel=true,false", "benchmark.warmup=range(1,4)"]) == []
    )
    problems = override_problems(["--multirun", "benchmark.iterations=10,many,50"])
    assert problems == ["benchmark.iterations=many: expected an integer"]
    # Without -m a comma list is one (wrong) value.
    assert override_problems(["quantization.per_channel=true,false"]) != []


@pytest.mark.parametrize("launcher", ["slurm", "joblib", "submitit_local"])
def test_launcher_configs_compose(launcher: str) -> None:
    """The documented cluster launcher (and the local ones) compose against the installed plugins, and the
    sweep folder resolves to a content-named folder under output_dir."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import builder.make.report  # noqa: F401  (the resolver naming sweep folders)

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    target = cfg.hydra.launcher._target_
    expected = {"slurm": "SlurmLauncher", "joblib": "JoblibLauncher", "submitit_local": "LocalLauncher"}
    assert target.endswith(expected[launcher])
    if launcher == "slurm":
        assert cfg.hydra.launcher.partition and cfg.hydra.launcher.gpus_per_node == 0
    sweep_dir = Path(str(cfg.hydra.sweep.dir))
    assert sweep_dir.parent == Path(cfg.output_dir) / ".sweeps" and len(sweep_dir.name) == 12


def test_task_settings_are_the_tasks_own(tmp_path: Path) -> None:
    """Each task's settings are its own schema: a setting of another task is refused before composing, with the
    task's own settings named; `builder tasks` lists them from the registry."""
    from conftest import run_builder

    assert override_problems(["task=text-classification", "task.pooling=cls"]) == [
        "task.pooling: not a setting of task=text-classification (its settings: name)"
    ]
    assert override_problems(["task.pooling=cls"]) == []  # the default task (feature-extraction) has it
    assert "Did you mean task.pooling?" in override_problems(["task.poling=cls"])[0]
    assert "quote the value" in override_problems(["task.hypothesis_template=About {}."])[0]
    proc = run_builder("task=question-answering", "task.normalize=false", f"output_dir={tmp_path}")
    assert proc.returncode == 2 and "not a setting of task=question-answering" in proc.stderr
    listing = run_builder("tasks")
    assert listing.returncode == 0
    for name, task in TASKS.items():
        assert f"{name}\n  {task.summary}" in listing.stdout
    assert "task.pooling='auto', task.normalize=true" in listing.stdout
