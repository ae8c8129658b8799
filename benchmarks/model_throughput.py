"""Training-step throughput of finscale's PatchTST on CPU against named references.

Every row is samples/s of one training step (forward, BCE-with-logits, backward, torch AdamW
lr 1e-4 wd 0.01 foreach) on one input, measured alternately (A B C A B C ...) after a warm-up
so all rivals see the same machine load; the script prints each rival's median and range and
our ratio against each reference with the per-repeat pair spread. ``--clock cpu`` times the
process's CPU time instead of wall time: with one thread, the time the step computed and not
the time other jobs held the core (use it on a shared machine).

1. Independent channels, against ``transformers.PatchTSTForClassification`` at the same shape
   (no dropout, mean pooling, "std" scaling = RevIN without affine, no end padding):
   ``transformers-matched`` is their model configured to our architecture (pre-norm LayerNorm,
   learnable positions), ``transformers-default`` their model as shipped (BatchNorm, sin-cos
   positions). ``finscale-compiled`` is ours through ``torch.compile`` (the trainer's
   ``training.compile: default``).
2. Mixed channels (the default) at the 0.2M and 1.2M budgets, against ``torch-reference``: a
   plain PyTorch network of the same shape (RevIN, patch embedding, learnable positions,
   ``nn.TransformerEncoder`` with ``norm_first=True`` and GELU, final LayerNorm, mean pool,
   Linear) with the same dropout at the same sites (its FFN-internal dropout is set to 0: ours
   has none there). Rows: ours eager, ours compiled, ours with bf16 CPU autocast
   (``training.cpu_autocast``), the reference eager and compiled.

The GPU figures (bf16 MFU, eager vs compiled, batch-size discovery, NVML) come from
``bash benchmarks/gpu_check.sh`` on a CUDA host.

    .venv/bin/python benchmarks/model_throughput.py --threads 1 --clock cpu
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from finscale.config import load_config  # noqa: F401  # initialises the config package first
from finscale.models.budget import count_parameters, resolve_architecture
from finscale.models.config import ModelConfig
from finscale.models.patchtst import REVIN_EPS, PatchTST, PatchTSTConfig, make_patches

Step = Callable[[], None]
OURS, COMPILED = "finscale", "finscale-compiled"


@dataclass(frozen=True)
class Bench:
    """How rivals are timed: repeats of ``steps`` steps after ``warmup``, on which clock."""

    repeats: int
    steps: int
    warmup: int
    clock: Callable[[], float]


def independent_config(args: argparse.Namespace) -> PatchTSTConfig:
    """Our model at the shared shape of the transformers comparison."""
    return PatchTSTConfig(
        n_features=args.features, context=args.context, n_tasks=args.tasks,
        d_model=args.d_model, n_layers=args.layers, n_heads=args.heads, d_ff=args.ffn,
        patch_len=args.patch, stride=args.stride, pad_end=False,  # HF does not pad
        channel_mode="independent", head="pool", dropout=0.0, head_dropout=0.0,
        instance_norm="revin", revin_affine=False,  # HF's "std" scaling: no affine, no stats
    )


class HuggingFacePatchTST(nn.Module):
    """transformers' PatchTSTForClassification returning the logits tensor only.

    ``matched=True`` configures it to our architecture (LayerNorm, learnable positions);
    ``matched=False`` keeps their defaults for everything but the shared shape.
    """

    def __init__(self, cfg: PatchTSTConfig, *, matched: bool) -> None:
        super().__init__()
        from transformers import PatchTSTConfig as HFConfig
        from transformers import PatchTSTForClassification

        architecture = (
            {"norm_type": "layernorm", "positional_encoding_type": "random"} if matched else {}
        )
        config = HFConfig(
            num_input_channels=cfg.n_features, context_length=cfg.context,
            patch_length=cfg.patch_len, patch_stride=cfg.stride, d_model=cfg.d_model,
            num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
            ffn_dim=cfg.d_ff, num_targets=cfg.n_tasks, pre_norm=True,
            pooling_type="mean", use_cls_token=False, scaling="std", attention_dropout=0.0,
            positional_dropout=0.0, path_dropout=0.0, ff_dropout=0.0, head_dropout=0.0,
            share_embedding=True, **architecture,
        )
        self.model = PatchTSTForClassification(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(past_values=x).prediction_logits


class TorchReference(nn.Module):
    """The mixed-channel network in plain PyTorch (``nn.TransformerEncoder``, pre-norm).

    RevIN (per window and feature, learnable affine), patches of all features as one token,
    Linear embedding + learnable positions + dropout, the encoder, a final LayerNorm, mean
    over patches, head dropout, Linear. Same parameters as ours up to layout (one in-projection
    for q, k, v instead of three).
    """

    def __init__(self, cfg: PatchTSTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.revin_weight = nn.Parameter(torch.ones(cfg.n_features))
        self.revin_bias = nn.Parameter(torch.zeros(cfg.n_features))
        self.embed = nn.Linear(cfg.n_features * cfg.patch_len, cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(cfg.n_patches, cfg.d_model))
        self.embed_dropout = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(
            cfg.d_model, cfg.n_heads, cfg.d_ff, dropout=cfg.dropout, activation="gelu",
            batch_first=True, norm_first=True,
        )
        layer.dropout = nn.Dropout(0.0)  # FFN-internal dropout: ours has no site there
        self.encoder = nn.TransformerEncoder(layer, cfg.n_layers, norm=nn.LayerNorm(cfg.d_model),
                                             enable_nested_tensor=False)
        self.head_dropout = nn.Dropout(cfg.head_dropout)
        self.head = nn.Linear(cfg.d_model, cfg.n_tasks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        mean = x.mean(dim=1, keepdim=True)
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + REVIN_EPS)
        z = (x - mean) / std * self.revin_weight + self.revin_bias
        patches = make_patches(z, cfg.patch_len, cfg.stride, cfg.pad_end)
        tokens = patches.reshape(x.shape[0], cfg.n_patches, cfg.n_features * cfg.patch_len)
        h = self.encoder(self.embed_dropout(self.embed(tokens) + self.pos))
        return self.head(self.head_dropout(h.mean(dim=1)))


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
              bf16: bool = False, compiled: bool = False) -> Step:
    """One full training step: forward (optionally bf16 autocast, compiled), BCE, AdamW."""
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    forward = torch.compile(model, dynamic=False) if compiled else model

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = forward(x)
        loss_fn(logits.float(), y).backward()
        optimiser.step()

    return step


def race(steps: dict[str, Step], batch: int, bench: Bench) -> dict[str, list[float]]:
    """Samples/s of every rival per repeat, rivals alternating; prints medians and ranges."""
    for name, step in steps.items():
        started = time.perf_counter()
        for _ in range(bench.warmup):
            step()
        print(f"{name:>22}: warm-up {time.perf_counter() - started:.1f} s wall "
              "(includes the compile for compiled rows)", flush=True)
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(bench.repeats):  # A B C A B C ...: all see the same load drift
        for name, step in steps.items():
            started = bench.clock()
            for _ in range(bench.steps):
                step()
            rates[name].append(batch * bench.steps / (bench.clock() - started))
    for name, values in rates.items():
        print(f"{name:>22}: {statistics.median(values):,.0f} samples/s "
              f"(median of {bench.repeats}; range {min(values):.0f}..{max(values):.0f})")
    return rates


def report_ratio(rates: dict[str, list[float]], ours: str, rival: str, goal: str = "") -> float:
    """Print and return median(ours) / median(rival) with the per-repeat pair spread."""
    ratio = statistics.median(rates[ours]) / statistics.median(rates[rival])
    pairs = sorted(a / b for a, b in zip(rates[ours], rates[rival], strict=True))
    print(f"ratio {ours} / {rival}: {ratio:.2f}x{f' (goal {goal})' if goal else ''}; "
          f"per-repeat pairs {pairs[0]:.2f}..{pairs[-1]:.2f}")
    return ratio


def batch_of(cfg: PatchTSTConfig, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(batch, cfg.context, cfg.n_features)
    return x, torch.randint(0, 2, (batch, cfg.n_tasks)).float()


def seeded(build: Callable[[], nn.Module]) -> nn.Module:
    torch.manual_seed(0)
    return build()


def compare_independent(args: argparse.Namespace, batch: int, bench: Bench) -> None:
    """Ours (eager and compiled) against both configurations of transformers' model."""
    cfg = independent_config(args)
    x, y = batch_of(cfg, batch)
    models = {
        OURS: seeded(lambda: PatchTST(cfg)),
        "transformers-matched": seeded(lambda: HuggingFacePatchTST(cfg, matched=True)),
        "transformers-default": seeded(lambda: HuggingFacePatchTST(cfg, matched=False)),
    }
    print(f"CPU fp32 training step, independent channels, batch {batch}: {cfg}", flush=True)
    for name, model in models.items():
        print(f"{name:>22}: {sum(p.numel() for p in model.parameters()):,} parameters")
    steps = {name: make_step(model, x, y) for name, model in models.items()}
    if args.compile:
        steps[COMPILED] = make_step(seeded(lambda: PatchTST(cfg)), x, y, compiled=True)
    rates = race(steps, batch, bench)
    report_ratio(rates, OURS, "transformers-matched")
    report_ratio(rates, OURS, "transformers-default", ">= 1.2x")
    if args.compile:
        report_ratio(rates, COMPILED, "transformers-default", ">= 1.3x")
        report_ratio(rates, COMPILED, OURS)


def compare_mixed(args: argparse.Namespace, budget: str, batch: int, bench: Bench) -> None:
    """Ours (eager, compiled, bf16 autocast) against the plain PyTorch reference."""
    model_cfg = ModelConfig(budget=budget, dropout=args.dropout, head_dropout=args.dropout,
                            instance_norm="revin")
    cfg = resolve_architecture(model_cfg, args.features, args.context, args.tasks)
    x, y = batch_of(cfg, batch)
    ours, reference = seeded(lambda: PatchTST(cfg)), seeded(lambda: TorchReference(cfg))
    print(f"CPU training step, mixed channels, {budget} ({count_parameters(cfg):,} parameters; "
          f"reference {sum(p.numel() for p in reference.parameters()):,}), batch {batch}, "
          f"dropout {args.dropout}, RevIN: {cfg}", flush=True)
    steps = {OURS: make_step(ours, x, y), "torch-reference": make_step(reference, x, y),
             "finscale-bf16": make_step(seeded(lambda: PatchTST(cfg)), x, y, bf16=True)}
    if args.compile:
        steps[COMPILED] = make_step(seeded(lambda: PatchTST(cfg)), x, y, compiled=True)
        steps["torch-reference-compiled"] = make_step(
            seeded(lambda: TorchReference(cfg)), x, y, compiled=True)
    rates = race(steps, batch, bench)
    report_ratio(rates, OURS, "torch-reference", ">= 1.3x")
    report_ratio(rates, "finscale-bf16", OURS)
    if args.compile:
        report_ratio(rates, COMPILED, "torch-reference", ">= 1.3x")
        report_ratio(rates, COMPILED, "torch-reference-compiled")
        report_ratio(rates, COMPILED, OURS)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--threads", type=int, default=1, help="torch CPU threads, the same for every rival")
    add("--clock", choices=["wall", "cpu"], default="wall",
        help="wall time, or the process's CPU time (one thread on a shared machine)")
    add("--part", choices=["all", "independent", "mixed"], default="all")
    add("--no-compile", dest="compile", action="store_false",
        help="skip the torch.compile rows (each compile takes minutes on a small CPU)")
    add("--features", type=int, default=20)
    add("--context", type=int, default=80)
    add("--patch", type=int, default=8)
    add("--stride", type=int, default=8)
    add("--d-model", type=int, default=128)
    add("--layers", type=int, default=3)
    add("--heads", type=int, default=4)
    add("--ffn", type=int, default=512)
    add("--tasks", type=int, default=4)
    add("--batch", type=int, nargs="+", default=[32, 256],
        help="independent-channel batch sizes (256 is the trainer's default batch)")
    add("--budgets", nargs="+", default=["200k", "1.2M"], help="mixed-channel budgets")
    add("--mixed-batch", type=int, default=256)
    add("--dropout", type=float, default=0.1, help="mixed part: dropout and head dropout")
    add("--repeats", type=int, default=9)
    add("--steps", type=int, default=5, help="training steps per timed repeat")
    add("--warmup", type=int, default=3)
    return parser.parse_args(argv)


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    bench = Bench(args.repeats, args.steps, args.warmup, clock)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}; {cpu_model()}, {os.cpu_count()} logical CPUs, load "
          f"{load:.1f}; torch CPU threads {torch.get_num_threads()}; {args.clock} clock; "
          f"bf16 native: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    if args.part in ("all", "independent"):
        for batch in args.batch:
            compare_independent(args, batch, bench)
    if args.part in ("all", "mixed"):
        for budget in args.budgets:
            compare_mixed(args, budget, args.mixed_batch, bench)
    print("GPU figures: bash benchmarks/gpu_check.sh on a CUDA host")


if __name__ == "__main__":
    main()
