"""python -m ingest: a thin command-line shim over `kb ingest`."""
