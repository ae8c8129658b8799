"""PatchTST: shapes in both channel modes, logits out, it can learn, SDPA, RevIN, patching."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from finscale.models.patchtst import (
    INSTANCE_NORMS,
    PatchTST,
    PatchTSTConfig,
    RevIN,
    make_patches,
)

BATCH = 6


def tiny_config(**changes: object) -> PatchTSTConfig:
    base = PatchTSTConfig(
        n_features=5, context=32, n_tasks=4, d_model=32, n_layers=2, n_heads=2, d_ff=64,
        patch_len=8, stride=8, dropout=0.0, head_dropout=0.0,
    )
    return replace(base, **changes)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.mark.parametrize("channel_mode", ["independent", "mixed"])
@pytest.mark.parametrize("head", ["pool", "flatten"])
@pytest.mark.parametrize("pad_end", [True, False])
@pytest.mark.parametrize("instance_norm", INSTANCE_NORMS)
def test_output_shape_in_every_mode(
    channel_mode: str, head: str, pad_end: bool, instance_norm: str
) -> None:
    cfg = tiny_config(channel_mode=channel_mode, head=head, pad_end=pad_end,
                      instance_norm=instance_norm)
    model = PatchTST(cfg)
    x = torch.randn(BATCH, cfg.context, cfg.n_features)
    assert model(x).shape == (BATCH, cfg.n_tasks)
    sequences = BATCH * cfg.n_features if channel_mode == "independent" else BATCH
    assert model.tokens(x).shape == (sequences, cfg.n_patches, cfg.d_model)
    assert model.encode(x).shape == (sequences, cfg.n_patches, cfg.d_model)


def test_wrong_input_shape_names_the_expected_shape() -> None:
    model = PatchTST(tiny_config())
    with pytest.raises(ValueError, match=r"\(batch, 32, 5\)"):
        model(torch.randn(BATCH, 32, 6))


def test_invalid_config_is_rejected_with_the_field() -> None:
    with pytest.raises(ValueError, match="n_heads"):
        tiny_config(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="patch_len"):
        tiny_config(context=4, pad_end=False)


def test_independent_channels_share_weights_and_stay_separate() -> None:
    """Changing feature 0 changes only feature 0's tokens; mixed tokens all see it."""
    x = torch.randn(2, 32, 5)
    x_changed = x.clone()
    x_changed[:, :, 0] += torch.randn(2, 32)
    independent = PatchTST(tiny_config(channel_mode="independent", instance_norm="none"))
    before = independent.tokens(x).view(2, 5, -1)  # (B, F, P * D)
    after = independent.tokens(x_changed).view(2, 5, -1)
    assert not torch.allclose(before[:, 0], after[:, 0])
    assert torch.equal(before[:, 1:], after[:, 1:])
    # one embedding serves every feature: it takes one feature's patch
    assert independent.embed.in_features == 8
    mixed = PatchTST(tiny_config(channel_mode="mixed", instance_norm="none"))
    assert mixed.embed.in_features == 5 * 8
    assert not torch.allclose(mixed.tokens(x)[:, -1], mixed.tokens(x_changed)[:, -1])


def test_tiny_model_overfits_random_labels_and_returns_logits() -> None:
    """64 random windows with random labels are memorised to near-zero BCE in seconds."""
    cfg = tiny_config(channel_mode="mixed", head="flatten")
    x = torch.randn(64, cfg.context, cfg.n_features)
    y = torch.randint(0, 2, (64, cfg.n_tasks)).float()
    model = PatchTST(cfg)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    loss_fn = nn.BCEWithLogitsLoss()
    start = time.perf_counter()
    for _ in range(300):
        optimiser.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimiser.step()
        if loss.item() < 0.01:
            break
    model.eval()
    with torch.no_grad():
        logits = model(x)
    assert loss_fn(logits, y).item() < 0.05
    assert time.perf_counter() - start < 30
    # logits, not probabilities: a sigmoid inside would keep every output in [0, 1]
    assert logits.min() < 0 and logits.max() > 1
    assert ((logits > 0).float() == y).all()


def test_attention_uses_sdpa_with_dropout_only_in_training(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[float] = []
    original = F.scaled_dot_product_attention

    def spy(*args: torch.Tensor, **kwargs: float) -> torch.Tensor:
        calls.append(kwargs.get("dropout_p", 0.0))
        return original(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    cfg = tiny_config(dropout=0.3, n_layers=3)
    model = PatchTST(cfg)
    x = torch.randn(BATCH, cfg.context, cfg.n_features)
    model.train()
    model(x)
    assert calls == [0.3, 0.3, 0.3]
    calls.clear()
    model.eval()
    first = model(x)
    assert calls == [0.0, 0.0, 0.0]
    assert torch.equal(first, model(x))  # eval is deterministic: no dropout anywhere


def test_revin_normalises_each_window_and_feature_and_inverts() -> None:
    revin = RevIN(3, affine=True)
    # wildly different level and scale per window and per feature
    x = torch.randn(4, 50, 3) * torch.tensor([1.0, 100.0, 0.1]) + torch.tensor([5.0, -300.0, 2.0])
    x = x * torch.arange(1, 5).view(4, 1, 1)
    z, mean, std = revin(x)
    torch.testing.assert_close(z.mean(dim=1), torch.zeros(4, 3), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(dim=1, unbiased=False), torch.ones(4, 3), atol=1e-3, rtol=0)
    with torch.no_grad():
        revin.weight.copy_(torch.tensor([2.0, 0.5, -1.0]))
        revin.bias.copy_(torch.tensor([1.0, -1.0, 0.3]))
    z, mean, std = revin(x)
    torch.testing.assert_close(revin.inverse(z, mean, std), x, rtol=1e-4, atol=1e-3)


def test_revin_makes_the_model_blind_to_window_level_and_scale() -> None:
    cfg = tiny_config(instance_norm="revin")
    model = PatchTST(cfg).eval()
    x = torch.randn(BATCH, cfg.context, cfg.n_features)
    shifted = x * 7.0 + 1000.0
    torch.testing.assert_close(model(x), model(shifted), rtol=1e-3, atol=1e-4)
    without = PatchTST(tiny_config(instance_norm="none")).eval()
    assert not torch.allclose(without(x), without(shifted))


@pytest.mark.parametrize("channel_mode", ["independent", "mixed"])
def test_revin_stats_sees_the_window_level_that_revin_discards(channel_mode: str) -> None:
    """Same shape, other level: revin answers the same, revin_stats does not (mean or scale)."""
    x = torch.randn(BATCH, 32, 5)
    moved = {"mean": x + 2.0, "scale": x * 3.0, "both": x * 3.0 + 2.0}
    blind = PatchTST(tiny_config(channel_mode=channel_mode, instance_norm="revin")).eval()
    seeing = PatchTST(tiny_config(channel_mode=channel_mode, instance_norm="revin_stats")).eval()
    for name, other in moved.items():
        torch.testing.assert_close(blind(x), blind(other), rtol=1e-3, atol=1e-4)
        change = (seeing(x) - seeing(other)).abs().max().item()
        assert change > 1e-3, f"revin_stats ignores a change of window {name}"
    # the encoder sees the same normalised window: the level alone carries the difference
    torch.testing.assert_close(seeing.encode(seeing.normalise(x)[0]),
                               seeing.encode(seeing.normalise(moved["both"])[0]),
                               rtol=1e-3, atol=1e-4)


def test_revin_stats_level_is_each_features_mean_and_log_std() -> None:
    cfg = tiny_config(instance_norm="revin_stats", revin_affine=False)
    model = PatchTST(cfg)
    x = torch.randn(BATCH, cfg.context, cfg.n_features) * 4.0 + 3.0
    _, level = model.normalise(x)
    assert level is not None and level.shape == (BATCH, 2 * cfg.n_features)
    torch.testing.assert_close(level[:, : cfg.n_features], x.mean(dim=1))
    log_std = torch.log(x.std(dim=1, unbiased=False))
    torch.testing.assert_close(level[:, cfg.n_features :], log_std, rtol=1e-4, atol=1e-4)
    assert model.head.linear.in_features == cfg.d_model + 2 * cfg.n_features
    assert PatchTST(tiny_config(instance_norm="revin")).normalise(x)[1] is None


@pytest.mark.parametrize("instance_norm", ["revin", "revin_stats"])
def test_revin_keeps_constant_windows_finite(instance_norm: str) -> None:
    """A monthly macro series is constant over many daily windows; no NaN may come out."""
    cfg = tiny_config(instance_norm=instance_norm)
    x = torch.randn(BATCH, cfg.context, cfg.n_features)
    x[:, :, 2] = 3.5
    assert torch.isfinite(PatchTST(cfg)(x)).all()


def test_unknown_instance_norm_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="instance_norm 'batch' unknown; known: none, revin"):
        tiny_config(instance_norm="batch")


def test_patching_pads_by_repeating_the_last_step() -> None:
    x = torch.arange(2 * 80 * 3, dtype=torch.float32).view(2, 80, 3)
    padded = make_patches(x, patch_len=8, stride=8, pad_end=True)
    assert padded.shape == (2, 11, 3, 8)  # (B, P, F, patch_len)
    assert torch.equal(padded[:, -1], x[:, -1:, :].transpose(1, 2).expand(-1, -1, 8))
    torch.testing.assert_close(padded[:, 0], x[:, :8].transpose(1, 2))
    plain = make_patches(x, patch_len=8, stride=8, pad_end=False)
    assert plain.shape == (2, 10, 3, 8)
    assert torch.equal(plain[:, -1], x[:, 72:].transpose(1, 2))
    # 80 steps do not split into patches of 12: the oldest remainder goes, the newest stays
    uneven = make_patches(x, patch_len=12, stride=12, pad_end=False)
    assert uneven.shape == (2, 6, 3, 12)
    assert torch.equal(uneven[:, -1], x[:, 68:].transpose(1, 2))
    assert torch.equal(uneven[:, 0], x[:, 8:20].transpose(1, 2))
    overlapping = make_patches(x, patch_len=16, stride=8, pad_end=True)
    assert overlapping.shape == (2, 10, 3, 16)
    assert PatchTSTConfig(
        n_features=3, context=80, n_tasks=1, d_model=16, n_layers=1, n_heads=1, d_ff=64,
        patch_len=16, stride=8,
    ).n_patches == 10


def test_init_scales_residual_projections_by_depth() -> None:
    model = PatchTST(tiny_config(d_model=256, n_heads=4, d_ff=1024, n_layers=8))
    block = model.blocks[0]
    assert abs(block.attn.query.weight.std().item() - 0.02) < 0.002
    expected = 0.02 / (2 * 8) ** 0.5
    assert abs(block.mlp.proj.weight.std().item() - expected) < 0.001
    assert torch.all(block.attn.key.bias == 0)


def test_dropout_zero_draws_no_random_numbers_in_training() -> None:
    """HPO's dropout 0 is free: no site generates a mask (the measured cost of the five sites
    is in benchmarks/README.md), while any rate above 0 does draw."""
    x = torch.randn(BATCH, 32, 5)
    for dropout, head_dropout, draws in ((0.0, 0.0, False), (0.0, 0.1, True), (0.1, 0.0, True)):
        model = PatchTST(tiny_config(dropout=dropout, head_dropout=head_dropout)).train()
        before = torch.get_rng_state()
        model(x).sum().backward()
        assert (not torch.equal(before, torch.get_rng_state())) is draws, (dropout, head_dropout)
