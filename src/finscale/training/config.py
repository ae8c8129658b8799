"""The YAML `training` section: optimiser, schedule, stopping, device and precision."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from finscale.config.base import FrozenModel


class TrainingConfig(FrozenModel):
    """Every field here is applied by the trainer (a test changes each one)."""

    seed: int = 0
    epochs: int = Field(20, ge=1)
    batch_size: int | None = Field(256, ge=1, description="None: discover the largest that fits")
    effective_batch_size: int | None = Field(None, ge=1, description="reached by accumulation")
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int | None = Field(
        None, ge=0, description="linear warm-up in optimiser steps; None: use warmup_ratio"
    )
    warmup_ratio: float = Field(
        0.05, ge=0, lt=1, description="warm-up as a fraction of the planned total optimiser "
        "steps (epochs x steps per epoch), used when warmup_steps is None"
    )
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    grad_clip: float | None = Field(1.0, gt=0)
    loss: Literal["bce", "focal"] = "bce"
    focal_gamma: float = Field(2.0, ge=0)
    pos_weight: Literal["none", "balanced"] = "none"
    early_stopping_metric: Literal["val_auc", "val_loss"] = "val_auc"
    patience: int = Field(5, ge=1)
    min_task_positives: int = Field(
        20,
        ge=1,
        description=(
            "a task whose val split has fewer positives (or negatives) than this is left out "
            "of the mean val AUC that early stopping and the best checkpoint use; the run "
            "refuses to train when every task is left out"
        ),
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    collapse_std_floor: float = Field(
        0.02, ge=0, description="a task has collapsed when the std of its predicted "
        "probabilities is below this fraction of its label std sqrt(p(1-p)) on the same split "
        "(relative, so a 54% task and a 2% task are judged alike)"
    )
    collapse_min_distinct: int = Field(
        5, ge=1, description="a task whose predictions take fewer distinct values than this "
        "carries no ranking and has collapsed"
    )
    evaluate_test: bool = Field(
        True, description="score the test split after training (final runs only); false for "
        "anything that selects (HPO trials, early experiments): the test split is not loaded"
    )
    last_epochs_window: int = Field(
        3, ge=1, description="val AUC is also reported averaged over this many last epochs: "
        "the best-epoch value is optimistic (selection bias)"
    )
    num_workers: int = Field(0, ge=0)
    cpu_batch_size: int = Field(256, ge=1, description="batch on CPU when batch_size is None")
    batch_headroom: float = Field(
        0.8, gt=0, le=1, description="fraction of the largest batch that fits, kept as headroom"
    )
    max_batch_size: int = Field(65536, ge=1, description="upper end of batch-size discovery")
    eval_batch_size: int | None = Field(None, ge=1, description="None: same as the train batch")
    thermal_check_every_steps: int = Field(
        20, ge=1, description="optimiser steps between thermal checks"
    )
    log_model: bool = Field(True, description="log the best model to MLflow with a signature")
    compile: Literal[False, "auto", "default", "max-autotune"] = Field(
        "auto", description="torch.compile the training forward (finscale/training/compile.py): "
        "false: eager; default / max-autotune: that torch.compile mode; auto: compile on CUDA, "
        "eager on CPU (measured slower there with dropout, after minutes of compiling: "
        "benchmarks/README.md) and on MPS (unmeasured). A compiler failure warns and trains "
        "eagerly"
    )
    cpu_autocast: bool | Literal["auto"] = Field(
        False, description="bf16 autocast on CPU (CUDA and MPS always autocast): true, false, "
        "or auto (bf16 only on CPUs with native bf16, AVX512-BF16 or AMX: measured 1.3x faster "
        "there with the same AUC, and 3-9x slower where bf16 is emulated; benchmarks/README.md). "
        "The precision a run trained in is logged as autocast_dtype"
    )
