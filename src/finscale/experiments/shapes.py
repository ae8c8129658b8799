"""The shape of a job before it runs: the architecture it trains (with its FLOPs), its
batch, its epochs and how many samples each split holds, all from the config (and, when
the workspace already holds the raw bars, from their stored date span).

Sample counts are estimates: trading days in each split range (the NYSE has about 252 of
261 weekdays), less the window (context + horizon) and, for train, the tier's warm-up;
pooled datasets count each ticker. ``dataset describe`` gives the exact numbers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from finscale.config.loader import config_hash
from finscale.config.schema import AppConfig
from finscale.datasets.config import DateRange
from finscale.features.engine import load_tier
from finscale.features.vix import load_vix_tier
from finscale.io.atomic import atomic_path
from finscale.models import budget, patchtst
from finscale.models.budget import count_parameters, resolve_architecture
from finscale.models.config import ModelConfig
from finscale.models.patchtst import PatchTST, PatchTSTConfig, SelfAttention
from finscale.workspace import Workspace

TRADING_DAYS_PER_WEEKDAY = 252 / 261
TRAIN_FLOPS_PER_FORWARD = 3.0
SHAPE_CACHE_FILE = "shapes.json"
DAYS_PER_WEEK = 7

# A ticker's stored bars: (first date, last date); absent tickers use the split ranges.
DataSpans = Mapping[str, tuple[date, date]]


@dataclass(frozen=True)
class JobShape:
    """What the time of one job depends on."""

    arch: PatchTSTConfig
    n_parameters: int
    train_flops: float  # per training sample (forward + backward)
    eval_flops: float  # per evaluated sample (forward)
    batch_size: int
    epochs: int
    train: int
    val: int
    test: int  # 0 when the test split is not scored (HPO trials)

    @property
    def key(self) -> str:
        """The architecture and batch (throughput does not depend on the samples)."""
        a = self.arch
        return (f"d{a.d_model}l{a.n_layers}h{a.n_heads}f{a.d_ff}{a.channel_mode}"
                f"p{a.patch_len}s{a.stride}{a.head}{a.instance_norm}|{a.context}x{a.n_features}"
                f"x{a.n_tasks}|b{self.batch_size}")


@cache
def _tier_size(tier: str, tiers_dir: str) -> tuple[int, int]:
    loaded = load_tier(tier, tiers_dir)
    return len(loaded), loaded.max_lookback


@cache
def _vix_size(tiers_dir: str) -> int:
    return len(load_vix_tier(tiers_dir))


def feature_count(config: AppConfig) -> int:
    """Input columns of the dataset: tier, VIX, macro and cross-asset blocks."""
    from finscale.datasets.prepare import macro_tier_for  # heavy: pandas, manifest

    dcfg, tiers_dir = config.dataset, config.features.tiers_dir
    tier, _ = _tier_size(dcfg.tier, tiers_dir)
    count = tier
    if dcfg.include_vix:
        count += _vix_size(tiers_dir)
    if dcfg.include_macro and dcfg.macro_series:
        count += len(macro_tier_for(config))
    return count + tier * len([t for t in dcfg.cross_assets if t != dcfg.ticker])


@cache
def shape_flops(arch: PatchTSTConfig) -> tuple[float, float]:
    """(training, evaluation) FLOPs of one sample: a forward on the meta device (no storage,
    so a 2B model costs nothing) counts 2 x inputs x outputs per linear layer and
    4 x T^2 x d per attention (``torch.utils.flop_counter``'s forward total, far faster on
    meta); training is 3 x forward (the backward's two matmuls per forward one)."""
    with torch.device("meta"):
        model = PatchTST(arch)
        x = torch.empty(1, arch.context, arch.n_features)
    total = [0.0]

    def linear(module: nn.Module, inputs: tuple[torch.Tensor, ...], _out: object) -> None:
        total[0] += 2.0 * inputs[0].numel() * module.out_features

    def attention(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _out: object) -> None:
        n, tokens, width = inputs[0].shape
        total[0] += 4.0 * n * tokens * tokens * width

    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.register_forward_hook(linear)
        elif isinstance(module, SelfAttention):
            module.register_forward_hook(attention)
    with torch.no_grad():
        model(x)
    return TRAIN_FLOPS_PER_FORWARD * total[0], total[0]


@cache
def _code_digest() -> str:
    """The resolver's and the model's source: a cached shape is stale when either changes."""
    text = "".join(Path(m.__file__ or "").read_text(encoding="utf-8") for m in (budget, patchtst))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


class ShapeCache:
    """Resolved architectures with their counts and FLOPs, per workspace
    (``cache/shapes.json``): resolving a 2B budget for 500 features takes seconds."""

    def __init__(self, cache_dir: Path | None) -> None:
        self.path = cache_dir / SHAPE_CACHE_FILE if cache_dir is not None else None
        self._entries: dict[str, dict[str, Any]] | None = None
        self._dirty = False

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            self._entries = {}
            if self.path is not None and self.path.is_file():
                with contextlib.suppress(OSError, json.JSONDecodeError):
                    self._entries = dict(json.loads(self.path.read_text(encoding="utf-8")))
        return self._entries

    def facts(self, model: ModelConfig, n_features: int, context: int, n_tasks: int
              ) -> tuple[PatchTSTConfig, int, float, float]:
        """(architecture, parameters, train FLOPs, eval FLOPs) of a model config and input."""
        key = (f"{config_hash(model)}|{n_features}x{context}x{n_tasks}|{_code_digest()}")
        entries = self._load()
        if key not in entries:
            arch = resolve_architecture(model, n_features, context, n_tasks)
            train, forward = shape_flops(arch)
            entries[key] = {"arch": asdict(arch), "n_parameters": count_parameters(arch),
                            "flops": [train, forward]}
            self._dirty = True
        entry = entries[key]
        return (PatchTSTConfig(**entry["arch"]), int(entry["n_parameters"]),
                float(entry["flops"][0]), float(entry["flops"][1]))

    def save(self) -> None:
        """Write new entries (merged with what another process may have written)."""
        if self.path is None or not self._dirty:
            return
        on_disk = ShapeCache(self.path.parent)._load()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps({**on_disk, **self._load()}, indent=1, sort_keys=True),
                           encoding="utf-8")
        self._dirty = False


def _periods(start: date, end: date, weekly: bool) -> int:
    """Bars between two dates (inclusive): weeks, or NYSE-like trading days."""
    if end < start:
        return 0
    if weekly:
        return (end - start).days // DAYS_PER_WEEK + 1
    weekdays = int(np.busday_count(start, end + timedelta(days=1)))
    return round(weekdays * TRADING_DAYS_PER_WEEKDAY)


def _split_ranges(config: AppConfig) -> tuple[DateRange, DateRange, DateRange]:
    """Train, val and test ranges (a walk-forward fold moves train's end and val)."""
    splits = config.dataset.splits
    wf = splits.walk_forward
    if wf is None or wf.fold is None:
        return splits.train, splits.val, splits.test
    train = DateRange(start=splits.train.start, end=wf.train_end(splits.train.end, wf.fold))
    return train, wf.val_range(splits.train.end, wf.fold), splits.test


def split_samples(config: AppConfig, spans: DataSpans | None = None) -> tuple[int, int, int]:
    """Estimated (train, val, test) samples; see the module docstring."""
    dcfg = config.dataset
    weekly = dcfg.timescale == "weekly"
    window = dcfg.context + dcfg.horizon
    _, warmup = _tier_size(dcfg.tier, config.features.tiers_dir)
    totals = [0, 0, 0]
    for ticker in dcfg.pooled_tickers or (dcfg.ticker,):
        train_range = _split_ranges(config)[0]
        # without a stored span, assume the bars begin with the train range
        first, last = (spans or {}).get(ticker, (train_range.start, date.max))
        for index, rng in enumerate(_split_ranges(config)):
            start, end = max(rng.start, first), min(rng.end, last)
            lost = window
            if index == 0:  # the warm-up rows the bars before the range do not cover
                lost += max(0, warmup - _periods(first, start - timedelta(days=1), weekly))
            totals[index] += max(0, _periods(start, end, weekly) - lost)
    train, val, test = totals
    return train, val, test if config.training.evaluate_test else 0


def job_shape(config: AppConfig, spans: DataSpans | None = None,
              default_batch: int | None = None, cache: ShapeCache | None = None) -> JobShape:
    """The job's architecture (from the budget resolver), batch, epochs and split sizes.

    ``default_batch`` stands for a batch the config leaves to discovery on an accelerator
    (``training.batch_size: null``); otherwise the CPU batch is used.
    """
    dcfg, tcfg = config.dataset, config.training
    arch, n_params, train_flops, eval_flops = (cache or ShapeCache(None)).facts(
        config.model, feature_count(config), dcfg.context, len(dcfg.thresholds))
    batch = tcfg.batch_size or default_batch or tcfg.cpu_batch_size
    train, val, test = split_samples(config, spans)
    return JobShape(arch=arch, n_parameters=n_params, train_flops=train_flops,
                    eval_flops=eval_flops, batch_size=batch, epochs=tcfg.epochs, train=train,
                    val=val, test=test)


def stored_spans(workspace: Workspace, tickers: set[str]) -> dict[str, tuple[date, date]]:
    """First and last date of each ticker's stored bars (tickers not stored are left out)."""
    from finscale.data.refresh import market_artifact_name
    from finscale.manifest.store import Manifest

    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:
        spans = {}
        for ticker in sorted(tickers):
            record = manifest.latest(market_artifact_name(ticker))
            if record is not None and record.first_date and record.last_date:
                spans[ticker] = (record.first_date, record.last_date)
        return spans
    finally:
        manifest.close()
