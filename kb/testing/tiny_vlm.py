"""Write tiny random-weight Qwen3-VL checkpoints (weights, tokenizer, processor) that load fully offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import Qwen2Tokenizer

_CORPUS = """\
The chart shows sales by month. The bar chart has twelve bars, one for each month of the year.
A diagram of the network: three servers, two routers and one firewall, connected by lines.
The line graph rises from 10 to 250 between 2019 and 2024. The axis is labelled in thousands.
This photo shows a receipt with a total of 42.50 dollars, a date and a shop name at the top.
The table has four columns: name, value, unit and source. The numbers 0 1 2 3 4 5 6 7 8 9 appear.
A pie chart with five slices: red, blue, green, yellow and grey. The largest slice is 35 percent.
The screenshot shows a login form with a user name field, a password field and a blue button.
A flow chart: start, read the image, find the text, describe the picture, answer the question, end.
Describe this image. What does the diagram show? Which number is the largest? Answer briefly.
"""

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Same semantics as the Qwen3-VL Instruct template (without tools): string or list-of-parts content.
CHAT_TEMPLATE = (
    "{%- set image_count = namespace(value=0) -%}"
    "{%- set video_count = namespace(value=0) -%}"
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message.role + '\\n' -}}"
    "{%- if message.content is string -%}{{- message.content -}}"
    "{%- else -%}{%- for content in message.content -%}"
    "{%- if content.type == 'image' or 'image' in content or 'image_url' in content -%}"
    "{%- set image_count.value = image_count.value + 1 -%}"
    "{%- if add_vision_id -%}Picture {{ image_count.value }}: {% endif -%}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif content.type == 'video' or 'video' in content -%}"
    "{%- set video_count.value = video_count.value + 1 -%}"
    "{%- if add_vision_id -%}Video {{ video_count.value }}: {% endif -%}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{%- elif 'text' in content -%}{{- content.text -}}"
    "{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def _train_tokenizer(vocab_size: int = 640) -> Qwen2Tokenizer:
    """A byte-level BPE trained on `_CORPUS` (~560 tokens), plus the Qwen special tokens."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(_CORPUS.splitlines(), trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    tokenizer = Qwen2Tokenizer(
        vocab=model["vocab"],
        merges=[tuple(merge) for merge in model["merges"]],
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.add_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS])
    return tokenizer


def write_tiny_qwen3_vl(out_dir: Path, *, seed: int = 0, hidden_size: int = 64, num_layers: int = 2) -> Path:
    """Write a complete random-weight Qwen3-VL checkpoint (weights, tokenizer, processor) to `out_dir`.

    It loads with `AutoProcessor` / `AutoModelForImageTextToText.from_pretrained(out_dir)` without network.
    `hidden_size` must be a multiple of 32: heads of 16 dims, half as many key/value heads.
    """
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    if hidden_size % 32:
        raise ValueError(f"hidden_size must be a multiple of 32, got {hidden_size}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = _train_tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    vision_kwargs = {"patch_size": 16, "temporal_patch_size": 2, "merge_size": 2}
    size = {"shortest_edge": 32 * 32, "longest_edge": 256 * 256}  # min_pixels / max_pixels
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size, image_mean=[0.5] * 3, image_std=[0.5] * 3, **vision_kwargs),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(
            size={"shortest_edge": 32 * 32 * 2, "longest_edge": 256 * 256 * 2},
            image_mean=[0.5] * 3,
            image_std=[0.5] * 3,
            **vision_kwargs,
        ),
        chat_template=CHAT_TEMPLATE,
    )

    head_dim = 16
    config = Qwen3VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": num_layers,
            "num_attention_heads": hidden_size // head_dim,
            "num_key_value_heads": hidden_size // head_dim // 2,
            "head_dim": head_dim,
            "max_position_embeddings": 4096,
            "pad_token_id": ids["<|endoftext|>"],
            # mrope_section sums to head_dim / 2 (T, H, W), interleaved as in the real model.
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 5_000_000.0,
                "mrope_section": [4, 2, 2],
                "mrope_interleaved": True,
            },
        },
        vision_config={
            "depth": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_heads": 4,
            "out_hidden_size": hidden_size,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "num_position_embeddings": 256,  # a 16x16 learned grid, interpolated to each image's grid
            "deepstack_visual_indexes": [0],  # injected into text layer 0, so any num_layers >= 1 works
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )

    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        do_sample=False,
    )
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
