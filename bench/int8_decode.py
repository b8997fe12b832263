"""Int8 weight-only quantization of the language model vs the project's VLM path, on the Qwen3-VL-2B timing twin."""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn
from vlm_cpu import ForwardClock, build_twin, make_images, peak_rss_gb  # the sibling benchmark's twin and clock

TWIN_NOTE = (
    "The timing twin has random weights: the logit agreement measures the numerical fidelity of the quantized "
    "kernels on the same inputs against the project's model, not answer quality."
)
GB = 1024**3


# --------------------------------------------------------------------------- the variants


def _decode_linear(fqn: str) -> bool:
    """The nn.Linear layers that every decode step reads: the text decoder's and the lm_head (not the vision tower)."""
    return fqn.startswith("model.language_model.") or fqn == "lm_head"


def quantize_torchao(model: nn.Module) -> None:
    """torchao's Int8WeightOnlyConfig (per-row symmetric int8 weights, activations stay in the model's dtype)."""
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    config = Int8WeightOnlyConfig(set_inductor_config=False)  # eager, as the project runs the model
    quantize_(model, config, filter_fn=lambda module, fqn: isinstance(module, nn.Linear) and _decode_linear(fqn))


class Int8PackLinear(nn.Module):
    """nn.Linear with per-row symmetric int8 weights: torch's own weight-only kernel for decode (one row of
    activations), the weights cast to the activations' dtype for prefill, where that kernel is slow."""

    def __init__(self, linear: nn.Linear, chunk_rows: int = 4096) -> None:
        super().__init__()
        weight = linear.weight.detach()
        qweight = torch.empty(weight.shape, dtype=torch.int8)
        scale = torch.empty(weight.shape[0], dtype=torch.float32)
        for start in range(0, weight.shape[0], chunk_rows):  # a few rows in float32 at a time: a low peak
            rows = weight[start : start + chunk_rows].float()
            scale[start : start + chunk_rows] = rows.abs().amax(dim=1).clamp(min=1e-8) / 127
            qweight[start : start + chunk_rows] = torch.round(rows / scale[start : start + chunk_rows, None])
        self.register_buffer("qweight", qweight)
        self.register_buffer("scale", scale.to(weight.dtype))
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        if flat.shape[0] == 1:
            out = torch.ops.aten._weight_int8pack_mm(flat, self.qweight, self.scale)
        else:
            out = nn.functional.linear(flat, self.qweight.to(flat.dtype)) * self.scale
        out = out.reshape(*x.shape[:-1], out.shape[-1])
        return out if self.bias is None else out + self.bias


def quantize_int8pack(model: nn.Module, head: bool = True) -> None:
    """Int8PackLinear for the text decoder's linear layers, and for the lm_head unless `head` is False."""
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            fqn = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and _decode_linear(fqn) and (head or fqn != "lm_head"):
                setattr(module, child_name, Int8PackLinear(child))


def quantize_dynamic_int8(model: nn.Module) -> None:
    """torch.ao quantize_dynamic: per-channel qint8 weights, activations quantized per call, float32 around them."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    for layer in model.model.language_model.layers:  # to float32 one layer at a time, for a lower peak
        quantize_dynamic(layer.float(), {nn.Linear: per_channel_dynamic_qconfig}, inplace=True)
        gc.collect()  # the replaced float32 modules sit in reference cycles: free them now, not at the end
    model.float()  # the int8 kernels take float32 activations: everything around them runs in float32
    quantize_dynamic(model, {"lm_head": per_channel_dynamic_qconfig}, inplace=True)


# name -> (dtype for TransformersVLM, None = the project's default; quantizer applied after loading, None = as loaded)
VARIANTS: dict[str, tuple[str | None, Callable[[nn.Module], None] | None]] = {
    "project": (None, None),
    "float32": ("float32", None),
    "torchao_int8wo": (None, quantize_torchao),
    "aten_int8pack": (None, quantize_int8pack),
    "aten_int8pack_layers": (None, lambda model: quantize_int8pack(model, head=False)),  # lm_head left as loaded
    "dynamic_int8": (None, quantize_dynamic_int8),
}


# --------------------------------------------------------------------------- measurement (one variant per process)


def weight_bytes(module: nn.Module) -> int:
    """Bytes of parameters, buffers and packed int8 weights, tied tensors counted once."""
    seen: dict[int, torch.Tensor] = {}  # keeps each counted tensor alive, so no id is reused
    total = 0
    for sub in module.modules():
        tensors = [*sub.parameters(recurse=False), *sub.buffers(recurse=False)]
        packed = getattr(sub, "_packed_params", None)  # torch.ao dynamic Linear keeps its weight packed here
        if packed is not None and hasattr(packed, "_weight_bias"):
            tensors += [t for t in packed._weight_bias() if t is not None]
        for tensor in tensors:
            if id(tensor) in seen:
                continue
            seen[id(tensor)] = tensor
            if tensor.is_quantized:
                total += tensor.numel() * tensor.element_size()
            elif type(tensor) not in (torch.Tensor, nn.Parameter) and hasattr(tensor, "__tensor_flatten__"):
                names, _ = tensor.__tensor_flatten__()  # a torchao tensor subclass: int8 data + scales
                total += sum(getattr(tensor, n).numel() * getattr(tensor, n).element_size() for n in names)
            else:
                total += tensor.numel() * tensor.element_size()
    return total


class ForceTokens:
    """Logits processor for teacher forcing: the next token is always the reference's, whatever the model says."""

    def __init__(self, tokens: list[int], prompt_len: int) -> None:
        self.tokens, self.prompt_len = tokens, prompt_len

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.tokens[input_ids.shape[1] - self.prompt_len]] = 0.0
        return forced


def timed_generation(vlm: Any, clock: ForwardClock, conversation: list, tokens: int, reference: dict | None) -> tuple:
    """One greedy generation of `tokens` tokens, teacher-forced onto the reference's tokens when one is given."""
    from transformers import LogitsProcessorList

    t0 = time.perf_counter()
    inputs = vlm.prepare(conversation)  # image preprocessing counts towards the first token
    prompt_len = inputs["input_ids"].shape[1]
    forced = [] if reference is None else [ForceTokens(reference["tokens"], prompt_len)]
    clock.start()
    out = vlm.generate_ids(
        inputs,
        tokens,
        min_new_tokens=tokens,
        logits_processor=LogitsProcessorList(forced),
        output_logits=True,  # the raw logits, before any processor
        return_dict_in_generate=True,
    )
    pre, post = clock.calls[-1]["pre"], clock.calls[-1]["post"]
    timing = {
        "first_token_s": post[0] - t0,
        "prefill_s": post[0] - pre[0],
        "decode_tok_s": (len(post) - 1) / (post[-1] - post[0]),
    }
    return timing, out, prompt_len


def agreement(logits: torch.Tensor, reference: torch.Tensor) -> dict:
    """Top-1 agreement and cosine similarity of two [steps, vocab] logit tensors, step by step."""
    cosine = nn.functional.cosine_similarity(logits, reference, dim=-1)
    return {
        "top1_agreement": (logits.argmax(-1) == reference.argmax(-1)).float().mean().item(),
        "cosine_mean": cosine.mean().item(),
        "cosine_min": cosine.min().item(),
    }


def run_variant(name: str, model_id: str, tokens: int, reps: int, work: Path) -> dict:
    """Load as the transformers backend does, quantize, warm up, time `reps` generations; last logits to `work`."""
    from kb.config import Settings
    from kb.models.transformers_vlm import TransformersVLM
    from kb.models.vlm import CAPTION_PROMPT

    dtype, quantize = VARIANTS[name]
    t0 = time.perf_counter()
    vlm = TransformersVLM(model_id, max_pixels=Settings().vlm_max_pixels, dtype=dtype, device="cpu")
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    if quantize is not None:
        quantize(vlm.model)
    quantize_s = time.perf_counter() - t0
    model = vlm.model
    decode_bytes = weight_bytes(model.model.language_model.layers) + weight_bytes(model.lm_head)
    clock = ForwardClock(model)
    warm_up = [{"type": "image", "image": Image.new("RGB", (64, 64), "white")}, {"type": "text", "text": "Hi"}]
    vlm.generate_ids(vlm.prepare([[{"role": "user", "content": warm_up}]]), 2)  # untimed: kernels, caches
    # The project's run picks the tokens; every other variant decodes the very same ones (teacher forcing).
    reference = None if name == "project" else torch.load(work / "project.pt")
    content = [{"type": "image", "image": make_images(1)[0]}, {"type": "text", "text": CAPTION_PROMPT}]
    conversation = [[{"role": "user", "content": content}]]  # the ingest's caption call (349 tokens on the twin)
    runs = []
    for _ in range(reps):
        timing, out, prompt_len = timed_generation(vlm, clock, conversation, tokens, reference)
        runs.append(timing)
    live = len(vlm.processor.tokenizer)  # rows past the tokenizer are padding (zero in the twin): left out
    logits = torch.cat(out.logits).float()[:, :live]
    torch.save({"tokens": out.sequences[0, prompt_len:].tolist(), "logits": logits}, work / f"{name}.pt")
    return {
        "variant": name,
        "dtype": str(next(model.model.visual.parameters()).dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "prompt_tokens": prompt_len,
        "load_s": load_s,
        "quantize_s": quantize_s,
        **{key: statistics.median(run[key] for run in runs) for key in runs[0]},
        "weight_gib": weight_bytes(model) / GB,
        "decode_weight_gib": decode_bytes / GB,  # read once per generated token
        "peak_rss_gib": peak_rss_gb(),  # VmHWM of this process: load, quantization and generation
        "rss_anon_gib": rss_anon_gb(),  # at the end, without the checkpoint's file pages mapped by the loader
    }


def rss_anon_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024 / GB
    return float("nan")


# --------------------------------------------------------------------------- driver


def run_subprocess(name: str, model_id: str, tokens: int, reps: int, work: Path) -> dict:
    command = [sys.executable, __file__, "--variant", name, "--model", model_id, "--tokens", str(tokens)]
    done = subprocess.run([*command, "--reps", str(reps), "--work", str(work)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-3000:])
        return {"variant": name, "error": f"exit code {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(rounds: list[dict[str, dict]], work: Path) -> dict[str, dict]:
    """Medians over rounds (speed ratios paired with the project's run of the same round), then logit agreement."""
    summary: dict[str, dict] = {}
    for name in rounds[0]:
        ok = [r for r in rounds if "error" not in r[name] and "error" not in r["project"]]
        if not ok:
            summary[name] = {"error": rounds[0][name].get("error", "the project's run failed")}
            continue
        keys = [k for k, v in ok[0][name].items() if isinstance(v, float | int)]
        row: dict[str, Any] = {k: round(statistics.median(r[name][k] for r in ok), 4) for k in keys}
        row["dtype"] = ok[0][name]["dtype"]
        for key in ("decode_tok_s", "prefill_s", "first_token_s"):
            row[f"{key}_vs_project"] = round(statistics.median(r[name][key] / r["project"][key] for r in ok), 3)
        row["rounds"] = len(ok)
        summary[name] = row
    logits = {p.stem: torch.load(p)["logits"] for p in work.glob("*.pt")}
    if "project" in logits and "error" not in summary["project"]:  # how close the twin's top two logits are
        top2 = logits["project"].topk(2, dim=-1).values
        margin = (top2[:, 0] - top2[:, 1]) / logits["project"].std(dim=-1)
        summary["project"]["top1_margin_in_std_median"] = round(margin.median().item(), 4)
    for name, row in summary.items():
        for other in ("project", "float32"):
            if name != other and name in logits and other in logits:
                row.update({f"{k}_vs_{other}": round(v, 5) for k, v in agreement(logits[name], logits[other]).items()})
    return summary


def report(summary: dict[str, dict]) -> None:
    rows = [
        ("activation dtype", "dtype", "{}"),
        ("decode tokens/s", "decode_tok_s", "{:.2f}"),
        ("decode tokens/s vs project", "decode_tok_s_vs_project", "{:.2f}x"),
        ("prefill s", "prefill_s", "{:.2f}"),
        ("first token s", "first_token_s", "{:.2f}"),
        ("load s", "load_s", "{:.1f}"),
        ("quantize s", "quantize_s", "{:.1f}"),
        ("model weights GiB", "weight_gib", "{:.2f}"),
        ("weights read per token GiB", "decode_weight_gib", "{:.2f}"),
        ("peak RSS (VmHWM) GiB", "peak_rss_gib", "{:.2f}"),
        ("RssAnon at the end GiB", "rss_anon_gib", "{:.2f}"),
        ("top-1 agreement vs project", "top1_agreement_vs_project", "{:.3f}"),
        ("logit cosine vs project, mean", "cosine_mean_vs_project", "{:.5f}"),
        ("logit cosine vs project, min", "cosine_min_vs_project", "{:.5f}"),
        ("top-1 agreement vs float32", "top1_agreement_vs_float32", "{:.3f}"),
        ("logit cosine vs float32, mean", "cosine_mean_vs_float32", "{:.5f}"),
    ]

    def cell(row: dict, key: str, fmt: str) -> str:
        if "error" in row:
            return row["error"][:15]
        return fmt.format(row[key]) if key in row else "-"

    print(f"{'':32}" + "".join(f"{name:>22}" for name in summary))
    for label, key, fmt in rows:
        print(f"{label:32}" + "".join(f"{cell(row, key, fmt):>22}" for row in summary.values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 round of project, aten_int8pack and dynamic_int8")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds of all variants (default 3)")
    parser.add_argument("--reps", type=int, default=1, help="timed generations per process, after a warm-up")
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per generation, fixed")
    parser.add_argument("--variants", default=None, help=f"comma-separated, from {','.join(VARIANTS)}")
    parser.add_argument("--twin", type=Path, default=None, help="reuse (or write) the timing twin in this folder")
    parser.add_argument("--model", default=None, help="a real checkpoint (id or path) instead of the twin")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.model, args.tokens, args.reps, args.work)))
        return 0

    rounds = args.rounds or (1 if args.quick else 3)
    quick = ["aten_int8pack", "dynamic_int8"]
    names = args.variants.split(",") if args.variants else quick if args.quick else list(VARIANTS)
    others = [n for n in names if n != "project"]
    if "torchao_int8wo" in others and importlib.util.find_spec("torchao") is None:
        print("torchao is not installed (pip install torchao): its variant is skipped", flush=True)
        others.remove("torchao_int8wo")
    twin_dir = None if args.model else args.twin or Path(tempfile.mkdtemp(prefix="qwen3vl2b-twin-"))
    work = Path(tempfile.mkdtemp(prefix="int8-decode-"))
    load_start = os.getloadavg()
    note = TWIN_NOTE if twin_dir else f"Weights from {args.model}: the logit agreement is a quality check."
    try:
        if twin_dir is not None:
            t0 = time.perf_counter()
            build_twin(twin_dir)
            print(f"timing twin ready in {time.perf_counter() - t0:.1f} s at {twin_dir}", flush=True)
        model_id = args.model or str(twin_dir)
        results = []
        for index in range(rounds):
            shift = index % len(others) if others else 0
            measured = {}
            for name in ["project", *others[shift:], *others[:shift]]:  # the project's run picks the tokens
                measured[name] = run_subprocess(name, model_id, args.tokens, args.reps, work)
                print(f"round {index + 1}: {json.dumps(measured[name])}", flush=True)
            results.append(measured)
        summary = summarize(results, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if twin_dir is not None and args.twin is None:
            shutil.rmtree(twin_dir, ignore_errors=True)
    report(summary)
    print(note)
    bar = {
        name: row["decode_tok_s_vs_project"] >= 1.15 and row["top1_agreement_vs_project"] >= 0.95
        for name, row in summary.items()
        if name not in ("project", "float32") and "error" not in row
    }
    result = {"note": note, "new_tokens": args.tokens, "rounds": rounds, "cpus": os.cpu_count()}
    result |= {"loadavg_start": load_start, "loadavg_end": os.getloadavg(), "variants": summary}
    print(json.dumps(result | {"int8_meets_bar": bar}))  # bar: >= 1.15x decode tokens/s, >= 0.95 top-1 agreement
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
