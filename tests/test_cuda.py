"""The transformers backend on a CUDA GPU: batched captions of images of different sizes, a streamed answer, and the
refusal of a transformers release without control-token sanitizing. Skipped where torch sees no GPU (CI); on a GPU
machine that lacks the rest of the stack: `python -m pytest --noconftest -p no:cacheprovider tests/test_cuda.py`."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")


def chart(size: tuple[int, int], label: str) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((10, 10), label, fill="black")
    return image


@pytest.fixture(scope="module")
def cuda_vlm(tmp_path_factory):
    from kb.models.transformers_vlm import TransformersVLM
    from kb.testing.tiny_vlm import write_tiny_qwen3_vl

    folder = write_tiny_qwen3_vl(tmp_path_factory.mktemp("tiny-vlm"))
    return TransformersVLM(str(folder), max_pixels=128 * 128, caption_max_new_tokens=8, device="auto")


def test_auto_picks_the_gpu_in_bfloat16(cuda_vlm):
    assert cuda_vlm.device == "cuda" and cuda_vlm.dtype_name == "bfloat16"
    assert cuda_vlm.batch_size == 32 and next(cuda_vlm.model.parameters()).is_cuda


def test_a_batch_of_images_of_different_sizes_is_captioned_on_the_gpu(cuda_vlm):
    images = [chart((64 + 40 * index, 48 + 24 * (index % 3)), f"chart {index}") for index in range(6)]
    captions = cuda_vlm.describe(images)
    assert len(captions) == 6 and all(isinstance(caption, str) for caption in captions)


def test_an_answer_streams_from_the_gpu_with_two_images(cuda_vlm):
    messages = [
        {"role": "system", "content": "Answer from the images."},
        {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Compare them."}]},
    ]
    pieces = list(cuda_vlm.stream(messages, [chart((96, 64), "a"), chart((160, 80), "b")], 6))
    assert pieces and all(isinstance(piece, str) for piece in pieces)


def test_a_release_without_sanitizing_is_refused_with_one_line():
    from kb.errors import ModelUnavailableError
    from kb.models.transformers_vlm import require_sanitizing_transformers

    with pytest.raises(ModelUnavailableError, match=r"transformers>=\S+ .* but 5\.17\.0 is installed"):
        require_sanitizing_transformers("5.17.0")
