"""Hyperparameter search with Optuna: one study per (experiment, cell), trials as training
runs with a pruning hook, MLflow child runs under the study's parent run.

``config`` (the typed HPO file), ``space`` (file -> distributions and overrides),
``storage`` (SQLite / PostgreSQL, safe creation), ``objective`` (one trial = one run),
``study`` (open, run, summarise, best parameters). Only this package imports optuna.
"""
