"""Training-step throughput of finscale's PatchTST against Hugging Face's PatchTST.

CPU part (always): samples/s of one training step (forward + BCE-with-logits backward +
AdamW step, fp32) of ``finscale.models.patchtst.PatchTST`` and
``transformers.PatchTSTForClassification`` at the same shape with independent channels
(same d_model, layers, heads, ffn, patch, context, no dropout, mean pooling), measured
alternately (A B C A B C ...) after a warm-up so all see the same machine load; prints the
median of the repeats and our ratio against two configurations of theirs:

- ``transformers-matched``: their model configured to our architecture (pre-norm LayerNorm,
  learnable positions): the like-for-like figure;
- ``transformers-default``: their model as shipped at that shape (their defaults: BatchNorm,
  fixed sin-cos positions), i.e. what a user gets from ``PatchTSTForClassification``.

CUDA part (when CUDA is available): model FLOPs utilisation (MFU) of the 20M and 200M
budgets in bf16 autocast with the trainer's optimiser (``build_optimizer``), from
6 * params * tokens + the attention term, against the GPU's peak bf16 dense TFLOP/s
(``--peak-tflops``, default H100 SXM 989).

    .venv/bin/python benchmarks/model_throughput.py --threads 1
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
from finscale.models.patchtst import PatchTST, PatchTSTConfig
from finscale.training.config import TrainingConfig
from finscale.training.optim import build_optimizer

H100_BF16_DENSE_TFLOPS = 989.0
GPU_BUDGETS = ("20M", "200M")
# the GPU step's optimiser settings, built by the trainer's own ``build_optimizer``
BENCH_TRAINING = TrainingConfig(lr=1e-4, weight_decay=0.01)


@dataclass(frozen=True)
class Shape:
    """The shared shape both CPU models are built at."""

    n_features: int
    context: int
    patch_len: int
    stride: int
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    n_tasks: int
    batch: int


def ours(shape: Shape) -> nn.Module:
    cfg = PatchTSTConfig(
        n_features=shape.n_features, context=shape.context, n_tasks=shape.n_tasks,
        d_model=shape.d_model, n_layers=shape.n_layers, n_heads=shape.n_heads, d_ff=shape.d_ff,
        patch_len=shape.patch_len, stride=shape.stride, pad_end=False,  # HF does not pad
        channel_mode="independent", head="pool", dropout=0.0, head_dropout=0.0,
        instance_norm="revin", revin_affine=False,  # HF's "std" scaling: no affine, no stats
    )
    return PatchTST(cfg)


class HuggingFacePatchTST(nn.Module):
    """transformers' PatchTSTForClassification returning the logits tensor only.

    ``matched=True`` configures it to our architecture (LayerNorm, learnable positions);
    ``matched=False`` keeps their defaults for everything but the shared shape.
    """

    def __init__(self, shape: Shape, *, matched: bool) -> None:
        super().__init__()
        from transformers import PatchTSTConfig as HFConfig
        from transformers import PatchTSTForClassification

        architecture = (
            {"norm_type": "layernorm", "positional_encoding_type": "random"} if matched else {}
        )
        config = HFConfig(
            num_input_channels=shape.n_features, context_length=shape.context,
            patch_length=shape.patch_len, patch_stride=shape.stride, d_model=shape.d_model,
            num_hidden_layers=shape.n_layers, num_attention_heads=shape.n_heads,
            ffn_dim=shape.d_ff, num_targets=shape.n_tasks, pre_norm=True,
            pooling_type="mean", use_cls_token=False, scaling="std", attention_dropout=0.0,
            positional_dropout=0.0, path_dropout=0.0, ff_dropout=0.0, head_dropout=0.0,
            share_embedding=True, **architecture,
        )
        self.model = PatchTSTForClassification(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(past_values=x).prediction_logits


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One full training step: forward, BCE-with-logits, backward, AdamW."""
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimiser.step()

    return step


def timed(step: Callable[[], None], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def compare_cpu(shape: Shape, repeats: int, steps: int, warmup: int) -> dict[str, float]:
    """Alternate our step and both of theirs; print medians; return our speed-up per rival.

    All models get the same optimiser (torch AdamW, same lr, weight decay and the default
    foreach implementation), the same input, dtype and thread count.
    """
    torch.manual_seed(0)
    x = torch.randn(shape.batch, shape.context, shape.n_features)
    y = torch.randint(0, 2, (shape.batch, shape.n_tasks)).float()
    models = {
        "finscale": ours(shape),
        "transformers-matched": HuggingFacePatchTST(shape, matched=True),
        "transformers-default": HuggingFacePatchTST(shape, matched=False),
    }
    for name, model in models.items():
        print(f"{name:>20}: {sum(p.numel() for p in model.parameters()):,} parameters")
    steps_by_name = {name: make_step(model, x, y) for name, model in models.items()}
    for step in steps_by_name.values():
        timed(step, warmup)
    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):  # A B C A B C ...: all see the same load drift
        for name, step in steps_by_name.items():
            rates[name].append(shape.batch * steps / timed(step, steps))
    for name, values in rates.items():
        spread = f"{min(values):.0f}..{max(values):.0f}"
        print(f"{name:>20}: {statistics.median(values):,.0f} samples/s "
              f"(median of {repeats}; range {spread})")
    return {rival: report_ratio(rates, rival, shape.batch) for rival in list(models)[1:]}


def report_ratio(rates: dict[str, list[float]], rival: str, batch: int) -> float:
    """Print and return median(finscale) / median(rival) with the per-repeat pair spread."""
    ratio = statistics.median(rates["finscale"]) / statistics.median(rates[rival])
    pairs = zip(rates["finscale"], rates[rival], strict=True)
    per_repeat = sorted(ours_rate / theirs_rate for ours_rate, theirs_rate in pairs)
    print(
        f"ratio finscale / {rival} at batch {batch}: {ratio:.2f}x (goal >= 1.2x; "
        f"per-repeat pair ratios {per_repeat[0]:.2f}..{per_repeat[-1]:.2f})"
    )
    return ratio


def training_flops_per_sample(cfg: PatchTSTConfig, n_params: int) -> float:
    """6 * params * tokens (forward 2, backward 4) + attention scores, per input window.

    Every parameter except the head is applied once per token; the head once per sample.
    Attention adds QK^T and AV, 2 * 2 * T * d_model per token and layer forward.
    """
    head = cfg.n_tasks * (cfg.d_model * (cfg.n_features if cfg.channel_mode == "independent"
                                         else 1) + 1)
    tokens = cfg.tokens_per_sample
    dense = 6.0 * ((n_params - head) * tokens + head)
    attention = 3.0 * 4.0 * cfg.n_layers * cfg.n_patches * cfg.d_model * tokens
    return dense + attention


def make_amp_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device
) -> Callable[[], None]:
    """A bf16-autocast training step with the trainer's own optimiser.

    ``finscale.training.optim.build_optimizer``: AdamW (torch's default implementation, not
    fused), weight decay on weight matrices only, lr and decay from ``BENCH_TRAINING``.
    """
    optimiser = build_optimizer(model, BENCH_TRAINING)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logits = model(x)
        loss_fn(logits.float(), y).backward()
        optimiser.step()

    return step


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_mfu(budget: str, args: argparse.Namespace, device: torch.device) -> str:
    """Train a few steps of one budget in bf16; return a line with samples/s and MFU."""
    model_cfg = ModelConfig(
        budget=budget, channel_mode=args.gpu_channel_mode, dropout=0.0, head_dropout=0.0
    )
    cfg = resolve_architecture(model_cfg, args.gpu_features, args.context, args.tasks)
    n_params = count_parameters(cfg)
    model: nn.Module = PatchTST(cfg).to(device)
    if args.compile:
        model = torch.compile(model)  # type: ignore[assignment]
    batch = max(1, args.gpu_tokens // cfg.tokens_per_sample)  # same token count per budget
    x = torch.randn(batch, cfg.context, cfg.n_features, device=device)
    y = torch.randint(0, 2, (batch, cfg.n_tasks), device=device).float()
    step = make_amp_step(model, x, y, device)
    for _ in range(args.gpu_warmup):
        step()
    synchronise(device)
    start = time.perf_counter()
    for _ in range(args.gpu_steps):
        step()
    synchronise(device)  # CUDA runs asynchronously: stop the clock only when it is done
    seconds = (time.perf_counter() - start) / args.gpu_steps
    achieved = training_flops_per_sample(cfg, n_params) * batch / seconds / 1e12
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    return (
        f"{budget}: {n_params:,} params (d_model={cfg.d_model}, layers={cfg.n_layers}, "
        f"heads={cfg.n_heads}, {cfg.channel_mode}, F={cfg.n_features}), batch {batch} "
        f"({batch * cfg.tokens_per_sample:,} tokens): {batch / seconds:,.0f} samples/s, "
        f"{achieved:.1f} TFLOP/s, MFU {achieved / args.peak_tflops:.1%}"
        f"{' (compiled)' if args.compile else ''}; peak memory {memory:.1f} GiB"
    )


def report_mfu(args: argparse.Namespace, device: torch.device, budgets: tuple[str, ...]) -> None:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {name}; peak bf16 {args.peak_tflops} TFLOP/s; bf16 autocast")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    for budget in budgets:
        print(measure_mfu(budget, args, device), flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--threads", type=int, default=1, help="torch CPU threads, same for both models")
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
        help="batch sizes, each compared separately (256 is the trainer's typical batch)")
    add("--repeats", type=int, default=9)
    add("--steps", type=int, default=5, help="training steps per timed repeat")
    add("--warmup", type=int, default=3)
    add("--skip-cpu", action="store_true", help="only the CUDA MFU part")
    add("--peak-tflops", type=float, default=H100_BF16_DENSE_TFLOPS)
    add("--gpu-features", type=int, default=50)
    add("--gpu-channel-mode", choices=["independent", "mixed"], default="mixed")
    add("--gpu-tokens", type=int, default=65536, help="encoder tokens per step (sets batch)")
    add("--gpu-steps", type=int, default=20)
    add("--gpu-warmup", type=int, default=5)
    add("--compile", action="store_true", help="torch.compile the GPU models")
    return parser.parse_args()


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
    print(
        f"torch {torch.__version__}; {cpu_model()}, "
        f"{os.cpu_count()} logical CPUs; torch CPU threads {torch.get_num_threads()}"
    )
    if not args.skip_cpu:
        for batch in args.batch:
            shape = Shape(
                n_features=args.features, context=args.context, patch_len=args.patch,
                stride=args.stride, d_model=args.d_model, n_layers=args.layers,
                n_heads=args.heads, d_ff=args.ffn, n_tasks=args.tasks, batch=batch,
            )
            print(f"CPU fp32 training step, independent channels: {shape}", flush=True)
            compare_cpu(shape, args.repeats, args.steps, args.warmup)
    if torch.cuda.is_available():
        report_mfu(args, torch.device("cuda"), GPU_BUDGETS)
    else:
        print("CUDA not available: MFU part skipped")


if __name__ == "__main__":
    main()
