"""Argparse choices the parser needs before any verb runs, as literals that import nothing.

The real definitions are ``Literal`` types in pydantic config modules, which are slow to import;
``finscale --help`` must not load them. tests/unit/cli/test_cli_startup.py checks these tuples
against the real ones, so the two cannot drift apart.
"""

from __future__ import annotations

SOURCES: tuple[str, ...] = ("csv", "yahoo", "fred", "online")  # data.config.SourceName
TIMESCALES: tuple[str, ...] = ("daily", "weekly")  # datasets.config.DatasetConfig.timescale
