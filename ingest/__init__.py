"""Command-line ingestion of an image folder into a knowledge base."""
