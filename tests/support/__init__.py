"""Test helpers shared across test folders."""

from pathlib import Path

# The folder that makes ``tests.support`` importable. pytest's importlib mode does not put it
# on sys.path, so a child process that unpickles one of these helpers (a spawned worker, a
# Yahoo download's child) needs it on its sys.path or PYTHONPATH.
IMPORT_ROOT = Path(__file__).resolve().parents[2]
