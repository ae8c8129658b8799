"""What the encoder computes, not only its shapes.

Each test here fails for one plausible broken encoder that still returns logits of the right
shape: attention over heads instead of patches, no positional embedding, a causal mask, no
attention residual, a head that pools only the last token.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from finscale.models.patchtst import (
    Block,
    ClassificationHead,
    PatchTST,
    PatchTSTConfig,
    SelfAttention,
)

CHANNEL_MODES = ("independent", "mixed")
BATCH, N_FEATURES, PATCH = 3, 4, 8
N_PATCHES = 5  # context = N_PATCHES * PATCH, no end padding: patch k is steps 8k..8k+7


def config(**changes: object) -> PatchTSTConfig:
    """A small deterministic model: no dropout, no end padding, no instance norm."""
    fields: dict[str, object] = {
        "n_features": N_FEATURES, "context": N_PATCHES * PATCH, "n_tasks": 2, "d_model": 32,
        "n_layers": 1, "n_heads": 4, "d_ff": 64, "patch_len": PATCH, "stride": PATCH,
        "pad_end": False, "dropout": 0.0, "head_dropout": 0.0, "instance_norm": "none",
    }
    return PatchTSTConfig(**{**fields, **changes})


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _sharpen(module: nn.Module, std: float) -> None:
    """Weights larger than the 0.02 init, so attention is far from uniform (as after training)."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0.0, std)


def reference_attention(attn: SelfAttention, x: torch.Tensor) -> torch.Tensor:
    """Multi-head self-attention over the token axis, written out: matmul, softmax, matmul."""
    n_seq, n_tok, d_model = x.shape
    heads = attn.n_heads
    head_dim = d_model // heads

    def per_head(linear: nn.Linear) -> torch.Tensor:
        projected = x @ linear.weight.T + linear.bias  # (N, T, D)
        return projected.view(n_seq, n_tok, heads, head_dim).permute(0, 2, 1, 3)  # (N, H, T, hd)

    q, k, v = per_head(attn.query), per_head(attn.key), per_head(attn.value)
    scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)  # (N, H, T, T): token vs token
    weights = torch.softmax(scores, dim=-1)  # every token attends to every token, no mask
    mixed = (weights @ v).permute(0, 2, 1, 3).reshape(n_seq, n_tok, d_model)  # (N, T, D)
    return mixed @ attn.proj.weight.T + attn.proj.bias


def test_self_attention_matches_a_written_out_reference() -> None:
    attn = SelfAttention(config()).double().eval()
    _sharpen(attn, 0.3)
    x = torch.randn(BATCH, 7, 32, dtype=torch.float64)  # 7 tokens, 4 heads of 8
    torch.testing.assert_close(attn(x), reference_attention(attn, x))


def _permute_patches(x: torch.Tensor, order: list[int]) -> torch.Tensor:
    patches = x.view(x.shape[0], N_PATCHES, PATCH, x.shape[2])  # (B, P, L, F)
    return patches[:, order].reshape(x.shape)  # (B, T, F) with the patches reordered


@pytest.mark.parametrize("channel_mode", CHANNEL_MODES)
def test_permuting_patches_changes_the_output_when_positions_are_learned(
    channel_mode: str,
) -> None:
    model = PatchTST(config(channel_mode=channel_mode)).eval()
    x = torch.randn(BATCH, N_PATCHES * PATCH, N_FEATURES)
    shuffled = _permute_patches(x, [3, 0, 4, 1, 2])
    with torch.no_grad():
        model.pos.normal_(0.0, 1.0)  # positions as a trained model has them
    assert not torch.allclose(model(x), model(shuffled), atol=1e-4)
    with torch.no_grad():
        model.pos.zero_()
    # control: without positions, unmasked attention and mean pooling are blind to order,
    # so the change above came from the positional embedding alone
    torch.testing.assert_close(model(x), model(shuffled), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("channel_mode", CHANNEL_MODES)
def test_every_token_sees_every_patch_later_ones_included(channel_mode: str) -> None:
    """No causal mask: the oldest patch's token changes when the newest patch changes."""
    model = PatchTST(config(channel_mode=channel_mode)).eval()
    _sharpen(model.blocks, 0.2)
    x = torch.randn(BATCH, N_PATCHES * PATCH, N_FEATURES)
    before = model.encode(x)  # (N, P, D)
    for patch in range(N_PATCHES):
        changed = x.clone()
        changed[:, patch * PATCH : (patch + 1) * PATCH] += 1.0
        moved = (model.encode(changed) - before).abs().amax(dim=(0, 2))  # (P,): per token
        assert (moved > 1e-4).all(), f"tokens blind to patch {patch}: {moved.tolist()}"


@pytest.mark.parametrize("channel_mode", CHANNEL_MODES)
def test_pooled_head_weighs_every_patch_alike(channel_mode: str) -> None:
    cfg = config(channel_mode=channel_mode, head="pool")
    head = ClassificationHead(cfg).eval()
    sequences = BATCH * N_FEATURES if channel_mode == "independent" else BATCH
    h = torch.randn(sequences, N_PATCHES, cfg.d_model)  # (N, P, D) encoder output
    delta = torch.randn(sequences, cfg.d_model)
    base = head(h, batch=BATCH, level=None)
    changes = []
    for patch in range(N_PATCHES):
        moved = h.clone()
        moved[:, patch] += delta
        changes.append(head(moved, batch=BATCH, level=None) - base)  # (B, n_tasks)
    for patch, change in enumerate(changes):
        assert change.abs().max() > 1e-3, f"the pooled head ignores patch {patch}"
        # a mean: the same change to any one patch moves the logits by the same amount
        torch.testing.assert_close(change, changes[0], rtol=1e-4, atol=1e-5)


def test_residual_path_survives_zeroed_attention() -> None:
    block = Block(config()).eval()
    _sharpen(block, 0.2)
    with torch.no_grad():  # attention now adds exactly zero to the residual stream
        block.attn.proj.weight.zero_()
        block.attn.proj.bias.zero_()
    x = torch.randn(BATCH, N_PATCHES, 32)
    torch.testing.assert_close(block(x), x + block.mlp(block.ln_mlp(x)))
    with torch.no_grad():  # and with the MLP silenced too, the block is the identity
        block.mlp.proj.weight.zero_()
        block.mlp.proj.bias.zero_()
    torch.testing.assert_close(block(x), x)
