"""Loading Hugging Face models offline first: the local cache or a path, the hub only when it is reachable."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


def from_pretrained(loader: Any, model_id: str, **kwargs: Any) -> Any:
    """`loader.from_pretrained` from the local cache first; download only when the hub is reachable and allowed.

    Raises OSError (as transformers does) when the model is neither cached nor downloadable.
    """
    try:
        return loader.from_pretrained(model_id, local_files_only=True, **kwargs)
    except OSError:
        if Path(model_id).exists() or not hub_reachable():
            raise
    return loader.from_pretrained(model_id, **kwargs)


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """A quick connect to the model hub, so that an offline machine fails in seconds, not after retries."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    host = urlparse(constants.ENDPOINT).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True
