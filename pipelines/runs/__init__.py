"""Runs: the entities and the one results schema, the abstract store and its SQLite implementation, artifacts, the metric feed."""
