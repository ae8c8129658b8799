"""Evaluation: metrics, baselines on the same samples, block bootstrap, scaling-law fits,
the results table and the experiment report. Reads datasets and tracked runs, never the
trainer's internals; the report code imports no torch."""
