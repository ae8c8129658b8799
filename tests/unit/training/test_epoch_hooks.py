"""An epoch hook that returns a reason stops training after that epoch's checkpoint (the
seam an HPO pruner uses; the trainer never imports Optuna)."""

from __future__ import annotations

from finscale.training.trainer import Trainer


def test_an_epoch_hook_reason_stops_the_run(make_cfg, tiny_net, train_data, val_data,
                                            tmp_path) -> None:
    seen: list[float] = []

    def prune_after_two(metrics: dict[str, float]) -> str | None:
        seen.append(metrics["val_auc"])
        return "pruned" if metrics["epoch"] >= 2 else None

    trainer = Trainer(tiny_net(), train_data, val_data, make_cfg(epochs=5),
                      checkpoint_dir=tmp_path / "ckpt", epoch_hooks=[prune_after_two])
    fit = trainer.fit()
    assert fit.stop_reason == "pruned" and not fit.finished
    assert trainer.progress.epoch == 2 and len(seen) == 2
    assert fit.last_checkpoint.is_file()  # stopped after the epoch's checkpoint


def test_hooks_returning_nothing_let_the_run_finish(make_cfg, tiny_net, train_data, val_data,
                                                    tmp_path) -> None:
    trainer = Trainer(tiny_net(), train_data, val_data, make_cfg(epochs=2),
                      checkpoint_dir=tmp_path / "ckpt", epoch_hooks=[lambda m: None])
    assert trainer.fit().stop_reason == "completed"
