"""What the API may show of server-side names: a model's short id, and texts with absolute paths cut to file names."""

from __future__ import annotations

import re

from kb.models.vlm import VisionLanguageModel

KB_MODEL = "kb"  # the model id that answers from the knowledge base
SEPARATOR = re.compile(r"[/\\]")
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/\\~-])(?:[A-Za-z]:)?(?:~)?[/\\](?:[^\s'\"/\\]+[/\\])*([^\s'\"/\\,;:)]+)[/\\]?")


def public_model_id(vlm: VisionLanguageModel) -> str:
    """The id clients see for `vlm` (in /v1/models, chat requests and answers): `short_model_name` of its model id."""
    return short_model_name(vlm.model_id)


def short_model_name(model_id: str) -> str:
    """The last part of a Hugging Face id, local path or server model name, never the path it was loaded from.

    "Qwen/Qwen3-VL-2B-Instruct" and "/models/Qwen3-VL-2B-Instruct/" give "Qwen3-VL-2B-Instruct"; a llama.cpp target
    "Qwen/Qwen3-VL-2B-Instruct-GGUF@Q4_K_M" gives "Qwen3-VL-2B-Instruct-GGUF@Q4_K_M"; "/m/model-q8.gguf" gives
    "model-q8". Never `kb`, the knowledge base's own id.
    """
    source, separator, quant = model_id.strip().rpartition("@")
    if not (separator and source and not SEPARATOR.search(quant)):
        source, quant = model_id.strip(), ""
    name = SEPARATOR.split(source.rstrip("/\\"))[-1].removesuffix(".gguf") or "vlm"
    name = f"{name}@{quant}" if quant else name
    return f"{name}-vlm" if name == KB_MODEL else name


def without_paths(text: str) -> str:
    """`text` with each absolute path ("/home/me/models/qwen", "C:\\kb") cut to its last part; URLs are kept."""
    return ABSOLUTE_PATH.sub(lambda match: match.group(1), text)
