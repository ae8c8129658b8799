-- One PostgreSQL server, one database per store (PostgreSQL runs this once, on first start).
-- POSTGRES_DB (prefect) exists already; MLflow's tracking store and finscale's manifest and
-- Optuna studies get their own.
CREATE DATABASE mlflow;
CREATE DATABASE finscale;
