"""Prefect flows: orchestration only (fan-out, gating, submission, resume)."""
