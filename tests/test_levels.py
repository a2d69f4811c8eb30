"""Optimization levels (Optimum's meanings), fp16 for GPU profiles, and what ships in the package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import onnx
import pytest
from conftest import bundles_in, read_json, run_builder, run_without_build_packages


@pytest.fixture(scope="module")
def levels(tiny_models: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("levels")
    model = tiny_models[("distilbert", "token-classification")]
    common = [f"model.source={model}", "task=token-classification", "benchmark=quick", f"output_dir={out}"]
    proc = run_builder("-m", "optimization=none,O1,O3", "quantization=none", "hardware=avx2", *common)
    assert proc.returncode == 0, proc.stderr
    proc = run_builder("optimization=O4", "hardware=cuda", "quantization=none", *common)
    assert proc.returncode == 0, proc.stderr
    # The seed's recipe, which fails in Optimum: quantize the O3-fused graph (contrib ops, approximated GELU).
    proc = run_builder("optimization=O3", "quantization=dynamic", "hardware=avx512_vnni", *common)
    assert proc.returncode == 0, proc.stderr
    found = {}
    for folder in bundles_in(out):
        runtime = read_json(folder / "manifest.json")["runtime"]
        key = runtime["optimization"] + ("+int8" if runtime["quantization"]["method"] == "dynamic" else "")
        found[key] = folder
    return found


def test_levels_apply_what_they_promise(levels: dict[str, Path]) -> None:
    assert set(levels) == {"none", "O1", "O3", "O4", "O3+int8"}
    fused = {
        level: read_json(f / "metrics.json")["optimize"].get("fused_operators") for level, f in levels.items()
    }
    assert fused["none"] is None  # the exported graph as is
    assert "Attention" not in fused["O1"]  # basic optimizations only
    assert fused["O3"]["Attention"] == 2 and fused["O3"]["FastGelu"] == 2  # fusions + GELU approximation
    for level in ("none", "O1", "O3"):
        assert (
            read_json(levels[level] / "metrics.json")["fidelity"]["outputs"]["logits"]["cosine_min"] > 0.9999
        )


def test_fused_o3_graph_quantizes(levels: dict[str, Path]) -> None:
    metrics = read_json(levels["O3+int8"] / "metrics.json")
    assert metrics["optimize"]["fused_operators"]["FastGelu"] == 2
    assert metrics["quantize"]["quantized_nodes"] > 0
    ops = {n.op_type for n in onnx.load(str(levels["O3+int8"] / "model.onnx")).graph.node}
    assert "QAttention" in ops and "FastGelu" in ops
    assert metrics["fidelity"]["outputs"]["logits"]["cosine_mean"] > 0.99


def test_fp16_bundle_for_gpu_keeps_fp32_io_and_is_honest_about_the_host(levels: dict[str, Path]) -> None:
    model = onnx.load(str(levels["O4"] / "model.onnx"))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in model.graph.output)
    metrics = read_json(levels["O4"] / "metrics.json")
    if not metrics["host"]["gpus"]:  # built here for a GPU: said, not hidden
        assert metrics["benchmark"]["measured"] is False and "cuda" in metrics["benchmark"]["reason"]
        assert metrics["host"]["runs_profile"] is False
        assert metrics["fidelity"]["on_profile_hardware"] is False
        assert "cannot run the `cuda` profile" in (levels["O4"] / "README.md").read_text()
    runtime = read_json(levels["O4"] / "manifest.json")["runtime"]
    assert runtime["hardware"]["providers"][0] == "CUDAExecutionProvider"


def test_runtime_loads_a_bundle_without_build_time_packages(
    levels: dict[str, Path], tiny_models: dict, tmp_path: Path
) -> None:
    out = tmp_path / "fe"
    proc = run_builder(
        f"model.source={tiny_models[('bert', 'feature-extraction')]}", "benchmark=none", f"output_dir={out}"
    )
    assert proc.returncode == 0, proc.stderr
    (folder,) = bundles_in(out)
    code = (
        "import sys, builder, numpy as np\n"
        f"b = builder.load({str(folder)!r})\n"
        "e = b(['hello world', 'a second, longer text'])\n"
        "assert e.shape[0] == 2 and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-4)\n"
    )
    run_without_build_packages(code)


def test_wheel_ships_every_config(tmp_path: Path) -> None:
    root = Path(__file__).parents[1]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(root),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("ort_bundle_builder-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for yaml_file in (root / "conf").rglob("*.yaml"):
        assert f"builder/conf/{yaml_file.relative_to(root / 'conf').as_posix()}" in names


def test_sessions_follow_the_hardware_profile(tiny_models: dict, tmp_path: Path) -> None:
    import onnxruntime

    import builder

    model = tiny_models[("distilbert", "token-classification")]
    folder = builder.build(
        overrides=[
            f"model.source={model}",
            "task=token-classification",
            "optimization=none",
            "quantization=none",
            "evaluation=none",
            "benchmark=none",
            "hardware=avx2",
            "hardware.intra_op_threads=1",
            "hardware.session_optimization=basic",
            f"output_dir={tmp_path}",
            "cache_dir=null",
        ],
        quiet=True,
    )
    options = builder.load(folder).session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.graph_optimization_level == onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options = builder.load(folder, intra_op_threads=2).session.get_session_options()
    assert options.intra_op_num_threads == 2


def test_a_gpu_without_onnxruntime_gpu_does_not_count_as_cuda_hardware(
    tiny_models: dict, tmp_path: Path
) -> None:
    """A machine with a GPU (a stand-in nvidia-smi here) whose onnxruntime has no CUDA provider: a cuda
    bundle built there says its latency was not measured, and hardware=auto does not pick cuda."""
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'Stand-in GPU 80GB'\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "CUDA_VISIBLE_DEVICES": "0"}
    model = tiny_models[("distilbert", "token-classification")]
    common = [f"model.source={model}", "task=token-classification", "optimization=O4", "quantization=none"]
    common += ["evaluation=none", "benchmark=quick", f"output_dir={tmp_path / 'out'}", "cache_dir=null"]
    proc = run_builder("hardware=cuda", *common, env=env)
    assert proc.returncode == 0, proc.stderr
    (folder,) = bundles_in(tmp_path / "out")
    metrics = read_json(folder / "metrics.json")
    assert metrics["host"]["gpus"] == ["Stand-in GPU 80GB"]
    assert "CUDAExecutionProvider" not in metrics["host"]["onnxruntime_providers"]
    assert metrics["host"]["runs_profile"] is False
    assert metrics["benchmark"]["measured"] is False
    assert "providers" in metrics["benchmark"]["reason"]
    proc = run_builder("hardware=auto", *common, env=env)
    assert proc.returncode == 2 and "hardware=auto: no hardware profile" in proc.stderr


def test_gpu_bundle_falls_back_to_cpu_with_a_warning(levels: dict[str, Path]) -> None:
    import onnxruntime

    import builder

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: nothing to fall back from")
    with pytest.warns(RuntimeWarning, match="CUDAExecutionProvider not available"):
        bundle = builder.load(levels["O4"])
    assert bundle.session.get_providers() == ["CPUExecutionProvider"]
    entities = bundle("George Washington visited Paris", aggregation_strategy="simple", ignore_labels=[])
    assert entities and {"entity_group", "score", "word", "start", "end"} <= set(entities[0])
