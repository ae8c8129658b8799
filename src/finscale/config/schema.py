"""The root config: one typed section per area of the system."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from finscale.config.base import FrozenModel
from finscale.data.config import DataConfig
from finscale.datasets.config import DatasetConfig
from finscale.evaluation.config import EvaluationConfig
from finscale.features.config import FeaturesConfig
from finscale.models.config import ModelConfig
from finscale.thermal.config import ThermalConfig
from finscale.training.config import TrainingConfig


class WorkspaceConfig(FrozenModel):
    """Where runs write; store URLs may point at PostgreSQL instead of SQLite."""

    home: Path | None = Field(None, description="FINSCALE_HOME, else ./workspace")
    manifest_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in home")


class TrackingConfig(FrozenModel):
    """MLflow location; defaults to SQLite + artifact folder inside the workspace."""

    uri: str | None = None
    experiment: str = "finscale"


class ExperimentConfig(FrozenModel):
    """Which phase of the study a run belongs to (part of its run key)."""

    name: str = "dev"
    phase: str = "dev"


class AppConfig(FrozenModel):
    """Everything finscale reads from YAML."""

    workspace: WorkspaceConfig = WorkspaceConfig()
    experiment: ExperimentConfig = ExperimentConfig()
    data: DataConfig = DataConfig()
    features: FeaturesConfig = FeaturesConfig()
    dataset: DatasetConfig = DatasetConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    thermal: ThermalConfig = ThermalConfig()
    tracking: TrackingConfig = TrackingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
