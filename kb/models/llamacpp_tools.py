"""llama.cpp's tools as `scripts/build_llamacpp.sh` caches them: finding them, and Hugging Face -> GGUF conversion.

Knows nothing about serving (see `llama_server`); never builds anything itself: a missing build is reported, with the
command that makes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

LLAMACPP_VERSION = "0.3.36"  # the llama-cpp-python sdist whose vendored llama.cpp the build script compiles
BUILD_HINT = "build it with scripts/build_llamacpp.sh (about 30 minutes on 2 cores) or set KB_LLAMA_SERVER"
TEXT_TYPES = ("bf16", "q8_0", "q4_k_m")  # GGUF weight types of the text model this project converts and measures

# Runs the vendored converter with two patches: a twin or test checkpoint whose small tokenizer has an unknown
# pre-tokenizer hash is declared Qwen2's (the real Qwen3-VL tokenizers are recognised and never reach the fallback),
# and a checkpoint without tokenizer.model skips the SentencePiece attempt (so sentencepiece need not be installed).
CONVERT = """
import runpy, sys
tools = sys.argv.pop(1)
sys.path[:0] = [tools, tools + "/gguf-py"]
from conversion.base import TextModel
original_pre, original_sp = TextModel.get_vocab_base_pre, TextModel._set_vocab_sentencepiece
def vocab_pre(self, tokenizer):
    try:
        return original_pre(self, tokenizer)
    except NotImplementedError:
        return "qwen2"
def vocab_sentencepiece(self, *args, **kwargs):
    if not (self.dir_model / "tokenizer.model").is_file():
        raise FileNotFoundError("no tokenizer.model")
    return original_sp(self, *args, **kwargs)
TextModel.get_vocab_base_pre, TextModel._set_vocab_sentencepiece = vocab_pre, vocab_sentencepiece
sys.argv[0] = tools + "/convert_hf_to_gguf.py"
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def cache_root() -> Path:
    """KB_LLAMACPP_CACHE, else ~/.cache/image-kb/llama.cpp (outside any repository)."""
    configured = os.environ.get("KB_LLAMACPP_CACHE", "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "image-kb" / "llama.cpp"


def build_dir() -> Path | None:
    """The finished build of LLAMACPP_VERSION in the cache, else the newest finished one, else None."""
    root = cache_root()
    preferred = root / LLAMACPP_VERSION
    if (preferred / "BUILD_OK").exists():
        return preferred
    built = sorted((p.parent for p in root.glob("*/BUILD_OK")), key=lambda p: p.stat().st_mtime)
    return built[-1] if built else None


def find_tool(name: str) -> Path | None:
    """A llama.cpp program: KB_LLAMA_SERVER (for llama-server), the cached build, then PATH."""
    if name == "llama-server" and os.environ.get("KB_LLAMA_SERVER", "").strip():
        configured = Path(os.environ["KB_LLAMA_SERVER"].strip()).expanduser()
        return configured if configured.is_file() and os.access(configured, os.X_OK) else None
    build = build_dir()
    if build is not None and (build / "bin" / name).is_file():
        return build / "bin" / name
    found = shutil.which(name)
    return Path(found) if found else None


def convert(hf_dir: Path, out: Path, *, outtype: str = "bf16", mmproj: bool = False) -> Path:
    """Convert a Hugging Face Qwen3-VL checkpoint to GGUF (the text model, or with `mmproj` the vision projector).

    Skips the work when `out` exists; raises FileNotFoundError when no build holds the converter.
    """
    if out.exists():
        return out
    build = build_dir()
    if build is None or not (build / "convert_hf_to_gguf.py").exists():
        raise FileNotFoundError(f"llama.cpp's convert_hf_to_gguf.py is not cached: {BUILD_HINT}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    command = [sys.executable, "-c", CONVERT, str(build), str(hf_dir), "--outfile", str(partial)]
    command += ["--outtype", outtype] + (["--mmproj"] if mmproj else [])
    subprocess.run(command, check=True, capture_output=True, text=True)
    partial.replace(out)
    return out


def quantize(source: Path, out: Path, kind: str, threads: int = 2) -> Path:
    """llama-quantize `source` to `kind` (Q8_0, Q4_K_M, ...); skips the work when `out` exists."""
    if out.exists():
        return out
    tool = find_tool("llama-quantize")
    if tool is None:
        raise FileNotFoundError(f"llama-quantize is not built: {BUILD_HINT}")
    partial = out.with_suffix(".partial")
    subprocess.run([str(tool), str(source), str(partial), kind.upper(), str(threads)], check=True, capture_output=True)
    partial.replace(out)
    return out


def convert_all(hf_dir: Path, out_dir: Path, types: tuple[str, ...] = TEXT_TYPES) -> dict[str, Path]:
    """GGUFs of `hf_dir` in `out_dir`: {"mmproj": f16 projector, "bf16": ..., "q8_0": ..., "q4_k_m": ...}."""
    name = hf_dir.resolve().name
    files = {"mmproj": convert(hf_dir, out_dir / f"mmproj-{name}-f16.gguf", outtype="f16", mmproj=True)}
    bf16 = convert(hf_dir, out_dir / f"{name}-bf16.gguf", outtype="bf16")
    for kind in types:
        files[kind] = bf16 if kind == "bf16" else quantize(bf16, out_dir / f"{name}-{kind}.gguf", kind)
    return files
