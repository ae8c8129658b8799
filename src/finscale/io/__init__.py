"""Atomic file writes and checksums: nothing half-written is ever visible."""
