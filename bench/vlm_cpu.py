"""Side-by-side CPU benchmark of the VLM: the usual transformers recipe, the project's paths, and llama.cpp."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED_OCR_PROMPT = "Read all the text in this image."
QUESTION = "How much rain falls in Lisbon in November, and where does the water go afterwards?"
SAMPLES = (  # diagrams and charts from data/samples, placed on 1024x768 canvases
    "lisbon_rainfall_bar_chart.png",
    "water_cycle_diagram.png",
    "food_chain.png",
    "toronto_temperature_line_chart.png",
    "parts_of_a_plant_cell.png",
    "periodic_table_first_18_elements.png",
    "boiling_points_table.png",
    "atmosphere_composition_pie_chart.png",
)
# Qwen3-VL-2B-Instruct's published image processor limits (preprocessor_config.json): the seed recipe's defaults.
DEFAULT_SIZE = {"shortest_edge": 65536, "longest_edge": 16777216}
GB = 1024**3


# --------------------------------------------------------------------------- the timing twin


def build_twin(out_dir: Path, tiny_text: bool = False) -> Path:
    """Write a random-weight Qwen3-VL-2B (published shapes, bf16 like the real checkpoint) to `out_dir`."""
    import torch
    from transformers import (
        AutoProcessor,
        GenerationConfig,
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
    )

    from kb.testing.tiny_vlm import write_tiny_qwen3_vl

    if (out_dir / "twin.ok").exists():
        return out_dir
    with tempfile.TemporaryDirectory() as tiny_dir:
        write_tiny_qwen3_vl(Path(tiny_dir))  # a small offline tokenizer + processor with Qwen's special tokens
        tiny = AutoProcessor.from_pretrained(tiny_dir)
    tokenizer = tiny.tokenizer
    image_processor = Qwen2VLImageProcessor(
        size=DEFAULT_SIZE, patch_size=16, temporal_patch_size=2, merge_size=2, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    processor = Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=tiny.video_processor,
        chat_template=tiny.chat_template,
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_end|>")}
    ids |= {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>")}
    ids |= {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|vision_start|>", "<|vision_end|>")}
    layers = 2 if tiny_text else 28
    config = Qwen3VLConfig(
        text_config={
            "vocab_size": 151936,
            "hidden_size": 2048,
            "intermediate_size": 6144,
            "num_hidden_layers": layers,
            "num_attention_heads": 16,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "hidden_act": "silu",
            "rms_norm_eps": 1e-6,
            "max_position_embeddings": 262144,
            "tie_word_embeddings": True,
            "pad_token_id": ids["<|endoftext|>"],
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 5_000_000.0,
                "mrope_section": [24, 20, 20],
                "mrope_interleaved": True,
            },
        },
        vision_config={
            "depth": 2 if tiny_text else 24,
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_heads": 16,
            "out_hidden_size": 2048,
            "hidden_act": "gelu_pytorch_tanh",
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "num_position_embeddings": 2304,
            "deepstack_visual_indexes": [0, 1] if tiny_text else [5, 11, 17],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    with torch.device("meta"):  # no random init of 2.1 B parameters; filled cheaply below
        model = Qwen3VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.to_empty(device="cpu")
    model.tie_weights()  # to_empty gives every parameter its own storage: tie lm_head to the embeddings again
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name and param.dim() == 1:
                param.fill_(1.0)
            elif param.dim() == 1:
                param.zero_()
            else:
                param.normal_(0.0, 0.02, generator=generator)
        # Rows past the small tokenizer's vocabulary get zero logits, so greedy decoding stays on decodable tokens;
        # the lm_head matmul still spans all 151936 rows (tied embeddings, as in the real model).
        model.get_input_embeddings().weight[len(tokenizer) :].zero_()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        do_sample=False,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    (out_dir / "twin.ok").write_text("random-weight Qwen3-VL-2B timing twin; never use it to answer\n")
    return out_dir


def make_images(count: int) -> list[Any]:
    """`count` 1024x768 RGB diagrams and charts (bundled samples, fitted onto a white canvas)."""
    from PIL import Image

    images = []
    for name in (SAMPLES * ((count // len(SAMPLES)) + 1))[:count]:
        source = Image.open(ROOT / "data" / "samples" / name).convert("RGB")
        scale = min(1024 / source.width, 768 / source.height)
        source = source.resize((round(source.width * scale), round(source.height * scale)), Image.LANCZOS)
        canvas = Image.new("RGB", (1024, 768), "white")
        canvas.paste(source, ((1024 - source.width) // 2, (768 - source.height) // 2))
        images.append(canvas)
    return images


def chat_messages() -> list[dict]:
    """The grounded-answer chat both sides answer: 3 retrieved sources, each with its image."""
    from kb.answer.prompts import SourceText, answer_messages

    sources = [
        SourceText(
            1,
            "lisbon_rainfall_bar_chart.png",
            "A bar chart of monthly rainfall in Lisbon in mm.",
            ["Lisbon monthly rainfall (mm)", "Jan 100", "Nov 128", "Dec 127", "Jul 4"],
        ),
        SourceText(
            2,
            "water_cycle_diagram.png",
            "A diagram of the water cycle with labelled arrows.",
            ["Evaporation", "Condensation", "Precipitation", "Collection", "Runoff"],
        ),
        SourceText(3, "food_chain.png", "A food chain from grass to a hawk.", ["Grass", "Grasshopper", "Hawk"]),
    ]
    return answer_messages(QUESTION, sources)


# --------------------------------------------------------------------------- measurement helpers


def peak_rss_gb() -> float:
    """This process's own peak resident set (VmHWM; not inherited from the parent, unlike ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / GB
    return float("nan")


class ForwardClock:
    """Forward hooks on the model: per generate call, prefill and decode times and the shapes that set the FLOPs."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.calls: list[dict] = []
        self._current: dict | None = None
        # transformers 5 runs the vision tower before the first forward of generate: prefill starts there.
        model.model.visual.register_forward_pre_hook(self._vision, with_kwargs=True)
        model.register_forward_pre_hook(self._pre, with_kwargs=True)
        model.register_forward_hook(self._post)

    def start(self) -> None:
        self._current = {"pre": [], "post": [], "patches": []}
        self.calls.append(self._current)

    def _vision(self, module: Any, args: Any, kwargs: dict) -> None:
        call = self._current
        if call is None:
            return
        grid = kwargs.get("grid_thw", args[1] if len(args) > 1 else None)
        call.setdefault("vision_start", time.perf_counter())
        call["patches"] += [] if grid is None else [int(g.prod()) for g in grid]

    def _pre(self, module: Any, args: Any, kwargs: dict) -> None:
        call = self._current
        if call is None:
            return
        if not call["pre"]:
            call["batch"], call["prompt_len"] = kwargs["input_ids"].shape
        call["pre"].append(call.get("vision_start", time.perf_counter()) if not call["pre"] else time.perf_counter())

    def _post(self, module: Any, args: Any, output: Any) -> None:
        if self._current is not None:
            self._current["post"].append(time.perf_counter())


def param_counts(model: Any) -> dict[str, int]:
    """Parameters in the matmuls of the vision tower, the text layers and the lm_head."""
    visual = model.model.visual.named_parameters()
    vision = sum(p.numel() for n, p in visual if "pos_embed" not in n and "merger" not in n)
    merger = sum(p.numel() for n, p in model.model.visual.named_parameters() if "merger" in n)
    text = sum(p.numel() for p in model.model.language_model.layers.parameters())
    head = model.lm_head.weight.numel()
    text_config, vision_config = model.config.text_config, model.config.vision_config
    return {
        "vision": vision,
        "merger": merger,  # the patch mergers run on 4x fewer (merged) tokens
        "text": text,
        "head": head,
        "vision_depth": vision_config.depth,
        "vision_hidden": vision_config.hidden_size,
        "text_layers": text_config.num_hidden_layers,
        "text_attn_width": text_config.num_attention_heads * text_config.head_dim,
    }


def summarize_call(call: dict, counts: dict[str, int], bytes_per_param: int) -> dict:
    """Prefill FLOPs / time and decode bytes / time for one generate call."""
    batch, length, patches = call["batch"], call["prompt_len"], call["patches"]
    attention = counts["vision_depth"] * 4 * counts["vision_hidden"]
    linear = 2 * (counts["vision"] + counts["merger"] / 4) * sum(patches)
    vision_flops = linear + sum(attention * p * p for p in patches)
    causal = counts["text_layers"] * 2 * length * length * counts["text_attn_width"]
    text_flops = batch * (2 * counts["text"] * length + causal + 2 * counts["head"])
    prefill_s = call["post"][0] - call["pre"][0]
    steps = len(call["post"]) - 1
    decode_s = call["post"][-1] - call["post"][0] if steps else 0.0
    return {
        "batch": batch,
        "prompt_len": length,
        "visual_tokens": sum(patches) // 4,
        "prefill_s": prefill_s,
        "prefill_gflop": (vision_flops + text_flops) / 1e9,
        "decode_steps": steps,
        "decode_s": decode_s,
        "decode_gb": steps * (counts["text"] + counts["head"]) * bytes_per_param / 1e9,
        "new_tokens": batch * (steps + 1),
    }


def totals(calls: list[dict]) -> dict:
    prefill_s = sum(c["prefill_s"] for c in calls)
    decode_s = sum(c["decode_s"] for c in calls)
    return {
        "prefill_gflops": sum(c["prefill_gflop"] for c in calls) / prefill_s if prefill_s else 0.0,
        "decode_gbps": sum(c["decode_gb"] for c in calls) / decode_s if decode_s else 0.0,
        "decode_tok_s": sum(c["batch"] * c["decode_steps"] for c in calls) / decode_s if decode_s else 0.0,
        "visual_tokens_per_image": calls[0]["visual_tokens"] // calls[0]["batch"] if calls else 0,
    }


def time_first_piece(pieces: Any) -> tuple[float, int]:
    """Seconds to the first non-empty streamed text piece, and the number of pieces."""
    start = time.perf_counter()
    first, count = None, 0
    for piece in pieces:
        if piece and first is None:
            first = time.perf_counter() - start
        count += 1
    return (first if first is not None else time.perf_counter() - start), count


# --------------------------------------------------------------------------- the two sides


def run_seed(twin: Path, n_images: int, tokens: int, chat: bool = True) -> dict:
    """The recipe people copy: float32, default pixel limits, one image per call, a caption call and an OCR call.

    `chat=False` leaves out its 3-image chat (3,200 float32 prompt tokens: the slowest measurement of the bench).
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor, TextIteratorStreamer

    from kb.models.vlm import CAPTION_PROMPT, fill_images

    t0 = time.perf_counter()
    processor = AutoProcessor.from_pretrained(twin)
    model = AutoModelForImageTextToText.from_pretrained(twin, dtype=torch.float32)
    load_s = time.perf_counter() - t0
    clock = ForwardClock(model)
    images = make_images(n_images)

    def inputs_for(messages: list[dict]) -> Any:
        return processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
        )

    t0 = time.perf_counter()
    for image in images:
        for prompt in (CAPTION_PROMPT, SEED_OCR_PROMPT):
            content = [{"type": "image", "image": image}, {"type": "text", "text": prompt}]
            inputs = inputs_for([{"role": "user", "content": content}])
            clock.start()
            out = model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
            processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    ingest_s = time.perf_counter() - t0
    ingest_calls = list(clock.calls)
    ingest_rss = peak_rss_gb()

    ttft = chat_total_s = None
    if chat:
        inputs = inputs_for(fill_images(chat_messages(), make_images(3)))
        streamer = TextIteratorStreamer(processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        clock.start()
        kwargs = {**inputs, "max_new_tokens": tokens, "min_new_tokens": tokens, "do_sample": False}
        worker = threading.Thread(target=model.generate, kwargs={**kwargs, "streamer": streamer})
        t0 = time.perf_counter()
        worker.start()
        ttft, _ = time_first_piece(streamer)
        worker.join()
        chat_total_s = time.perf_counter() - t0
    counts = param_counts(model)
    return _side_result(
        "seed",
        load_s,
        n_images,
        ingest_s,
        ingest_calls,
        clock.calls[-1] if chat else None,
        ttft,
        chat_total_s,
        ingest_rss,
        counts,
        bytes_per_param=4,
        dtype="float32",
        max_pixels=DEFAULT_SIZE["longest_edge"],
    )


def run_project(twin: Path, n_images: int, tokens: int) -> dict:
    """The project's ingest as users run it (TransformersVLM.describe, its defaults, RapidOCR) and its chat stream."""
    from kb.config import Settings
    from kb.media.ocr import OcrEngine
    from kb.models.transformers_vlm import TransformersVLM

    settings = Settings()
    t0 = time.perf_counter()
    vlm = TransformersVLM(str(twin), max_pixels=settings.vlm_max_pixels, caption_max_new_tokens=tokens, device="cpu")
    ocr = OcrEngine(max_side=settings.ocr_max_side)
    load_s = time.perf_counter() - t0
    vlm.model.generation_config.min_new_tokens = tokens  # same number of generated tokens as the seed side
    clock = ForwardClock(vlm.model)
    images = make_images(n_images)

    original = vlm.generate_ids

    def clocked(*args: Any, **kwargs: Any) -> Any:
        clock.start()
        return original(*args, **kwargs)

    vlm.generate_ids = clocked  # type: ignore[method-assign]  # timing only; the call itself is unchanged
    t0 = time.perf_counter()
    vlm.describe(images)
    lines = [ocr.read(image) for image in images]
    ingest_s = time.perf_counter() - t0
    ingest_calls = list(clock.calls)
    ingest_rss = peak_rss_gb()

    t0 = time.perf_counter()
    ttft, _ = time_first_piece(vlm.stream(chat_messages(), make_images(3), max_new_tokens=tokens))
    chat_total_s = time.perf_counter() - t0
    counts = param_counts(vlm.model)
    bytes_per_param = 2 if vlm.dtype_name == "bfloat16" else 4
    result = _side_result(
        "project",
        load_s,
        n_images,
        ingest_s,
        ingest_calls,
        clock.calls[-1],
        ttft,
        chat_total_s,
        ingest_rss,
        counts,
        bytes_per_param=bytes_per_param,
        dtype=vlm.dtype_name,
        max_pixels=settings.vlm_max_pixels,
    )
    result["ocr_lines_per_image"] = sum(len(x) for x in lines) / len(lines)
    return result


def _side_result(
    name: str,
    load_s: float,
    n_images: int,
    ingest_s: float,
    ingest_calls: list[dict],
    chat_call: dict | None,
    ttft: float | None,
    chat_total_s: float | None,
    ingest_rss: float,
    counts: dict[str, int],
    *,
    bytes_per_param: int,
    dtype: str,
    max_pixels: int,
) -> dict:
    ingest = [summarize_call(c, counts, bytes_per_param) for c in ingest_calls]
    chat = None if chat_call is None else summarize_call(chat_call, counts, bytes_per_param)
    return {
        "side": name,
        "dtype": dtype,
        "max_pixels": max_pixels,
        "threads": __import__("torch").get_num_threads(),
        "load_s": load_s,
        "ingest_images": n_images,
        "ingest_s": ingest_s,
        "images_per_hour": 3600 * n_images / ingest_s,
        "ingest_vlm_calls": len(ingest),
        "ingest": totals(ingest),
        "ingest_first_token_s": ingest[0]["prefill_s"] if ingest else 0.0,
        "chat_ttft_s": ttft,
        "chat_prefill_s": chat and chat["prefill_s"],
        "chat_prompt_len": chat and chat["prompt_len"],
        "chat_total_s": chat_total_s,
        "chat": chat and totals([chat]),  # None: the chat was left out
        "peak_rss_ingest_gb": ingest_rss,
        "peak_rss_gb": peak_rss_gb(),
    }


# --------------------------------------------------------------------------- the machine's ceilings


def ceilings() -> dict:
    """Best-of matmul GFLOP/s (bf16, fp32) and memory read GB/s, measured now, in this process.

    bf16 is measured only where the CPU has native bf16 (emulated, one 3072^3 product takes minutes); else NaN.
    """
    import torch

    from kb.models.transformers_vlm import cpu_supports_bf16

    result = {"matmul_bfloat16_gflops": float("nan")}
    n = 3072  # the size of the model's larger matmuls
    for dtype in (torch.bfloat16, torch.float32) if cpu_supports_bf16() else (torch.float32,):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
        result[f"matmul_{str(dtype).split('.')[-1]}_gflops"] = 2 * n**3 / best / 1e9
    big = torch.ones(256 * 1024 * 1024, dtype=torch.float32)  # 1 GiB, far past the caches
    big.sum()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        big.sum()
        best = min(best, time.perf_counter() - t0)
    result["mem_read_gbps"] = big.numel() * 4 / best / 1e9
    del big
    return result


# --------------------------------------------------------------------------- driver


def run_side(side: str, twin: Path, n_images: int, tokens: int, chat: bool = True) -> dict:
    """Run one side in a fresh process so its peak RSS is its own; it prints one JSON line."""
    command = [
        sys.executable,
        __file__,
        "--side",
        side,
        "--twin",
        str(twin),
        "--images",
        str(n_images),
        "--tokens",
        str(tokens),
        *([] if chat else ["--no-chat"]),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"{side} side failed with exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(seed: dict, transformers: dict, ceiling: dict) -> dict:
    def share(side: dict, part: str) -> tuple[float, float]:
        matmul = ceiling["matmul_bfloat16_gflops" if side["dtype"] == "bfloat16" else "matmul_float32_gflops"]
        return side[part]["prefill_gflops"] / matmul, side[part]["decode_gbps"] / ceiling["mem_read_gbps"]

    print(
        f"machine: {os.cpu_count()} CPUs; matmul bf16 {ceiling['matmul_bfloat16_gflops']:.0f} GFLOP/s, "
        f"fp32 {ceiling['matmul_float32_gflops']:.0f} GFLOP/s; memory read {ceiling['mem_read_gbps']:.1f} GB/s"
    )
    rows = [
        ("dtype / max_pixels", lambda s: f"{s['dtype']} / {s['max_pixels']}"),
        ("visual tokens per image (ingest)", lambda s: f"{s['ingest']['visual_tokens_per_image']}"),
        ("VLM calls for ingest", lambda s: f"{s['ingest_vlm_calls']}"),
        ("model load s", lambda s: f"{s['load_s']:.1f}"),
        ("ingest s (VLM + OCR)", lambda s: f"{s['ingest_s']:.1f}"),
        ("ingest images/hour", lambda s: f"{s['images_per_hour']:.0f}"),
        ("ingest first token s", lambda s: f"{s['ingest_first_token_s']:.2f}"),
        (
            "ingest prefill GFLOP/s (share)",
            lambda s: f"{s['ingest']['prefill_gflops']:.0f} ({share(s, 'ingest')[0]:.0%})",
        ),
        ("ingest decode tokens/s", lambda s: f"{s['ingest']['decode_tok_s']:.2f}"),
        ("ingest decode GB/s (share)", lambda s: f"{s['ingest']['decode_gbps']:.1f} ({share(s, 'ingest')[1]:.0%})"),
        ("chat prompt tokens (3 images)", lambda s: f"{s['chat_prompt_len']}"),
        ("chat first streamed token s", lambda s: f"{s['chat_ttft_s']:.2f}"),
        ("chat prefill GFLOP/s (share)", lambda s: f"{s['chat']['prefill_gflops']:.0f} ({share(s, 'chat')[0]:.0%})"),
        ("chat decode tokens/s", lambda s: f"{s['chat']['decode_tok_s']:.2f}"),
        ("peak RSS after ingest GB", lambda s: f"{s['peak_rss_ingest_gb']:.2f}"),
        ("peak RSS whole process GB", lambda s: f"{s['peak_rss_gb']:.2f}"),
    ]
    print(f"{'':36} {'seed recipe':>22} {'project transformers':>22}")
    for label, fmt in rows:
        sides = (seed, transformers)
        cells = ["-" if label.startswith("chat") and side["chat"] is None else fmt(side) for side in sides]
        print(f"{label:36} {cells[0]:>22} {cells[1]:>22}")
    return {
        "seed_peak_rss_gb": round(seed["peak_rss_gb"], 2),
        "seed_images_per_hour": round(seed["images_per_hour"], 1),
        "seed_chat_ttft_s": round(seed["chat_ttft_s"], 2) if seed["chat"] else None,  # None: left out (--quick)
        "seed_decode_tok_s": round(seed["chat"]["decode_tok_s"], 2) if seed["chat"] else None,
        "transformers_images_per_hour": round(transformers["images_per_hour"], 1),
        "transformers_chat_ttft_s": round(transformers["chat_ttft_s"], 2),
        "transformers_decode_tok_s": round(transformers["chat"]["decode_tok_s"], 2),
        # The ingest process's peak (model load + OCR + batched captions); chat runs in the UI's process.
        "transformers_peak_rss_gb": round(transformers["peak_rss_ingest_gb"], 2),
        "transformers_peak_rss_with_chat_gb": round(transformers["peak_rss_gb"], 2),
        **{k: round(v, 1) if v == v else None for k, v in ceiling.items()},  # NaN (not measured) -> null
    }


def report_llamacpp(sides: dict[str, dict]) -> dict:
    """The llama.cpp sides side by side; the keys they add to the last JSON line."""
    rows = [
        ("model load s", "load_s", "{:.1f}"),
        ("ingest images/hour (VLM + OCR)", "images_per_hour", "{:.0f}"),
        ("caption images/hour (VLM only)", "caption_images_per_hour", "{:.0f}"),
        ("chat first streamed token s", "chat_ttft_s", "{:.2f}"),
        ("chat decode tokens/s", "chat_decode_tok_s", "{:.2f}"),
        ("peak RSS server + client GB", "peak_rss_gb", "{:.2f}"),
    ]
    print(f"{'':36} " + " ".join(f"{name:>22}" for name in sides))
    for label, key, fmt in rows:
        cells = [fmt.format(side[key]) if side.get(key) is not None else "-" for side in sides.values()]
        print(f"{label:36} " + " ".join(f"{cell:>22}" for cell in cells))
    summary: dict[str, Any] = {}
    for name, side in sides.items():
        prefix = name.replace("llamacpp-", "llamacpp_").replace("q8_0", "q8").replace("q4_k_m", "q4")
        if name == "recommended":
            prefix = "project"
        for key, field, digits in (
            ("images_per_hour", "images_per_hour", 1),
            ("caption_images_per_hour", "caption_images_per_hour", 1),
            ("chat_ttft_s", "chat_ttft_s", 2),
            ("decode_tok_s", "chat_decode_tok_s", 2),
            ("peak_rss_gb", "peak_rss_gb", 2),
        ):
            value = side.get(field)
            summary[f"{prefix}_{key}"] = None if value is None else round(value, digits)  # null: not measured
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 images (1 for the usual recipe, which takes one per call anyway), 8 new tokens, the 3-image chat left "
        "out for the usual recipe and for llama.cpp types other than Q8_0: under 15 minutes on 2 cores",
    )
    parser.add_argument("--images", type=int, default=None, help="images to ingest on each side (default 4)")
    parser.add_argument("--tokens", type=int, default=None, help="new tokens per call, fixed (default 32)")
    parser.add_argument("--twin", type=Path, default=None, help="reuse (or write) the timing twin in this folder")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer twin, to check this script quickly")
    parser.add_argument(
        "--gguf",
        default=None,
        help="llama.cpp GGUF types to measure, comma-separated (default: q8_0,q4_k_m with --quick, else bf16 too)",
    )
    parser.add_argument("--side", choices=("seed", "project", "recommended", *PEERS), help=argparse.SUPPRESS)
    parser.add_argument("--no-chat", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n_images = args.images or (2 if args.quick else 4)
    tokens = args.tokens or (8 if args.quick else 32)
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    if args.side:
        print(json.dumps(run_one(args.side, args.twin, n_images, tokens, chat=not args.no_chat)))
        return 0

    twin_dir = args.twin or default_twin_dir(args.tiny)
    gguf_types = tuple((args.gguf or ("q8_0,q4_k_m" if args.quick else "bf16,q8_0,q4_k_m")).split(","))
    t0 = time.perf_counter()
    build_twin(twin_dir, tiny_text=args.tiny)
    print(
        f"timing twin ready in {time.perf_counter() - t0:.1f} s at {twin_dir} ({n_images} images, "
        f"{tokens} new tokens per call)",
        flush=True,
    )
    ceiling = ceilings()
    seed = run_side("seed", twin_dir, 1 if args.quick else n_images, tokens, chat=not args.quick)
    print(f"seed side done: {seed['ingest_s']:.1f} s ingest", flush=True)
    transformers = run_side("project", twin_dir, n_images, tokens)
    summary = report(seed, transformers, ceiling)
    summary |= {
        "project_path": f"transformers {transformers['dtype']}",
        "project_images_per_hour": summary["transformers_images_per_hour"],
        "project_decode_tok_s": summary["transformers_decode_tok_s"],
        "project_chat_ttft_s": summary["transformers_chat_ttft_s"],
    }
    from kb.models import llamacpp_tools

    if args.tiny:  # llama.cpp's Qwen3-VL graph asserts on the 2-layer twin's shapes
        print("llama.cpp sides skipped: they need the full twin (run without --tiny)", flush=True)
    elif llamacpp_tools.find_tool("llama-server") is None or llamacpp_tools.build_dir() is None:
        print(f"llama.cpp sides skipped: no cached build ({llamacpp_tools.BUILD_HINT})", flush=True)
    else:
        from llamacpp_sides import gguf_files

        t0 = time.perf_counter()
        gguf_files(twin_dir, tuple(dict.fromkeys((*gguf_types, RECOMMENDED_GGUF))))
        print(f"GGUF files ready in {time.perf_counter() - t0:.1f} s in {twin_dir / 'gguf'}", flush=True)
        sides = {}
        for kind in gguf_types:
            chat = not args.quick or kind == "q8_0"
            sides[f"llamacpp-{kind}"] = run_side(f"llamacpp-{kind}", twin_dir, n_images, tokens, chat=chat)
            print(f"llama.cpp {kind} done: {sides[f'llamacpp-{kind}']['images_per_hour']:.0f} images/h", flush=True)
        sides["recommended"] = run_side("recommended", twin_dir, n_images, tokens)
        summary |= report_llamacpp(sides)
        summary["project_path"] = f"llamacpp {RECOMMENDED_GGUF}"
        if "llamacpp-q8_0" in sides:
            ratio = sides["recommended"]["images_per_hour"] / sides["llamacpp-q8_0"]["images_per_hour"]
            summary["project_vs_llamacpp_q8"] = round(ratio, 3)
    summary["ingest_speedup"] = round(summary["project_images_per_hour"] / seed["images_per_hour"], 2)
    seed_ttft = seed["chat_ttft_s"]
    summary["chat_ttft_speedup"] = round(seed_ttft / summary["project_chat_ttft_s"], 2) if seed_ttft else None
    print(json.dumps(summary))
    return 0


PEERS = ("llamacpp-bf16", "llamacpp-q8_0", "llamacpp-q4_k_m")
RECOMMENDED_GGUF = "q8_0"  # the GGUF type of the project's recommended CPU path (`--vlm llamacpp:...@Q8_0`)


def default_twin_dir(tiny: bool) -> Path:
    """The twin and its GGUF files are cached outside the repository (4.3 GB + 6 GB), built once."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "image-kb"
    return cache / ("twin-qwen3vl2b-tiny" if tiny else "twin-qwen3vl2b")


def run_one(side: str, twin: Path, n_images: int, tokens: int, chat: bool = True) -> dict:
    """One side, in this process."""
    if side == "seed":
        return run_seed(twin, n_images, tokens, chat=chat)
    if side == "project":
        return run_project(twin, n_images, tokens)
    from llamacpp_sides import run_peer, run_recommended

    from kb.config import Settings

    if side == "recommended":
        return run_recommended(twin, RECOMMENDED_GGUF, n_images, tokens)
    return run_peer(twin, side.removeprefix("llamacpp-"), n_images, tokens, Settings().vlm_max_pixels, chat=chat)


if __name__ == "__main__":
    raise SystemExit(main())
