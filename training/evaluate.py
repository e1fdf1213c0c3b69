"""Generate answers for the test split, with the base alone and with the adapter, and report.

    python -m training.evaluate --config training/configs/smollm2-135m-lora.yaml [--limit 40]

Writes reports/eval.md (table against the student report, sample answers), PNG plots (loss curves,
BLEU over runs) and appends one row per variant to reports/runs.csv.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.artifacts import atomic_write_text, sha256_files
from app.embeddings import get_embedder
from app.generation import GenerationRequest
from app.grounding import Grounded, build_retriever, ground, readable
from app.local_generator import LocalGenerator
from training import qa
from training.config import load_config
from training.finetune import FinetuneConfig
from training.metrics import Scores, score

log = logging.getLogger(__name__)
REPORTS = Path("reports")
RUNS_CSV = REPORTS / "runs.csv"


def generate(generator: LocalGenerator, prompts: list[str], max_new_tokens: int, batch: int = 8) -> list[str]:
    answers: list[str] = []
    for i in range(0, len(prompts), batch):
        requests = [GenerationRequest(p, max_new_tokens, time.monotonic() + 600) for p in prompts[i : i + batch]]
        answers += [r.text for r in generator.generate_batch(requests)]
        log.info("generated %d/%d", len(answers), len(prompts))
    return answers


def grounded_for(pairs: list[qa.QAPair], config: FinetuneConfig, retrieval: bool) -> list[Grounded]:
    """Test prompts built as serving builds them; retrieval hints come from the training pairs only."""
    embedder = get_embedder(config.embedder) if retrieval and config.embedder else None
    retriever = build_retriever(config.corpus, [config.train_csv], embedder) if retrieval else None
    return [ground(p.question, retriever) for p in pairs]


def append_run(row: dict[str, Any], path: Path = RUNS_CSV) -> None:
    """One row per run; a new column (a metric added later) rewrites the header, earlier rows keep blanks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    fields = list(row)
    if path.exists():
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            fields = list(reader.fieldnames or []) + [k for k in row if k not in (reader.fieldnames or [])]
    rows.append(row)
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=fields, restval="", extrasaction="ignore")  # a ragged row loses
    writer.writeheader()  # only its unnamed extra cells, never the file
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())  # a crash mid-write leaves the old table whole


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--limit", type=int, help="evaluate the first N test pairs only")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--variants", default="base+retrieval,adapter+retrieval,adapter-retrieval,base-retrieval")
    parser.add_argument("--report", type=Path, default=REPORTS / "eval.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(FinetuneConfig, args.config)
    pairs = qa.read_pairs(qa.TEST_CSV)[: args.limit]
    references = [p.answer for p in pairs]
    results: dict[str, tuple[Scores, list[str]]] = {}
    loaded: dict[bool, LocalGenerator] = {}
    for variant in args.variants.split(","):
        with_adapter, retrieval = variant.startswith("adapter"), "+retrieval" in variant
        if with_adapter not in loaded:
            loaded[with_adapter] = LocalGenerator.load(
                config.base_model, config.out_dir if with_adapter else None, quantize_4bit=config.quantize_4bit,
                cpu_int8=True, cache_dir=Path("models/base"),  # as served
            )  # fmt: skip
        start = time.monotonic()
        grounded = grounded_for(pairs, config, retrieval)
        generated = generate(loaded[with_adapter], [g.prompt for g in grounded], args.max_new_tokens)
        # What a visitor reads: an unfinished answer is replaced by a retrieved sentence (app.grounding.readable).
        served = [readable(text, g.context) for text, g in zip(generated, grounded, strict=True)]
        answers = [text for text, _ in served]
        scores = score(references, answers, fallbacks=sum(fell_back for _, fell_back in served))
        results[variant] = (scores, answers)
        log.info("%s: %s (%.0fs)", variant, scores, time.monotonic() - start)
        append_run({"time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                    "config": str(args.config), "variant": variant, "base_model": config.base_model,
                    "data_sha256": sha256_files([config.train_csv, qa.TEST_CSV, config.corpus])[:16],
                    **asdict(scores)})  # fmt: skip
    from training.eval_report import write_eval_report

    write_eval_report(results, pairs, config, args.report)
    print(json.dumps({k: asdict(v[0]) for k, v in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
