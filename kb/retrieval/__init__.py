"""Retrieval: text processing (terms, glued words, line matching), hybrid search and relevance."""
