"""The workspace folder: the one place every run writes (delete it and nothing else is lost)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "FINSCALE_HOME"
DEFAULT_HOME = Path("workspace")


@dataclass(frozen=True)
class Workspace:
    """Paths inside ``FINSCALE_HOME``; ``ensure()`` creates them."""

    home: Path
    manifest_url_override: str | None = None

    @classmethod
    def resolve(
        cls,
        home: Path | str | None = None,
        manifest_url: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Workspace:
        """Explicit home, else ``$FINSCALE_HOME``, else ``./workspace`` (made absolute)."""
        env = os.environ if env is None else env
        chosen = Path(home) if home is not None else Path(env.get(HOME_ENV) or DEFAULT_HOME)
        return cls(home=chosen.expanduser().resolve(), manifest_url_override=manifest_url)

    @property
    def raw_dir(self) -> Path:
        return self.home / "data" / "raw"

    @property
    def features_dir(self) -> Path:
        return self.home / "data" / "features"

    @property
    def datasets_dir(self) -> Path:
        return self.home / "data" / "datasets"

    @property
    def checkpoints_dir(self) -> Path:
        return self.home / "checkpoints"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def mlartifacts_dir(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def manifest_url(self) -> str:
        return self.manifest_url_override or f"sqlite:///{self.home / 'manifest.db'}"

    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def optuna_url(self) -> str:
        return f"sqlite:///{self.home / 'optuna.db'}"

    def ensure(self) -> Workspace:
        """Create the folder layout (idempotent) and return self."""
        for path in (
            self.raw_dir,
            self.features_dir,
            self.datasets_dir,
            self.checkpoints_dir,
            self.reports_dir,
            self.cache_dir,
            self.mlartifacts_dir,
        ):
            path.mkdir(parents=True, exist_ok=True)
        return self
