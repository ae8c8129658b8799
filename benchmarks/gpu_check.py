"""The GPU check: bf16 MFU of the 20M and 200M budgets (eager and compiled), the batch-size
discovery's real out-of-memory path and the NVML sensor, written to one text file of figures.

On a CUDA host (``bash benchmarks/gpu_check.sh`` wraps this under a time limit):

- peak: the GPU's dense bf16 TFLOP/s from ``PEAK_BF16_TFLOPS`` (by device name), and a
  measured bf16 GEMM (the achievable ceiling; the MFU reference when the name is unknown);
- per budget: the trainer's step (bf16 autocast, BCE-with-logits, backward, gradient clipping,
  the trainer's AdamW), eager and through the trainer's ``CompiledForward`` (torch.compile
  ``default``); FLOPs per step counted by ``torch.utils.flop_counter.FlopCounterMode`` on the
  eager step (and the 6 * params * tokens estimate beside it); MFU = counted FLOPs / step time
  / peak;
- batch-size discovery: ``largest_fitting_batch`` with the trainer's ``make_try_step`` on the
  largest budget, doubling into real CUDA out-of-memory errors; reports the batch, the number of
  OOMs survived and a step at the chosen batch afterwards (the memory really came back);
- NVML: ``finscale.thermal.sensors.NvmlSensor().read()``.

``--dry-run`` runs every part on the CPU with tiny budgets, a tiny GEMM, dynamo's ``eager``
backend for the compiled rows and a SIMULATED out-of-memory limit: it checks the argument
parsing, the FLOP counting and the figure file (tests/unit/training/test_gpu_check.py), and
its timings mean nothing.

    python benchmarks/gpu_check.py --out gpu_benchmark.txt
    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu_benchmark.txt
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from finscale.config import load_config  # noqa: F401  # initialises the config package first
from finscale.io.atomic import atomic_path
from finscale.models.budget import count_parameters, resolve_architecture
from finscale.models.config import ModelConfig
from finscale.models.patchtst import PatchTST, PatchTSTConfig
from finscale.thermal.sensors import NvmlSensor
from finscale.training.batch_size import (
    BatchSizeError,
    is_out_of_memory,
    largest_fitting_batch,
    make_try_step,
    with_headroom,
)
from finscale.training.compile import CompiledForward
from finscale.training.config import TrainingConfig
from finscale.training.optim import build_optimizer

# Dense bf16 tensor-core TFLOP/s (no sparsity) from the vendors' data sheets; first match of
# the name wins, so the more specific names come first.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0),
    ("GH200", 989.0), ("B200", 2250.0), ("A100", 312.0), ("A10G", 70.0), ("A10", 125.0),
    ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0), ("RTX 4090", 165.0), ("RTX 3090", 71.0),
)
TRAINING = TrainingConfig(lr=1e-4, weight_decay=0.01)  # the step's optimiser and clipping


@dataclass
class Figures:
    """The figure file, rewritten (atomically) after every line: a time limit that kills the
    check keeps everything measured before it."""

    path: Path
    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)
        with atomic_path(self.path) as tmp:
            tmp.write_text("\n".join(self.lines) + "\n", encoding="utf-8")


def table_peak(device_name: str) -> float | None:
    """The data-sheet bf16 peak of a GPU by its name, or None when not in the table."""
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in device_name), None)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measured_gemm_tflops(device: torch.device, size: int, repeats: int) -> float:
    """TFLOP/s of a square bf16 (fp32 on CPU) matmul: the achievable dense ceiling."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    synchronise(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronise(device)
    return 2.0 * size**3 * repeats / (time.perf_counter() - started) / 1e12


def architecture(budget: str, args: argparse.Namespace) -> PatchTSTConfig:
    model_cfg = ModelConfig(budget=budget, channel_mode=args.channel_mode, dropout=0.0,
                            head_dropout=0.0)
    return resolve_architecture(model_cfg, args.features, args.context, args.tasks)


def make_step(forward: Callable[[torch.Tensor], torch.Tensor], model: nn.Module,
              x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """The trainer's step: bf16 autocast forward, fp32 BCE, backward, clip, AdamW."""
    optimiser = build_optimizer(model, TRAINING)
    loss_fn = nn.BCEWithLogitsLoss()
    clip = TRAINING.grad_clip

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            logits = forward(x)
        loss_fn(logits.float(), y).backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimiser.step()

    return step


def counted_flops(step: Callable[[], None]) -> int:
    """FLOPs of one step as ``FlopCounterMode`` counts them (matmuls, SDPA, convolutions)."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return int(counter.get_total_flops())


def seconds_per_step(step: Callable[[], None], device: torch.device, warmup: int,
                     steps: int) -> float:
    for _ in range(warmup):
        step()
    synchronise(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronise(device)  # CUDA runs asynchronously: stop the clock when the work is done
    return (time.perf_counter() - started) / steps


def mfu_rows(budget: str, args: argparse.Namespace, device: torch.device, peak: float,
             figures: Figures) -> None:
    """Eager and compiled rows of one budget: samples/s, counted TFLOP/s, MFU, memory."""
    cfg = architecture(budget, args)
    n_params = count_parameters(cfg)
    batch = max(1, args.tokens // cfg.tokens_per_sample)
    torch.manual_seed(0)
    model = PatchTST(cfg).to(device).train()
    x = torch.randn(batch, cfg.context, cfg.n_features, device=device)
    y = torch.randint(0, 2, (batch, cfg.n_tasks), device=device).float()
    flops = counted_flops(make_step(model, model, x, y))
    estimate = 6.0 * n_params * batch * cfg.tokens_per_sample
    figures.add(f"{budget}: {n_params:,} params, d_model {cfg.d_model}, layers {cfg.n_layers}, "
                f"heads {cfg.n_heads}, {cfg.channel_mode}, F={cfg.n_features}; batch {batch} "
                f"({batch * cfg.tokens_per_sample:,} tokens); counted {flops:.4g} FLOP per "
                f"step (6*N*tokens {estimate:.4g})")
    for mode in args.modes:
        forward: Callable[[torch.Tensor], torch.Tensor] = model
        if mode == "compiled":
            compiled = CompiledForward(model, "default", batch_size=batch, backend=args.backend)
            started = time.perf_counter()
            compiled.prepare((cfg.context, cfg.n_features), device,
                             lambda: torch.autocast(device.type, dtype=torch.bfloat16))
            figures.add(f"{budget} compile: {time.perf_counter() - started:.1f} s, backend "
                        f"{args.backend}, active {compiled.active}")
            forward = compiled
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds = seconds_per_step(make_step(forward, model, x, y), device, args.warmup,
                                   args.steps)
        achieved = flops / seconds / 1e12
        memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0
        figures.add(f"{budget} {mode}: {seconds * 1e3:.1f} ms/step, {batch / seconds:,.0f} "
                    f"samples/s, {achieved:.4g} TFLOP/s, MFU {achieved / peak:.1%} (goal at "
                    f"200M: >= 35%), peak memory {memory:.1f} GiB")
    del model, x, y
    if device.type == "cuda":
        torch.cuda.empty_cache()


def discovery_rows(args: argparse.Namespace, device: torch.device, figures: Figures) -> None:
    """The batch-size search into real OOMs on the largest budget, then a step after it."""
    budget = args.budgets[-1]
    cfg = architecture(budget, args)
    torch.manual_seed(0)
    model = PatchTST(cfg).to(device).train()

    def autocast() -> contextlib.AbstractContextManager[object]:
        return torch.autocast(device.type, dtype=torch.bfloat16)

    real = make_try_step(model, nn.BCEWithLogitsLoss(), (cfg.context, cfg.n_features),
                         cfg.n_tasks, device, autocast)
    ooms: list[int] = []

    def try_step(batch: int) -> None:
        try:
            if device.type != "cuda" and batch > args.simulated_oom_batch:  # dry run only
                raise torch.cuda.OutOfMemoryError(f"simulated: batch {batch}")
            real(batch)
        except Exception as exc:
            if is_out_of_memory(exc):
                ooms.append(batch)
            raise

    started = time.perf_counter()
    try:
        largest = largest_fitting_batch(try_step, max_batch=args.max_batch)
    except BatchSizeError as exc:
        figures.add(f"batch discovery {budget}: {exc}")
        return
    chosen = with_headroom(largest, TRAINING.batch_headroom)
    real(chosen)  # the run's batch still trains after the OOMs: the memory came back
    kind = "real CUDA" if device.type == "cuda" else "SIMULATED (dry run)"
    figures.add(f"batch discovery {budget}: largest {largest:,}, chosen {chosen:,} (headroom "
                f"{TRAINING.batch_headroom}), {len(ooms)} {kind} OOMs survived at "
                f"{sorted(set(ooms))[:4]}..., {time.perf_counter() - started:.1f} s; a step at "
                f"{chosen:,} afterwards: ok")


def header(args: argparse.Namespace, device: torch.device, figures: Figures) -> float:
    """Host, versions, the GPU and its peak; returns the peak MFU is measured against."""
    figures.add(f"gpu_check {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}"
                f"{' DRY RUN (CPU, tiny budgets: timings mean nothing)' if args.dry_run else ''}")
    figures.add(f"host {platform.node()}, python {platform.python_version()}, torch "
                f"{torch.__version__}, cuda {torch.version.cuda}")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    gemm = measured_gemm_tflops(device, args.gemm_size, args.gemm_repeats)
    peak = args.peak_tflops or table_peak(name)
    source = "--peak-tflops" if args.peak_tflops else "table"
    if peak is None:
        peak, source = gemm, "measured GEMM (name not in the table)"
    figures.add(f"device {name}; peak bf16 {peak:.4g} TFLOP/s ({source}); measured GEMM "
                f"{args.gemm_size}^3: {gemm:.4g} TFLOP/s = {gemm / peak:.0%} of peak")
    return peak


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--out", type=Path, default=Path("gpu_benchmark.txt"), help="the figure file")
    add("--dry-run", action="store_true", help="CPU, tiny budgets: checks the script only")
    add("--budgets", nargs="+", default=None, help="default 20M 200M (dry run: 10k 20k)")
    add("--modes", nargs="+", choices=["eager", "compiled"], default=["eager", "compiled"])
    add("--peak-tflops", type=float, default=None, help="override the table's peak")
    add("--features", type=int, default=50)
    add("--context", type=int, default=80)
    add("--tasks", type=int, default=4)
    add("--channel-mode", choices=["independent", "mixed"], default="mixed")
    add("--tokens", type=int, default=None, help="encoder tokens per step (sets the batch)")
    add("--steps", type=int, default=None)
    add("--warmup", type=int, default=None)
    add("--max-batch", type=int, default=None, help="upper end of the batch search")
    add("--simulated-oom-batch", type=int, default=48, help="dry run: where OOM starts")
    add("--skip-discovery", action="store_true")
    args = parser.parse_args(argv)
    dry = args.dry_run
    defaults = {"budgets": ["10k", "20k"] if dry else ["20M", "200M"],
                "tokens": 512 if dry else 65536, "steps": 2 if dry else 20,
                "warmup": 1 if dry else 5, "max_batch": 256 if dry else 2**20}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.backend = "eager" if dry else "inductor"  # dynamo's eager backend: no C++ build
    args.gemm_size, args.gemm_repeats = (128, 2) if dry else (8192, 20)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available here (use --dry-run to check the script on CPU)")
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    figures = Figures(args.out)
    peak = header(args, device, figures)
    for budget in args.budgets:
        mfu_rows(budget, args, device, peak, figures)
    if not args.skip_discovery:
        discovery_rows(args, device, figures)
    reading = NvmlSensor().read()
    figures.add(f"NVML sensor: {reading.state.value}, {reading.celsius} C {reading.detail}")
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
