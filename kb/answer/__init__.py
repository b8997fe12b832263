"""Answers: prompts that quote image text as untrusted data, and the streamed, cited answerer."""
