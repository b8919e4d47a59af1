"""A run folder on disk: its record (run.json), logs, checkpoints and provenance."""
