"""Caption-model comparison: caption images with each model, score against references (pycocoevalcap); no argparse."""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from kb.config import Settings
from kb.errors import KBError, ModelUnavailableError
from kb.media.images import load_image
from kb.models.vlm import CAPTION_PROMPT_VERSION

METRICS = ("bleu4", "meteor", "rouge_l", "cider", "spice")
METRIC_TITLES = {"bleu4": "BLEU-4", "meteor": "METEOR", "rouge_l": "ROUGE-L", "cider": "CIDEr", "spice": "SPICE"}
PEAK_RSS_METHOD = (
    "resident-set high-water mark (ru_maxrss) of a fresh process per model, from start to the last caption: "
    "Python, torch and transformers included (see rss_after_imports_mb)"
)


@dataclass(frozen=True)
class CaptionRun:
    """What one model did in its own process: a caption per image, the seconds each took, load time, memory."""

    model: str
    dtype: str
    captions: dict[str, str]
    seconds: list[float]
    load_seconds: float
    rss_after_imports_mb: float
    peak_rss_mb: float


def load_references(path: Path) -> dict[str, list[str]]:
    """Read {"file name": ["reference caption", ...]} or the COCO-style list [{"image": name, "captions": [...]}]."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    if isinstance(data, list):
        data = {item.get("image"): item.get("captions") for item in data if isinstance(item, dict)}
    valid = isinstance(data, dict) and all(
        isinstance(name, str) and isinstance(texts, list) and texts and all(isinstance(t, str) for t in texts)
        for name, texts in data.items()
    )
    if not valid or not data:
        raise ValueError(f'{path}: expected {{"file name": ["reference caption", ...], ...}} with at least one image')
    return data


def match_images(images_dir: Path, references: Mapping[str, Sequence[str]]) -> tuple[dict[str, Path], list[str]]:
    """The files under `images_dir` that the references name (paths relative to the folder), and the names not found."""
    if not images_dir.is_dir():
        raise KBError(f"{images_dir} is not a folder")
    files = {path.relative_to(images_dir).as_posix(): path for path in images_dir.rglob("*") if path.is_file()}
    found = {name: files[name] for name in sorted(references) if name in files}
    if not found:
        raise KBError(
            f"none of the {len(references)} images named in the references is in {images_dir} "
            "(names are paths relative to the folder, e.g. 'chart.png')"
        )
    return found, sorted(set(references) - set(found))


def check_model(model: str) -> None:
    """Fail before any captioning when a model's config cannot be found locally (or downloaded, where allowed)."""
    from transformers import AutoConfig

    from kb.models.hub import from_pretrained

    try:
        from_pretrained(AutoConfig, model)
    except (OSError, ValueError) as error:
        where = (
            "the folder holds no transformers model"
            if Path(model).is_dir()
            else "no such local folder, and not in the Hugging Face cache"
        )
        raise ModelUnavailableError(f"cannot load the model {model!r}: {where}") from error


def peak_rss_mb() -> float:
    """This process's resident-set high-water mark in MB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def caption_images(model: str, images: Mapping[str, Path], max_new_tokens: int, settings: Settings) -> CaptionRun:
    """Load `model` and caption each image on its own, timing each call; run it in a fresh process (`run_model`).

    Qwen-VL checkpoints get the project's visual-token budget (`settings.vlm_max_pixels`); any other model is loaded
    with its processor's own image settings and prompted through its chat template, as the backend does for every model.
    """
    from transformers import AutoConfig, AutoProcessor

    from kb.models.hub import from_pretrained
    from kb.models.transformers_vlm import TransformersVLM

    rss_after_imports = peak_rss_mb()
    start = time.perf_counter()
    processor = None
    if not from_pretrained(AutoConfig, model).model_type.startswith("qwen"):
        processor = from_pretrained(AutoProcessor, model)
    captioner = TransformersVLM(
        model,
        max_pixels=settings.vlm_max_pixels,
        caption_max_new_tokens=max_new_tokens,
        batch_size=1,
        processor=processor,
    )
    load_seconds = time.perf_counter() - start
    captions: dict[str, str] = {}
    seconds: list[float] = []
    for name, path in images.items():
        image = load_image(path, max_pixels=settings.max_image_pixels, max_bytes=settings.max_file_bytes)
        start = time.perf_counter()
        [captions[name]] = captioner.describe([image])
        seconds.append(time.perf_counter() - start)
    return CaptionRun(
        model, captioner.dtype_name, captions, seconds, round(load_seconds, 3), rss_after_imports, peak_rss_mb()
    )


def run_model(model: str, images: Mapping[str, Path], max_new_tokens: int, settings: Settings) -> CaptionRun:
    """`caption_images` in a freshly spawned process, so that its peak memory is this model's alone."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        try:
            return pool.submit(caption_images, model, dict(images), max_new_tokens, settings).result()
        except BrokenProcessPool as error:
            raise KBError(f"the process captioning with {model!r} died (out of memory?)") from error


def java_available() -> bool:
    return shutil.which("java") is not None


def unavailable_metrics() -> dict[str, str]:
    """Metrics that cannot run here, with the reason: METEOR and SPICE run Java; SPICE also needs Stanford CoreNLP."""
    from pycocoevalcap.spice.get_stanford_models import JAR, SPICEDIR, SPICELIB

    if not java_available():
        reason = "needs Java (no `java` command found)"
        return {"meteor": reason, "spice": reason}
    lib = Path(SPICEDIR, SPICELIB)
    if not all((lib / f"{JAR}{suffix}.jar").is_file() for suffix in ("", "-models")):
        return {
            "spice": f"needs Stanford CoreNLP ({JAR}.jar and {JAR}-models.jar in {lib}), which pycocoevalcap "
            "downloads on first use: not attempted"
        }
    return {}


def tokenize(captions: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """PTB-tokenize (Stanford CoreNLP, Java), lowercase, punctuation dropped; without Java, a Python approximation."""
    # The PTB tokenizer reads one caption per line: any line break inside a caption would shift the others.
    one_line = {name: [" ".join(text.split()) for text in texts] for name, texts in captions.items()}
    if not java_available():
        return {name: [" ".join(re.findall(r"\w+", text.lower())) for text in one_line[name]] for name in one_line}
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    return PTBTokenizer().tokenize({name: [{"caption": text} for text in texts] for name, texts in one_line.items()})


def score_captions(
    references: Mapping[str, Sequence[str]], candidates: Mapping[str, Mapping[str, str]]
) -> tuple[dict[str, dict[str, float | None]], dict[str, str]]:
    """Corpus BLEU-4, METEOR, ROUGE-L, CIDEr-D and SPICE of each candidate set (one caption per referenced image).

    Returns, per candidate set, the scores (None for a metric that cannot run here), and the reason for each metric
    that cannot. One METEOR process serves every set: it takes seconds to start. CIDEr weighs n-grams by their
    rarity across the images, so it needs several images to mean anything.
    """
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.meteor.meteor import Meteor
        from pycocoevalcap.rouge.rouge import Rouge
        from pycocoevalcap.spice.spice import Spice
    except ImportError as error:
        raise KBError("the caption metrics need pycocoevalcap: pip install -e '.[eval]'") from error

    unavailable = unavailable_metrics()
    refs = tokenize(references)
    meteor = None if "meteor" in unavailable else Meteor()
    results = {}
    for key, captions in candidates.items():
        hyps = tokenize({name: [captions[name]] for name in references})
        scores = {
            "bleu4": Bleu(4).compute_score(refs, hyps, verbose=0)[0][3],
            "meteor": None if meteor is None else meteor.compute_score(refs, hyps)[0],
            "rouge_l": Rouge().compute_score(refs, hyps)[0],
            "cider": Cider().compute_score(refs, hyps)[0],
            "spice": None,
        }
        if "spice" not in unavailable:
            try:
                scores["spice"] = Spice().compute_score(refs, hyps)[0]
            except subprocess.CalledProcessError as error:
                unavailable["spice"] = f"the SPICE jar failed (exit {error.returncode}); SPICE 1.0 needs Java 8"
        results[key] = {metric: None if value is None else round(float(value), 4) for metric, value in scores.items()}
    return results, unavailable


def compare(
    models: Sequence[str],
    images: Mapping[str, Path],
    references: Mapping[str, Sequence[str]],
    *,
    max_new_tokens: int,
    settings: Settings,
    progress: Callable[[str], None] = lambda message: None,
) -> dict:
    """Caption `images` with every model (each in its own process), then score them all against `references`."""
    models = list(dict.fromkeys(models))
    for model in models:
        check_model(model)
    runs = []
    for model in models:
        progress(f"captioning {len(images)} images with {model} ...")
        runs.append(run_model(model, images, max_new_tokens, settings))
    progress("scoring ...")
    scores, unavailable = score_captions(
        {name: references[name] for name in images}, {run.model: run.captions for run in runs}
    )
    rows = [
        {
            "model": run.model,
            "dtype": run.dtype,
            **scores[run.model],
            "seconds_mean": round(float(np.mean(run.seconds)), 4),
            "seconds_p95": round(float(np.percentile(run.seconds, 95)), 4),
            "load_seconds": run.load_seconds,
            "rss_after_imports_mb": run.rss_after_imports_mb,
            "peak_rss_mb": run.peak_rss_mb,
            "captions": run.captions,
        }
        for run in runs
    ]
    return {
        "images": len(images),
        "max_new_tokens": max_new_tokens,
        "prompt_version": CAPTION_PROMPT_VERSION,
        "tokenizer": "PTBTokenizer (Stanford CoreNLP, Java)" if java_available() else "lowercase words (no Java)",
        "peak_rss_method": PEAK_RSS_METHOD,
        "unavailable": unavailable,
        "models": rows,
    }


def format_table(report: dict) -> str:
    """A plain-text table, one row per model, then what was unavailable and how memory was measured."""
    width = max(len("model"), *(len(row["model"]) for row in report["models"]))
    header = (
        f"{'model':<{width}}"
        + "".join(f"{METRIC_TITLES[metric]:>9}" for metric in METRICS)
        + f"{'s/image':>9}{'p95 s':>9}{'peak MB':>9}"
    )
    lines = [header, "-" * len(header)]
    for row in report["models"]:
        scores = "".join("      n/a" if row[metric] is None else f"{row[metric]:>9.3f}" for metric in METRICS)
        timing = f"{row['seconds_mean']:>9.2f}{row['seconds_p95']:>9.2f}{row['peak_rss_mb']:>9.0f}"
        lines.append(f"{row['model']:<{width}}{scores}{timing}")
    lines.append(f"{report['images']} images, at most {report['max_new_tokens']} new tokens, {report['tokenizer']}")
    lines += [f"{METRIC_TITLES[metric]} n/a: {reason}" for metric, reason in report["unavailable"].items()]
    lines.append(f"peak MB: {report['peak_rss_method']}")
    return "\n".join(lines)
