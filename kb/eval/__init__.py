"""Evaluation: retrieval, answer and caption metrics, and their command line (python -m kb.eval)."""
