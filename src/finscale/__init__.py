"""finscale: does a transformer forecaster of financial markets improve as it grows?

The library layer: pure Python, pandas and torch. It never imports Prefect; flows and
tasks (top-level packages) orchestrate it.
"""

__version__ = "0.1.0"
