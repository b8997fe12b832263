"""Test helpers: tiny random-weight checkpoints that load offline (python -m kb.testing)."""
