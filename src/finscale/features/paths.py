"""Where tier YAMLs live when a caller gives a relative folder."""

from __future__ import annotations

from pathlib import Path

DEFAULT_TIERS_DIR = "configs/features"
REPO_ROOT = Path(__file__).resolve().parents[3]


def resolve_tiers_dir(tiers_dir: Path | str) -> Path:
    """``tiers_dir`` as given if it exists (absolute or from the working directory), else
    relative to the repository root (so tests and tools run from any folder)."""
    path = Path(tiers_dir)
    if path.is_dir() or path.is_absolute():
        return path
    return REPO_ROOT / path
