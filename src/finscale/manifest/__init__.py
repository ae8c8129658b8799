"""The artifact manifest: every stored file with its MD5, rows, dates and lineage."""
