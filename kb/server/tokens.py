"""Token counts for the API's `usage` and `max_tokens`: the model's own tokenizer when it has one, else an estimate.

The estimate counts a run of up to 4 ASCII letters or digits as one token, and every other character that is not
whitespace (a CJK character, a punctuation mark) as one token; whitespace is free. That is close to what BPE
tokenizers give: an English word of 5-8 letters is about 2 tokens, a Chinese character about 1.
"""

from __future__ import annotations

import copy
import re
import threading
from typing import Any

ESTIMATE_TOKEN = re.compile(r"[A-Za-z0-9]{1,4}|[^\sA-Za-z0-9]")


class TokenCounter:
    """Counts tokens in text and cuts text to a number of tokens, with `tokenizer` (a fast Hugging Face tokenizer)
    when given, else with the estimate."""

    def __init__(self, tokenizer: Any = None) -> None:
        # A copy of its own, used under a lock: a Rust tokenizer that the model's thread reconfigures (padding) while
        # another thread encodes with it fails with "Already borrowed".
        self.tokenizer = copy.deepcopy(tokenizer) if getattr(tokenizer, "is_fast", False) else None
        self._lock = threading.Lock()

    @property
    def exact(self) -> bool:
        """Whether counts come from the model's tokenizer rather than the estimate."""
        return self.tokenizer is not None

    def count(self, text: str) -> int:
        return len(self._ends(text))

    def cut(self, text: str, max_tokens: int) -> tuple[str, bool]:
        """`text` cut to its first `max_tokens` tokens, and whether it was cut."""
        ends = self._ends(text)
        if len(ends) <= max_tokens:
            return text, False
        return text[: ends[max_tokens - 1]].rstrip(), True

    def _ends(self, text: str) -> list[int]:
        """The character offset where each token of `text` ends."""
        if self.tokenizer is None:
            return [match.end() for match in ESTIMATE_TOKEN.finditer(text)]
        with self._lock:
            encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [end for _, end in encoded["offset_mapping"]]


def model_token_counter(vlm: Any) -> TokenCounter:
    """The counter for `vlm`: its processor's tokenizer for a transformers model; the estimate for a model behind
    another server (llama.cpp, OpenAI-compatible), whose tokenizer is not here, and without a model."""
    processor = getattr(vlm, "processor", None)
    return TokenCounter(getattr(processor, "tokenizer", None))
