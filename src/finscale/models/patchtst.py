"""PatchTST for multi-task classification, written from scratch (read top to bottom).

Data flow for one batch x of shape (B, context, F):

    instance norm  none; revin: normalise every window per feature (learnable affine);
                   revin_stats: as revin, and keep each window's mean and log-std (its level)
    patching       unfold the time axis into n_patches patches of patch_len steps
    embedding      independent: each feature's patch -> one token (weights shared by features)
                   mixed:       all features of one patch -> one token
    encoder        n_layers pre-norm blocks: x + attn(ln(x)); x + mlp(ln(x)); SDPA attention
    head           pool (mean over patches) or flatten -> head dropout -> [, level] -> Linear
                   -> n_tasks logits (the level joins only with revin_stats)

Dropout sites (``dropout``; the head has ``head_dropout``): token embeddings, attention
probabilities (SDPA's ``dropout_p``), the attention and MLP residual branches, the head. A
measured choice (benchmarks/dropout_sites.py, benchmarks/README.md): at the default shape
(100k, mixed, a20, batch 256, one CPU thread) they cost about 3, 5-7.6, 3.5, 3.5 and 0.4 ms of
a ~75 ms step, the attention site most because CPU SDPA leaves its flash kernel for the math
path when ``dropout_p`` > 0. They stay: nothing cheaper gives the same regularisation. Eager's
``bernoulli_`` mask was the cheapest of the mask implementations measured, inductor's fused
random numbers made the compiled CPU step slower than eager (0.86x at 200k), and fewer sites
would be a weaker regulariser. At rate 0 (HPO may choose it) no site draws a random number
and SDPA keeps its flash kernel, so an unregularised model pays nothing for them.

The model returns LOGITS. There is no sigmoid anywhere in here: losses use
``BCEWithLogitsLoss`` and probabilities are made in exactly one place (the metrics), so a
second sigmoid can never squeeze the outputs (a failure seen in an earlier study).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

ChannelMode = Literal["independent", "mixed"]
HeadType = Literal["pool", "flatten"]
InstanceNorm = Literal["none", "revin", "revin_stats"]
INSTANCE_NORMS: tuple[str, ...] = ("none", "revin", "revin_stats")

INIT_STD = 0.02  # nanoGPT / GPT-2 initialisation scale
REVIN_EPS = 1e-5  # keeps constant windows (a monthly macro series over 80 days) finite


@dataclass(frozen=True)
class PatchTSTConfig:
    """Every shape and regularisation choice of one PatchTST; hashable, so counts can cache."""

    n_features: int
    context: int
    n_tasks: int
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    patch_len: int = 8
    stride: int = 8
    pad_end: bool = True
    channel_mode: ChannelMode = "mixed"
    head: HeadType = "pool"
    dropout: float = 0.1
    head_dropout: float = 0.1
    instance_norm: InstanceNorm = "none"  # measured best: benchmarks/instance_norm.py
    revin_affine: bool = True  # no effect with instance_norm "none"

    def __post_init__(self) -> None:
        positive = ("n_features", "context", "n_tasks", "d_model", "n_layers", "n_heads", "d_ff",
                    "patch_len", "stride")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"PatchTSTConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"PatchTSTConfig.d_model={self.d_model} is not a multiple of n_heads={self.n_heads}"
            )
        if self.padded_context < self.patch_len:
            raise ValueError(
                f"PatchTSTConfig: context {self.context} (padded {self.padded_context}) is shorter "
                f"than patch_len {self.patch_len}"
            )
        if self.channel_mode not in ("independent", "mixed"):
            raise ValueError(f"PatchTSTConfig.channel_mode {self.channel_mode!r} unknown")
        if self.head not in ("pool", "flatten"):
            raise ValueError(f"PatchTSTConfig.head {self.head!r} unknown")
        if self.instance_norm not in INSTANCE_NORMS:
            raise ValueError(
                f"PatchTSTConfig.instance_norm {self.instance_norm!r} unknown; "
                f"known: {', '.join(INSTANCE_NORMS)}"
            )

    @property
    def padded_context(self) -> int:
        """Time-axis length after end padding (the paper repeats the last step stride times)."""
        return self.context + (self.stride if self.pad_end else 0)

    @property
    def n_patches(self) -> int:
        """Patches `unfold` produces (an oldest remainder shorter than a stride is dropped)."""
        return (self.padded_context - self.patch_len) // self.stride + 1

    @property
    def tokens_per_sample(self) -> int:
        """Encoder tokens one input window becomes (drives compute: FLOPs scale with it)."""
        per_channel = self.n_patches
        return per_channel * self.n_features if self.channel_mode == "independent" else per_channel


class RevIN(nn.Module):
    """Reversible instance normalisation: per-window, per-feature mean/std, learnable affine.

    Financial features drift in level and scale over decades; normalising each window by its
    own statistics removes that drift, and the affine lets the model re-scale if it helps.
    The statistics are returned, not stored on the module, so forward stays stateless.
    """

    def __init__(self, n_features: int, affine: bool) -> None:
        super().__init__()
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(n_features))
            self.bias = nn.Parameter(torch.zeros(n_features))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # x: (B, T, F); statistics over the time axis of each window separately
        mean = x.mean(dim=1, keepdim=True)  # (B, 1, F)
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + REVIN_EPS)  # (B, 1, F)
        z = (x - mean) / std  # (B, T, F)
        if self.affine:
            z = z * self.weight + self.bias  # (F,) broadcasts over (B, T, F)
        return z, mean, std

    def inverse(self, z: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Undo forward exactly (used by tests; a forecasting head would need it)."""
        if self.affine:
            # eps keeps a learned weight of exactly zero from dividing by zero
            z = (z - self.bias) / (self.weight + REVIN_EPS * REVIN_EPS)
        return z * std + mean  # (B, T, F)


def window_level(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """RevIN's statistics (B, 1, F) each -> (B, 2F): every feature's mean, then its log-std.

    The log makes scale additive (a window twice as wild moves by log 2 whatever the feature)
    and is finite because RevIN's std includes its eps.
    """
    batch = mean.shape[0]
    return torch.cat([mean, torch.log(std)], dim=1).reshape(batch, -1)  # (B, 2, F) -> (B, 2F)


def make_patches(x: torch.Tensor, patch_len: int, stride: int, pad_end: bool) -> torch.Tensor:
    """(B, T, F) -> (B, n_patches, F, patch_len) as an `unfold` view (no copied windows).

    End padding repeats the last time step `stride` times, as in the PatchTST paper, so the
    most recent observation also starts a patch of its own.
    """
    if pad_end:
        last = x[:, -1:, :].expand(-1, stride, -1)  # (B, stride, F): a view, no copy
        x = torch.cat([x, last], dim=1)  # (B, T + stride, F)
    n_patches = (x.shape[1] - patch_len) // stride + 1
    used = patch_len + stride * (n_patches - 1)
    # a remainder that fills no whole patch is cut from the OLDEST end: the newest step,
    # the one a forecast depends on most, must always be inside a patch
    x = x[:, x.shape[1] - used :, :]  # (B, used, F): a view
    return x.unfold(1, patch_len, stride)  # (B, n_patches, F, patch_len)


class SelfAttention(nn.Module):
    """Multi-head self-attention over the patch tokens via fused SDPA (no mask: encoder).

    q, k and v have their own projections: one fused (D -> 3D) matmul measured ~25% slower per
    CPU training step, because splitting its output and stacking the gradients costs copies.
    """

    def __init__(self, cfg: PatchTSTConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.dropout = cfg.dropout
        self.query = nn.Linear(cfg.d_model, cfg.d_model)
        self.key = nn.Linear(cfg.d_model, cfg.d_model)
        self.value = nn.Linear(cfg.d_model, cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.proj.is_residual_projection = True  # type: ignore[assignment]  # scaled init
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def _heads(self, projected: torch.Tensor) -> torch.Tensor:
        n_seq, n_tok, d_model = projected.shape  # (N, T, D)
        split = projected.view(n_seq, n_tok, self.n_heads, d_model // self.n_heads)  # (N,T,H,hd)
        return split.transpose(1, 2)  # (N, H, T, hd): SDPA's layout, a strided view

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_seq, n_tok, d_model = x.shape  # (N, T, D); N = B (mixed) or B*F (independent)
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        drop = self.dropout if self.training else 0.0  # attention dropout only in training
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)  # (N, H, T, hd)
        y = y.transpose(1, 2).reshape(n_seq, n_tok, d_model)  # (N, T, D): heads side by side
        return self.resid_dropout(self.proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward: D -> d_ff -> D with GELU."""

    def __init__(self, cfg: PatchTSTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.d_ff)
        self.proj = nn.Linear(cfg.d_ff, cfg.d_model)
        self.proj.is_residual_projection = True  # type: ignore[assignment]  # scaled init
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))  # (N, T, D)


class Block(nn.Module):
    """Pre-norm transformer block: stable at depth without warm-up tricks (GPT-2 style)."""

    def __init__(self, cfg: PatchTSTConfig) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.ln_mlp = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_attn(x))  # (N, T, D)
        return x + self.mlp(self.ln_mlp(x))  # (N, T, D)


class ClassificationHead(nn.Module):
    """Encoder tokens (+ the window level with revin_stats) -> n_tasks logits via one Linear.

    Why revin_stats feeds the level here and not as an extra encoder token: here it costs
    2F * n_tasks weights whatever the width, so a budget's parameters still go to the encoder
    (a token's projection costs 2F * d_model: at 50 features the 10k budget no longer fits)
    and every budget gets the same direct path from "how wild is this window" to each logit,
    which is the main effect threshold labels have (VIX level alone: test AUC ~0.74). The
    price: the encoder cannot condition patterns on the level; the head adds a level term.
    """

    def __init__(self, cfg: PatchTSTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        # independent mode: every feature contributes its own representation to the head
        channels = cfg.n_features if cfg.channel_mode == "independent" else 1
        per_channel = cfg.d_model if cfg.head == "pool" else cfg.n_patches * cfg.d_model
        level = 2 * cfg.n_features if cfg.instance_norm == "revin_stats" else 0
        self.dropout = nn.Dropout(cfg.head_dropout)
        self.linear = nn.Linear(channels * per_channel + level, cfg.n_tasks)

    def forward(self, h: torch.Tensor, batch: int, level: torch.Tensor | None) -> torch.Tensor:
        # h: (N, P, D) with N = B * channels; level: (B, 2F) or None
        if self.cfg.head == "pool":
            h = h.mean(dim=1)  # (N, D): mean over patches, invariant to n_patches
        h = self.dropout(h.reshape(batch, -1))  # (B, channels * D) or (B, channels * P * D)
        if level is not None:
            # after the dropout: 2F exact statistics, not a redundant representation to thin
            h = torch.cat([h, level], dim=1)  # (B, channels * D [* P] + 2F)
        return self.linear(h)  # (B, n_tasks) logits


class PatchTST(nn.Module):
    """PatchTST classifier: forward(x: (B, context, F)) -> logits (B, n_tasks)."""

    def __init__(self, cfg: PatchTSTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        normalise = cfg.instance_norm in ("revin", "revin_stats")
        self.revin = RevIN(cfg.n_features, cfg.revin_affine) if normalise else None
        # the token's input size: one feature's patch, or all features of one patch
        token_in = cfg.patch_len if cfg.channel_mode == "independent" else (
            cfg.n_features * cfg.patch_len
        )
        self.embed = nn.Linear(token_in, cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(cfg.n_patches, cfg.d_model))  # learnable positions
        self.embed_dropout = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.ln_final = nn.LayerNorm(cfg.d_model)
        self.head = ClassificationHead(cfg)
        if not self.pos.is_meta:  # a meta build only counts parameters: nothing to draw
            self.apply(self._init_weights)
            nn.init.normal_(self.pos, mean=0.0, std=INIT_STD)

    def _init_weights(self, module: nn.Module) -> None:
        """nanoGPT init: N(0, 0.02); residual projections scaled by 1/sqrt(2 n_layers).

        The scaling keeps the residual stream's variance from growing with depth, so a 2B
        model starts as well-conditioned as a 100k one.
        """
        if isinstance(module, nn.Linear):
            std = INIT_STD
            if getattr(module, "is_residual_projection", False):
                std = INIT_STD / math.sqrt(2 * self.cfg.n_layers)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, context, F) -> embedded tokens (N, n_patches, D) before the encoder."""
        cfg = self.cfg
        batch = x.shape[0]
        patches = make_patches(x, cfg.patch_len, cfg.stride, cfg.pad_end)  # (B, P, F, L)
        if cfg.channel_mode == "independent":
            # each feature becomes its own sequence; the same weights embed every feature
            patches = patches.transpose(1, 2)  # (B, F, P, L)
            patches = patches.reshape(batch * cfg.n_features, cfg.n_patches, cfg.patch_len)
        else:
            # one token per patch holding every feature's values: (B, P, F * L)
            patches = patches.reshape(batch, cfg.n_patches, cfg.n_features * cfg.patch_len)
        return self.embed(patches) + self.pos  # (N, P, D); pos (P, D) broadcasts over N

    def normalise(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Instance norm as configured: (window for the encoder, level (B, 2F) or None)."""
        if self.revin is None:
            return x, None  # (B, T, F) as given
        z, mean, std = self.revin(x)  # z (B, T, F); mean, std (B, 1, F)
        if self.cfg.instance_norm == "revin_stats":
            return z, window_level(mean, std)  # level: (B, 2F)
        return z, None  # plain RevIN: the statistics are dropped, the level is lost

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """Instance-normalised (B, context, F) -> encoder output (N, P, D) before the head."""
        h = self.embed_dropout(self.tokens(z))  # (N, P, D)
        for block in self.blocks:
            h = block(h)  # (N, P, D)
        return self.ln_final(h)  # (N, P, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if x.dim() != 3 or x.shape[1] != cfg.context or x.shape[2] != cfg.n_features:
            raise ValueError(
                f"PatchTST expects (batch, {cfg.context}, {cfg.n_features}), got {tuple(x.shape)}"
            )
        z, level = self.normalise(x)  # (B, T, F), (B, 2F) or None
        return self.head(self.encode(z), batch=x.shape[0], level=level)  # (B, n_tasks) logits
