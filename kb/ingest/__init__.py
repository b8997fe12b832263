"""Ingest: walk a folder and bring a knowledge base up to date with it."""
