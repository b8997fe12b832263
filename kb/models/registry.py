"""Build a vision-language backend from a spec string (KB_VLM / --vlm): "none", an id or path, or "scheme:target"."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kb.config import Settings
from kb.errors import ModelUnavailableError, SettingsError
from kb.models import llamacpp_vlm, openai_vlm, transformers_vlm
from kb.models.vlm import VisionLanguageModel

SCHEME = re.compile(r"^([a-z][a-z0-9_-]*):(.+)$")
DEFAULT_SCHEME = "transformers"  # a bare Hugging Face id or local path


@dataclass(frozen=True)
class Backend:
    """How to build one kind of VLM from its target, and the caption settings tag it would record."""

    build: Callable[[str, Settings], VisionLanguageModel]
    settings_tag: Callable[[Settings], str]


BACKENDS: dict[str, Backend] = {
    "transformers": Backend(transformers_vlm.from_settings, transformers_vlm.expected_settings_tag),
    "openai": Backend(openai_vlm.from_settings, openai_vlm.expected_settings_tag),
    "llamacpp": Backend(llamacpp_vlm.from_settings, llamacpp_vlm.expected_settings_tag),
}


def register_backend(scheme: str, backend: Backend) -> None:
    """Make `scheme:target` specs build with `backend` (for plug-ins and tests)."""
    BACKENDS[scheme] = backend


def parse_spec(spec: str) -> tuple[str, str]:
    """(scheme, target): "transformers:Qwen/X" and "Qwen/X" give ("transformers", "Qwen/X").

    Raises SettingsError naming the setting when the scheme is unknown.
    """
    match = SCHEME.match(spec.strip())
    if match is None or Path(spec).exists():
        return DEFAULT_SCHEME, spec.strip()
    scheme, target = match.groups()
    if scheme not in BACKENDS:
        known = ", ".join(sorted(BACKENDS))
        raise SettingsError(
            f"KB_VLM / --vlm: unknown backend {scheme!r} in {spec!r}; expected 'none', a Hugging Face id or path, "
            f"or one of: {known} (as 'scheme:target')"
        )
    return scheme, target


def load_vlm(settings: Settings) -> VisionLanguageModel:
    """The configured VLM; raises ModelUnavailableError with the fix when it cannot be loaded."""
    if not settings.vlm_enabled:
        raise ModelUnavailableError("the VLM is off (KB_VLM=none)")
    scheme, target = parse_spec(settings.vlm)
    return BACKENDS[scheme].build(target, settings)


def expected_model_id(settings: Settings) -> str:
    """The model id the configured backend would record with a caption, known before loading it."""
    scheme, target = parse_spec(settings.vlm)
    return openai_vlm.parse_target(target)[0] if scheme == "openai" else target


def expected_settings_tag(settings: Settings) -> str:
    """The caption settings tag the configured backend would record, known before loading it."""
    scheme, _ = parse_spec(settings.vlm)
    return BACKENDS[scheme].settings_tag(settings)
