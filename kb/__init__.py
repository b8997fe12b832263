"""Multimodal RAG knowledge base over image collections."""
