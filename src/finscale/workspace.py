"""The workspace folder: the one place every run writes (delete it and nothing else is lost)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from finscale.io.temp_files import remove_stale_temp_files

HOME_ENV = "FINSCALE_HOME"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"  # MLflow's own convention
# store URLs may carry a password: the environment is where secrets belong, not YAML
MANIFEST_URL_ENV = "FINSCALE_MANIFEST_URL"
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
        """Explicit home, else ``$FINSCALE_HOME``, else ``./workspace`` (made absolute); the
        manifest URL: explicit (``workspace.manifest_url``), else ``$FINSCALE_MANIFEST_URL``,
        else SQLite in the home."""
        env = os.environ if env is None else env
        chosen = Path(home) if home is not None else Path(env.get(HOME_ENV) or DEFAULT_HOME)
        return cls(home=chosen.expanduser().resolve(),
                   manifest_url_override=manifest_url or env.get(MANIFEST_URL_ENV) or None)

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
    def locks_dir(self) -> Path:
        """One lock file per run identity (held with flock while the run trains)."""
        return self.home / "locks"

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

    def tracking_uri(
        self, configured: str | None, env: Mapping[str, str] | None = None
    ) -> tuple[str, str]:
        """The MLflow URI runs use and where it came from: ``tracking.uri`` when set, else
        ``$MLFLOW_TRACKING_URI`` (so a worker pointed at a tracking server by MLflow's
        convention records there), else the workspace's SQLite store."""
        env = os.environ if env is None else env
        if configured:
            return configured, "tracking.uri"
        if env.get(TRACKING_URI_ENV):
            return env[TRACKING_URI_ENV], TRACKING_URI_ENV
        return self.mlflow_uri, "workspace default"

    @property
    def optuna_url(self) -> str:
        return f"sqlite:///{self.home / 'optuna.db'}"

    @property
    def written_dirs(self) -> tuple[Path, ...]:
        """The folders our atomic writer writes into (mlartifacts is MLflow's own)."""
        return (self.home / "data", self.checkpoints_dir, self.reports_dir, self.cache_dir)

    def ensure(self) -> Workspace:
        """Create the folder layout (idempotent), remove temp files of killed writers
        (``finscale.io.temp_files``: only those whose process is gone) and return self."""
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
        remove_stale_temp_files(self.written_dirs)
        return self
