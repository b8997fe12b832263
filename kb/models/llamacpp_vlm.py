"""The llama.cpp backend: a GGUF (text model + mmproj projector) served by a `llama-server` this process starts.

Spec: `llamacpp:TARGET[@QUANT]`, TARGET a Hugging Face repo id found in the local cache (for example
`llamacpp:Qwen/Qwen3-VL-2B-Instruct-GGUF@Q8_0`), a folder of GGUF files, or one `.gguf` file with its projector (a
`*mmproj*.gguf`) beside it. The server binary comes from KB_LLAMA_SERVER, the cache of `scripts/build_llamacpp.sh`,
or PATH; it listens on loopback only, uses KB_VLM_THREADS threads, and stops when the backend is closed or the
process exits. Everything after the start goes through the OpenAI-compatible backend.
"""

from __future__ import annotations

from pathlib import Path

from kb.config import Settings
from kb.errors import ModelUnavailableError
from kb.models import llamacpp_tools
from kb.models.hub import hub_reachable
from kb.models.llama_server import LlamaServer
from kb.models.openai_vlm import PATCH, OpenAICompatibleVLM
from kb.models.vlm import CAPTION_PROMPT_VERSION

DEFAULT_QUANT = "Q8_0"  # near-lossless; the quant of the recommended CPU path measured in README, Performance
# One request at a time by default: on a few CPU cores, prefills in parallel slots only contend, and one slot keeps
# the caption instructions' KV cache from image to image (README, Performance).
DEFAULT_CONCURRENCY = 1
CTX_TOKENS = 4096  # KV cache for one answer (3 images of 196 tokens, their text, 256 new tokens) ...
CTX_PER_REQUEST = 1024  # ... plus one caption (196 visual tokens, prompt, 96 new tokens) per request in flight


def parse_target(target: str) -> tuple[str, str]:
    """`REPO_OR_PATH[@QUANT]` -> (repo or path, quant); the quant of a `.gguf` file is its name, else Q8_0."""
    source, separator, quant = target.rpartition("@")
    if not (separator and source and "/" not in quant):
        source, quant = target, DEFAULT_QUANT
    if source.endswith(".gguf"):
        return source, Path(source).name
    return source, quant.upper()


def pick_files(files: list[Path], quant: str) -> tuple[Path, Path]:
    """(text model, projector) among GGUF files: the text file named for `quant`, the f16 (or best) `*mmproj*` one."""
    projectors = [f for f in files if "mmproj" in f.name.lower()]
    texts = [f for f in files if f not in projectors and not f.name.endswith(".partial")]
    wanted = [f for f in texts if quant.lower() in f.name.lower()]
    if not projectors or not (wanted or len(texts) == 1):
        names = ", ".join(sorted(f.name for f in files)) or "none"
        raise FileNotFoundError(f"expected a {quant} GGUF and a *mmproj*.gguf projector, found: {names}")
    ranked = sorted(projectors, key=lambda f: [k not in f.name.lower() for k in ("f16", "bf16", quant.lower())])
    return (wanted or texts)[0], ranked[0]


def find_gguf(source: str, quant: str) -> tuple[Path, Path]:
    """The (text, mmproj) GGUF pair for a path or a Hugging Face repo id: the local cache first, the hub if reachable.

    Raises ModelUnavailableError naming what is missing.
    """
    path = Path(source).expanduser()
    try:
        if path.is_file():
            projectors = [f for f in sorted(path.parent.glob("*mmproj*.gguf")) if f != path]
            return path, pick_files([path, *projectors], quant)[1]
        if path.is_dir():
            return pick_files(sorted(path.glob("*.gguf")), quant)
        return pick_files(hub_files(source, quant), quant)
    except FileNotFoundError as error:
        raise ModelUnavailableError(f"no usable GGUF for {source!r}: {error}") from None


def hub_files(repo_id: str, quant: str) -> list[Path]:
    """The repo's GGUF files from the Hugging Face cache; downloaded (this quant and the projectors) only if online."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = [f"*{quant}*.gguf", f"*{quant.lower()}*.gguf", "*mmproj*.gguf"]
    try:
        folder = snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True)
        files = sorted(Path(folder).glob("*.gguf"))
        if files:
            return files
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    if not hub_reachable():
        raise FileNotFoundError("not in the Hugging Face cache and the hub is unreachable (offline)")
    try:
        folder = snapshot_download(repo_id, allow_patterns=patterns)
    except (HfHubHTTPError, OSError, ValueError) as error:
        raise FileNotFoundError(f"download failed: {error}") from None
    return sorted(Path(folder).glob("*.gguf"))


def settings_tag(max_pixels: int, max_new_tokens: int, quant: str) -> str:
    """The settings that change a caption, recorded with it."""
    return (
        f"prompt={CAPTION_PROMPT_VERSION} max_pixels={max_pixels} max_new_tokens={max_new_tokens} "
        f"backend=llamacpp quant={quant}"
    )


class LlamaCppVLM(OpenAICompatibleVLM):
    """Captions and answers from a `llama-server` child process serving a GGUF; `close()` stops it."""

    def __init__(
        self,
        target: str,
        *,
        max_pixels: int = 448 * 448,
        caption_max_new_tokens: int = 96,
        concurrency: int = DEFAULT_CONCURRENCY,
        threads: int = 2,
        timeout_s: float = 600.0,
    ) -> None:
        binary = llamacpp_tools.find_tool("llama-server")
        if binary is None:
            raise ModelUnavailableError(f"llama-server not found: {llamacpp_tools.BUILD_HINT}")
        source, quant = parse_target(target)
        model, mmproj = find_gguf(source, quant)
        self.server = LlamaServer(
            binary,
            model,
            mmproj,
            threads=threads,
            ctx_size=CTX_TOKENS + CTX_PER_REQUEST * concurrency,
            parallel=concurrency,
            image_max_tokens=max_pixels // (PATCH * PATCH),
        )
        try:
            self.server.wait_ready()
        except RuntimeError as error:
            raise ModelUnavailableError(str(error)) from None
        super().__init__(
            "kb",
            self.server.base_url,
            max_pixels=max_pixels,
            caption_max_new_tokens=caption_max_new_tokens,
            concurrency=concurrency,
            timeout_s=timeout_s,
        )
        self.model_id = target
        self.model_file = model
        self.settings_tag = settings_tag(max_pixels, caption_max_new_tokens, quant)

    def close(self) -> None:
        """Stop the server (also done at exit)."""
        self.server.stop()


def from_settings(target: str, settings: Settings) -> LlamaCppVLM:
    return LlamaCppVLM(
        target,
        max_pixels=settings.vlm_max_pixels,
        caption_max_new_tokens=settings.caption_max_new_tokens,
        concurrency=settings.vlm_concurrency or DEFAULT_CONCURRENCY,
        threads=settings.vlm_threads,
    )


def expected_settings_tag(settings: Settings) -> str:
    _, target = settings.vlm.split(":", 1)
    return settings_tag(settings.vlm_max_pixels, settings.caption_max_new_tokens, parse_target(target)[1])
