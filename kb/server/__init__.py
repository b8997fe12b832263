"""The HTTP API over one knowledge base and one model: FastAPI on uvicorn (python -m kb serve)."""
