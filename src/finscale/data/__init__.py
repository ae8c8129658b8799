"""Market and macro data acquisition: sources, validation, incremental refresh."""
