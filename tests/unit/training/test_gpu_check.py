"""benchmarks/gpu_check.sh: the parts a CPU can check (arguments, FLOP counting, the figure
file, the discovery loop) run end to end through ``--dry-run``; the GPU figures need a GPU."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def _gpu_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_flop_counter_counts_forward_and_backward_of_a_linear() -> None:
    gpu_check = _gpu_check()
    batch, n_in, n_out = 32, 24, 8
    layer = nn.Linear(n_in, n_out)
    x = torch.randn(batch, n_in, requires_grad=True)

    def step() -> None:
        layer(x).sum().backward()

    # forward 2*B*in*out; backward: grad of the input and of the weight, 2*B*in*out each
    assert gpu_check.counted_flops(step) == 6 * batch * n_in * n_out


def test_peak_table_prefers_the_specific_name() -> None:
    gpu_check = _gpu_check()
    assert gpu_check.table_peak("NVIDIA H100 PCIe") == 756.0
    assert gpu_check.table_peak("NVIDIA H100 80GB HBM3") == 989.0
    assert gpu_check.table_peak("NVIDIA A10G") == 70.0
    assert gpu_check.table_peak("Some Future GPU") is None  # -> the measured GEMM


def test_defaults_are_the_gpu_budgets_and_a_dry_run_is_tiny() -> None:
    gpu_check = _gpu_check()
    real = gpu_check.parse_args([])
    assert real.budgets == ["20M", "200M"] and real.backend == "inductor"
    dry = gpu_check.parse_args(["--dry-run", "--budgets", "10k"])
    assert dry.budgets == ["10k"] and dry.backend == "eager" and dry.max_batch == 256


@pytest.mark.slow
def test_dry_run_writes_every_figure(tmp_path: Path) -> None:
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--steps", "1"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    text = (tmp_path / "gpu_benchmark.txt").read_text()
    assert "DRY RUN" in text
    for budget in ("10k", "20k"):
        counted = re.search(rf"^{budget}: ([\d,]+) params.*counted ([\d.e+]+) FLOP", text, re.M)
        assert counted is not None, text
        assert float(counted.group(2)) > 0
        for mode in ("eager", "compiled"):
            assert re.search(rf"^{budget} {mode}: .* MFU [\d.]+%", text, re.M), (budget, mode)
        assert re.search(rf"^{budget} compile: .* active True", text, re.M)
    # the discovery loop ran into the simulated limit (48) and kept 80% of it, a multiple of 8
    assert re.search(r"batch discovery 20k: largest 48, chosen 32 .* SIMULATED", text)
    assert re.search(r"^NVML sensor: \w+", text, re.M)


def test_without_cuda_and_without_dry_run_it_refuses(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this host has CUDA")
    gpu_check = _gpu_check()
    assert gpu_check.main(["--out", str(tmp_path / "f.txt")]) == 2
    assert not (tmp_path / "f.txt").exists()
