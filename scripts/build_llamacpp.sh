#!/usr/bin/env bash
# Build llama.cpp's llama-server, llama-mtmd-cli and llama-quantize for this CPU from the llama-cpp-python sdist
# (which vendors llama.cpp and its convert_hf_to_gguf.py), into a cache outside the repository.
#
#   scripts/build_llamacpp.sh            # prints the directory holding bin/llama-server when done
#   LLAMACPP_PY_VERSION=0.3.36 KB_LLAMACPP_CACHE=~/.cache/image-kb/llama.cpp JOBS=2 scripts/build_llamacpp.sh
#
# Layout: $KB_LLAMACPP_CACHE/<version>/{bin/llama-server, bin/llama-mtmd-cli, bin/llama-quantize,
# convert_hf_to_gguf.py, conversion/, gguf-py/, BUILD_OK}. A finished build (BUILD_OK present) is not rebuilt.
set -euo pipefail

VERSION="${LLAMACPP_PY_VERSION:-0.3.36}"
CACHE="${KB_LLAMACPP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/image-kb/llama.cpp}"
JOBS="${JOBS:-2}"
PY="${PYTHON:-$(dirname "$0")/../.venv/bin/python}"
[ -x "$PY" ] || PY=python3
DEST="$CACHE/$VERSION"

if [ -f "$DEST/BUILD_OK" ]; then
    echo "$DEST"
    exit 0
fi
mkdir -p "$DEST"
WORK="$DEST/src"
if [ ! -d "$WORK/vendor/llama.cpp" ]; then
    tmp="$(mktemp -d)"
    "$PY" -m pip download -q --no-binary :all: --no-deps --no-build-isolation \
        "llama-cpp-python==$VERSION" -d "$tmp" >&2 ||
        "$PY" -m pip download -q --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d "$tmp" >&2
    rm -rf "$WORK" && mkdir -p "$WORK"
    tar -xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$WORK" --strip-components=1
    rm -rf "$tmp"
fi
command -v cmake >/dev/null || "$PY" -m pip install -q cmake >&2
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)

LLAMA="$WORK/vendor/llama.cpp"
cmake -S "$LLAMA" -B "$DEST/build" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON >&2
cmake --build "$DEST/build" -j "$JOBS" --target llama-server llama-mtmd-cli llama-quantize >&2

mkdir -p "$DEST/bin"
for tool in llama-server llama-mtmd-cli llama-quantize; do
    cp "$DEST/build/bin/$tool" "$DEST/bin/"
done
rm -rf "$DEST/gguf-py" "$DEST/conversion"
cp "$LLAMA/convert_hf_to_gguf.py" "$DEST/"
cp -r "$LLAMA/gguf-py" "$DEST/gguf-py"
[ -d "$LLAMA/conversion" ] && cp -r "$LLAMA/conversion" "$DEST/conversion"
[ -f "$LLAMA/convert_hf_to_gguf_update.py" ] && cp "$LLAMA/convert_hf_to_gguf_update.py" "$DEST/"
echo "$VERSION" >"$DEST/BUILD_OK"
echo "$DEST"
