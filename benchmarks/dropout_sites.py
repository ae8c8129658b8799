"""What each dropout site of finscale's PatchTST costs per CPU training step.

Sites: ``embed`` (token embeddings), ``attn_probs`` (SDPA's dropout on the attention
probabilities), ``attn_out`` and ``mlp_out`` (each residual branch), ``head``. At the default
shape (a 100k budget, mixed channels, tier a20: 20 features, context 80, batch 256, dropout
0.1, fp32, one thread), two measurements, both in process CPU time (one thread: the time the
step computed, not the time other jobs held the core) and alternating (A B C A B C ...) so
load drifts hit all alike:

1. isolated: each site's own work per step, forward + backward of ``F.dropout`` on the
   site's tensor shape times its count per step; for ``attn_probs`` the difference between
   SDPA with and without ``dropout_p`` (with it, CPU SDPA leaves the flash kernel for the
   math path). Precise, but leaves out effects on the rest of the step;
2. mask implementations, forward + backward on one residual site's tensor: ``F.dropout``
   (``bernoulli_``, what the model uses), a normal-quantile threshold on ``randn`` and a byte
   threshold on ``randint`` (the same keep rate up to 1/256), each against no dropout;
3. whole step: a training step (forward, BCE-with-logits, backward, AdamW) with every site on
   (the reference), each site off alone, and all off. Complete, but noisy on a shared machine.

    nice -n 10 .venv/bin/python benchmarks/dropout_sites.py [--budget 1.2M]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from model_throughput import cpu_model, make_step  # benchmarks/ is the script's sys.path[0]

from finscale.config import load_config  # noqa: F401  # initialises the config package first
from finscale.models.budget import count_parameters, resolve_architecture
from finscale.models.config import ModelConfig
from finscale.models.patchtst import PatchTST, PatchTSTConfig

SITES = ("embed", "attn_probs", "attn_out", "mlp_out", "head")


def switch_off(model: PatchTST, site: str) -> None:
    """Set one dropout site's rate to 0 (in every layer)."""
    if site == "embed":
        model.embed_dropout.p = 0.0
    elif site == "head":
        model.head.dropout.p = 0.0
    for block in model.blocks:
        if site == "attn_probs":
            block.attn.dropout = 0.0
        elif site == "attn_out":
            block.attn.resid_dropout.p = 0.0
        elif site == "mlp_out":
            block.mlp.dropout.p = 0.0


def site_work(cfg: PatchTSTConfig, batch: int, rate: float) -> dict[str, Callable[[], None]]:
    """Per site, its work per training step at ``rate`` (name) and at 0 (``name@0``)."""
    channels = cfg.n_features if cfg.channel_mode == "independent" else 1
    stream = torch.randn(batch * channels, cfg.n_patches, cfg.d_model)  # (N, P, D)
    pooled = torch.randn(batch, cfg.d_model * channels)  # (B, channels * D)
    heads = torch.randn(batch * channels, cfg.n_heads, cfg.n_patches, cfg.d_model // cfg.n_heads)

    def dropout(x: torch.Tensor, times: int, p: float) -> Callable[[], None]:
        def work() -> None:
            for _ in range(times):
                F.dropout(x.clone().requires_grad_(), p, True).sum().backward()
        return work

    def attention(p: float) -> Callable[[], None]:
        def work() -> None:
            for _ in range(cfg.n_layers):
                q, k, v = (heads.clone().requires_grad_() for _ in range(3))
                F.scaled_dot_product_attention(q, k, v, dropout_p=p).sum().backward()
        return work

    work: dict[str, Callable[[], None]] = {}
    for p, suffix in ((rate, ""), (0.0, "@0")):
        work |= {f"embed{suffix}": dropout(stream, 1, p), f"attn_probs{suffix}": attention(p),
                 f"attn_out{suffix}": dropout(stream, cfg.n_layers, p),
                 f"mlp_out{suffix}": dropout(stream, cfg.n_layers, p),
                 f"head{suffix}": dropout(pooled, 1, p)}
    return work


def isolated(cfg: PatchTSTConfig, args: argparse.Namespace) -> None:
    """Print each site's isolated cost per step: its work at the rate minus at rate 0."""
    seconds = alternate(site_work(cfg, args.batch, args.dropout), args.repeats, args.steps)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    costs = {site: median[site] - median[f"{site}@0"] for site in SITES}
    print(f"isolated cost per training step (CPU time, median of {args.repeats} x "
          f"{args.steps}; the site's work at dropout {args.dropout} minus at 0):")
    for site, cost in costs.items():
        print(f"{site:>14}: {cost * 1e3:6.2f} ms")
    print(f"{'sum':>14}: {sum(costs.values()) * 1e3:6.2f} ms")


def masks(cfg: PatchTSTConfig, args: argparse.Namespace) -> None:
    """Print the cost of three ways to drop the same share of one residual site's tensor."""
    p = args.dropout
    stream = torch.randn(args.batch, cfg.n_patches, cfg.d_model)
    cut = float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(p)))
    byte_cut = round(256 * p)

    def run(drop: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        return lambda: drop(stream.clone().requires_grad_()).sum().backward()

    ways = {
        "none": run(lambda x: x * 1.0),
        "F.dropout": run(lambda x: F.dropout(x, p, True)),
        "randn cut": run(lambda x: x * (torch.randn_like(x) >= cut) / (1 - p)),
        "uint8 cut": run(lambda x: x * (torch.randint(0, 256, x.shape, dtype=torch.uint8)
                                        >= byte_cut) / (1 - p)),
    }
    seconds = alternate(ways, args.repeats, args.steps)
    base = statistics.median(seconds["none"])
    print(f"mask implementations on {tuple(stream.shape)} (forward + backward, CPU time, "
          "cost over no dropout):")
    for name, values in seconds.items():
        print(f"{name:>14}: {(statistics.median(values) - base) * 1e3:6.2f} ms")


def alternate(work: dict[str, Callable[[], None]], repeats: int,
              steps: int) -> dict[str, list[float]]:
    """CPU seconds per call of every item, items alternating within each repeat."""
    for run in work.values():
        run()
    seconds: dict[str, list[float]] = {name: [] for name in work}
    for _ in range(repeats):
        for name, run in work.items():
            started = time.process_time()
            for _ in range(steps):
                run()
            seconds[name].append((time.process_time() - started) / steps)
    return seconds


def variants(cfg: PatchTSTConfig) -> dict[str, PatchTST]:
    models: dict[str, PatchTST] = {}
    for name in ("all sites", *(f"no {site}" for site in SITES), "no dropout"):
        torch.manual_seed(0)
        model = PatchTST(cfg)
        for site in SITES:
            if name == "no dropout" or name == f"no {site}":
                switch_off(model, site)
        models[name] = model
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--budget", default="100k")
    add("--features", type=int, default=20)
    add("--context", type=int, default=80)
    add("--tasks", type=int, default=4)
    add("--batch", type=int, default=256)
    add("--dropout", type=float, default=0.1)
    add("--threads", type=int, default=1)
    add("--repeats", type=int, default=15)
    add("--steps", type=int, default=5)
    add("--isolated-only", action="store_true", help="skip the whole-step measurement")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.context, args.features)
    y = torch.randint(0, 2, (args.batch, args.tasks)).float()
    cfg = resolve_architecture(
        ModelConfig(budget=args.budget, dropout=args.dropout, head_dropout=args.dropout),
        args.features, args.context, args.tasks,
    )
    print(f"{cpu_model()}; {args.budget}: {count_parameters(cfg):,} parameters, {cfg}")
    isolated(cfg, args)
    masks(cfg, args)
    if args.isolated_only:
        return
    steps = {name: make_step(model, x, y) for name, model in variants(cfg).items()}
    seconds = alternate(steps, args.repeats, args.steps)
    reference = statistics.median(seconds["all sites"])
    fastest = min(seconds["all sites"])
    print(f"batch {args.batch}, threads {torch.get_num_threads()}, CPU time, median (and "
          f"minimum) of {args.repeats} x {args.steps} steps; cost = step(all sites) - "
          "step(variant)")
    for name, values in seconds.items():
        median, least = statistics.median(values), min(values)
        print(f"{name:>14}: {median * 1e3:6.1f} ms/step (min {least * 1e3:5.1f})  cost "
              f"{(reference - median) * 1e3:+5.1f} ms = {(reference - median) / reference:+6.1%}"
              f" (from minima {(fastest - least) * 1e3:+5.1f} ms)")


if __name__ == "__main__":
    main()
