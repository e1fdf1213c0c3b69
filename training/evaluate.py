"""Generate answers for the test split, with the base alone and with the adapter, and report.

    python -m training.evaluate --config training/configs/smollm2-135m-lora.yaml [--limit 40]
    python -m training.evaluate --config ... --split validation --copy-bias 0,1,2,4 --variants adapter+retrieval
    python -m training.evaluate --config ... --variants adapter+retrieval,adapter+retrieval@0  # with / without
    python -m training.evaluate --config ... --batch 1 --draft-tokens 4  # one at a time, prompt lookup
    python -m training.evaluate --set fresh [--limit 20]  # the fresh set (data/eval/), answered as served
    python -m training.evaluate --set validation [--clarify-grid 0.35,0.4,0.45,0.5]  # the choice sets, likewise

Writes reports/eval.md (table against the student report, sample answers), PNG plots (loss curves,
BLEU over runs) and appends one row per variant to reports/runs.csv. `--split validation` scores the
training pairs the adapter never trained on (its evaluation-loss pairs), with the prompts training built for
them: that is where decoding settings such as the copy bias are chosen, never on the test split.
Questions are answered in batches of 8 (one-token steps); `--batch 1` answers them one at a time, as the
kiosk answers a lone visitor, and `--draft-tokens N` then adds prompt-lookup decoding as served.
"""

from __future__ import annotations

import argparse
import asyncio
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
from app.generation.base import GenerationRequest
from app.generation.config import GeneratorConfig
from app.generation.local import LocalGenerator
from app.kiosk.corpus import load_corpus
from app.kiosk.embeddings import get_embedder
from app.kiosk.grounding import Grounded, build_retriever, ground, readable
from app.settings import COPY_BIAS
from training import qa
from training.config import load_config
from training.finetune_config import FinetuneConfig
from training.metrics import TIE, Scores, cheapest, score
from training.sft_data import context_embedders, make_examples, split_for_eval

log = logging.getLogger(__name__)
REPORTS = Path("reports")
RUNS_CSV = REPORTS / "runs.csv"
# Conversations written (from the knowledge base only) for choosing follow-up rules; never a final yardstick.
VALIDATION_DIR = Path("data/validation")
VALIDATION_B_DIR = Path("data/validation-b")
WRONG_COST = 3.0
"""The museum's rule: a wrong statement about him costs as much as three replies that decline."""


def generate(generator: LocalGenerator, grounded: list[Grounded], max_new_tokens: int, batch: int = 8) -> list[str]:
    """Answers as the service asks for them (the context's sentences are what the copy bias may copy)."""
    answers: list[str] = []
    for i in range(0, len(grounded), batch):
        requests = [
            GenerationRequest(g.prompt, max_new_tokens, time.monotonic() + 600, copy_from=tuple(g.context.sentences))
            for g in grounded[i : i + batch]
        ]
        answers += [r.text for r in generator.generate_batch(requests)]
        log.info("generated %d/%d", len(answers), len(grounded))
    return answers


def grounded_for(
    pairs: list[qa.QAPair], config: FinetuneConfig, retrieval: bool, split: str = "test"
) -> list[Grounded]:
    """Test prompts built as serving builds them; retrieval hints come from the training pairs only.

    Validation prompts are the ones training built for those pairs (other folds' hints, the encoder of
    their fold), since serving's encoder has seen the validation questions.
    """
    if split == "validation":
        hint_pairs = qa.read_pairs(config.train_csv)
        examples = make_examples(
            pairs,
            load_corpus(config.corpus),
            retrieval,
            hint_pairs=hint_pairs,
            embedders=context_embedders(config) if retrieval else (),
        )
        return [Grounded(e.prompt, e.context) for e in examples]
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="the adapter's preset (required except with --set fresh)")
    parser.add_argument(
        "--set",
        dest="eval_set",
        choices=["qa", "fresh", "validation"],
        default="qa",
        help="fresh: the fresh evaluation set (data/eval/), answered as served (KIOSK_* settings); validation: the "
        "sets written for making choices on (data/validation/, data/validation-b/), answered the same way",
    )
    parser.add_argument(
        "--clarify-grid",
        help="with --set validation: comma-separated clarify thresholds; each answers both choice sets, and the one "
        "of lowest cost (3 x answered but wrong + declined) is written to reports/clarify.md",
    )
    parser.add_argument("--limit", type=int, help="evaluate the first N test pairs only")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--variants", default="base+retrieval,adapter+retrieval,adapter-retrieval,base-retrieval")
    parser.add_argument("--report", type=Path, help="default: reports/eval.md (test), none for validation")
    parser.add_argument("--split", choices=["test", "validation"], default="test")
    parser.add_argument(
        "--copy-bias",
        default=str(COPY_BIAS),
        help="comma-separated values: each variant runs once per value (app.generation.copying)",
    )
    parser.add_argument("--batch", type=int, default=8, help="questions answered together (1: as for a lone visitor)")
    parser.add_argument(
        "--draft-tokens",
        type=int,
        default=0,
        help="with --batch 1: prompt-lookup decoding of this many proposed tokens (KIOSK_DRAFT_TOKENS)",
    )
    return parser


def parse_runs(variants: str, copy_bias: str) -> list[tuple[str, float]]:
    """(variant, copy bias) pairs: "variant@bias" runs once with that bias; a plain variant once per bias value."""
    biases = [float(b) for b in copy_bias.split(",")]
    runs = []
    for v in variants.split(","):
        name, _, fixed = v.partition("@")
        runs += [(name, float(fixed))] if fixed else [(name, b) for b in biases]
    return runs


def checked_runs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[tuple[str, float]]:
    """The runs asked for, after refusing settings that cannot be honoured (before anything is loaded)."""
    if args.draft_tokens < 0 or args.batch < 1:
        parser.error("--draft-tokens must be 0 or more and --batch 1 or more")
    if args.draft_tokens and args.batch != 1:
        parser.error("prompt-lookup decoding answers one question at a time: add --batch 1")
    runs = parse_runs(args.variants, args.copy_bias)
    if any(b < 0 for _, b in runs):
        parser.error("copy bias values must be 0 or more")
    return runs


def eval_pairs(config: FinetuneConfig, split: str, limit: int | None) -> list[qa.QAPair]:
    """The test split, or the training pairs the adapter held out for its evaluation loss."""
    if split == "validation":
        return split_for_eval(qa.read_pairs(config.train_csv), config.eval_share)[1][:limit]
    return qa.read_pairs(qa.TEST_CSV)[:limit]


def load_generator(config: FinetuneConfig, with_adapter: bool) -> LocalGenerator:
    return LocalGenerator.load(
        GeneratorConfig(  # otherwise as served
            base_model=config.base_model,
            adapter_dir=config.out_dir if with_adapter else None,
            quantize_4bit=config.quantize_4bit,
            cpu_int8=True,
            base_cache_dir=Path("models/base"),
        )
    )


def answer_and_score(
    generator: LocalGenerator, grounded: list[Grounded], references: list[str], max_new_tokens: int, batch: int
) -> tuple[Scores, list[str]]:
    generated = generate(generator, grounded, max_new_tokens, batch)
    # What a visitor reads: an unfinished answer is replaced by a retrieved sentence (app.kiosk.grounding.readable).
    served = [readable(text, g.context) for text, g in zip(generated, grounded, strict=True)]
    answers = [text for text, _ in served]
    return score(references, answers, fallbacks=sum(fell_back for _, fell_back in served)), answers


def run_row(args: argparse.Namespace, config: FinetuneConfig, name: str, bias: float, scores: Scores) -> dict[str, Any]:
    """One row of reports/runs.csv."""
    return {
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "config": str(args.config),
        "variant": name,
        "split": args.split,
        "copy_bias": bias,
        "batch": args.batch,
        "draft_tokens": args.draft_tokens,
        "base_model": config.base_model,
        "data_sha256": sha256_files([config.train_csv, qa.TEST_CSV, config.corpus])[:16],
        **asdict(scores),
    }


def evaluate_runs(
    runs: list[tuple[str, float]], pairs: list[qa.QAPair], config: FinetuneConfig, args: argparse.Namespace
) -> dict[str, tuple[Scores, list[str]]]:
    """Answer `pairs` once per run (generators and prompts built once each), score, and log each run."""
    references = [p.answer for p in pairs]
    results: dict[str, tuple[Scores, list[str]]] = {}
    loaded: dict[bool, LocalGenerator] = {}
    grounded: dict[bool, list[Grounded]] = {}
    for variant, bias in runs:
        with_adapter, retrieval = variant.startswith("adapter"), "+retrieval" in variant
        if with_adapter not in loaded:
            loaded[with_adapter] = load_generator(config, with_adapter)
        generator = loaded[with_adapter]
        generator.copy_bias, generator.draft_tokens = bias, args.draft_tokens
        name = variant if bias == COPY_BIAS or not retrieval else f"{variant}, copy bias {bias:g}"
        start = time.monotonic()
        if retrieval not in grounded:
            grounded[retrieval] = grounded_for(pairs, config, retrieval, args.split)
        results[name] = answer_and_score(generator, grounded[retrieval], references, args.max_new_tokens, args.batch)
        log.info("%s: %s (%.0fs)", name, results[name][0], time.monotonic() - start)
        append_run(run_row(args, config, name, bias, results[name][0]))
    return results


def evaluate_fresh(limit: int | None, report: Path, directory: Path | None = None) -> int:
    """The fresh set (or a set of that format in `directory`) through the service's own pipeline, as configured by
    the KIOSK_* settings."""
    from app.kiosk.services import load_services
    from app.settings import Settings
    from training.fresh_report import report as fresh_report
    from training.fresh_set import load

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings(request_timeout_s=600)  # a report, not a visitor: no answer is cut by the deadline
    services = load_services(settings)
    questions = load() if directory is None else load(directory)
    try:
        result = fresh_report(
            services,
            questions,
            report,
            limit,
            base_model=settings.base_model,
            adapter=str(settings.adapter_dir),
            **(
                {}
                if directory is None
                else {
                    "title": "Validation set" + (" B" if directory == VALIDATION_B_DIR else ""),
                    "source": f"{directory.as_posix()}/",
                }
            ),
        )
    finally:
        if services.worker is not None:
            services.worker.stop()
    if directory is None and limit is None:  # the gate's part goes into the gate's own report too
        from training.fresh_report import gate_block
        from training.gate_report import replace_block

        meta = {"date": datetime.date.today().isoformat(), "gate": services.gate.manifest.get("sha256", "")[:12]}
        replace_block(REPORTS / "classifier.md", gate_block(result["gate"], questions, meta))
        # and its figures against the targets into the answer-quality report
        from training.fresh_report import targets_block

        replace_block(REPORTS / "eval.md", targets_block(result["summary"], result["meta"]))
    print(json.dumps(result["summary"], indent=1))
    return 0


def choose_clarify(grid: list[float], report: Path) -> int:
    """Answer both choice sets as served once per clarify threshold in `grid`; write the costs and the choice."""
    from app.kiosk.pipeline import Kiosk
    from app.kiosk.services import load_services
    from app.settings import Settings
    from training.fresh_report import answer_all
    from training.fresh_set import load

    logging.basicConfig(level=logging.WARNING)
    services = load_services(Settings(request_timeout_s=600), lambda _: None)
    services.verbatim_from = 0.0  # verified answers only, as the embedded default serves them: no model
    sets = {d.as_posix(): load(d) for d in (VALIDATION_DIR, VALIDATION_B_DIR)}
    rows: dict[float, dict[str, tuple[float, int, int, int]]] = {}
    for x in grid:
        services.clarify_below = x
        for name, questions in sets.items():
            outcomes = asyncio.run(answer_all(Kiosk(services), questions))
            wrong, declined = sum(o.wrong for o in outcomes), sum(o.declined for o in outcomes)
            facts = [o.key_facts for o in outcomes if o.key_facts is not None]
            rows.setdefault(x, {})[name] = (WRONG_COST * wrong + declined, wrong, declined, len(outcomes))
            log.info(
                "clarify %.3f, %s: key facts %.3f, wrong %d, declined %d",
                x,
                name,
                sum(facts) / len(facts),
                wrong,
                declined,
            )
    total = {x: sum(c for c, *_ in per.values()) for x, per in rows.items()}
    chosen = cheapest(total)
    lines = [
        f"# Clarify threshold, as served ({datetime.date.today().isoformat()})",
        "",
        "`python -m training.evaluate --set validation --clarify-grid ...`: every question and conversation of "
        + " and ".join(f"`{n}/`" for n in sets)
        + f" answered as served (verified answers, no model) at each threshold; cost = {WRONG_COST:g} x answered but "
        "wrong + declined (off-topic or not sure); of the thresholds within "
        f"{TIE:.0%} of the lowest total, the highest (fewest wrong answers). The fresh set is never read.",
        "",
        "| clarify below | total cost | " + " | ".join(f"{n}: cost, wrong, declined of n" for n in sets) + " |",
        "|---|---|" + "---|" * len(sets),
    ]
    for x in grid:
        cells = [f"{c:g}, {w}, {d} of {n}" for c, w, d, n in rows[x].values()]
        mark = " **chosen**" if x == chosen else ""
        lines.append(f"| {x:g}{mark} | {total[x]:g} | " + " | ".join(cells) + " |")
    lines += ["", f"Set `KIOSK_CLARIFY_THRESHOLD={chosen:g}` (the default in `app/settings.py`).", ""]
    atomic_write_text(report, "\n".join(lines))
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.clarify_grid and args.eval_set != "validation":
        parser.error("--clarify-grid chooses on the choice sets: use it with --set validation")
    if args.eval_set == "fresh":
        return evaluate_fresh(args.limit, args.report or REPORTS / "eval_fresh.md")
    if args.clarify_grid:
        try:
            grid = sorted({float(x) for x in args.clarify_grid.split(",") if x.strip()})
        except ValueError:
            parser.error(f"--clarify-grid takes comma-separated numbers, not {args.clarify_grid!r}")
        return choose_clarify(grid, args.report or REPORTS / "clarify.md")
    if args.eval_set == "validation":  # --report names set A's report; set B's is beside it
        report = args.report or REPORTS / "eval_validation.md"
        first = evaluate_fresh(args.limit, report, VALIDATION_DIR)
        return first or evaluate_fresh(args.limit, report.with_name(report.stem + "_b.md"), VALIDATION_B_DIR)
    if args.config is None:
        parser.error("--config is required")
    runs = checked_runs(parser, args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(FinetuneConfig, args.config)
    pairs = eval_pairs(config, args.split, args.limit)
    results = evaluate_runs(runs, pairs, config, args)
    print(json.dumps({k: asdict(v[0]) for k, v in results.items()}, indent=1))
    if args.split == "validation" and args.report is None:
        return 0
    from training.eval_report import write_eval_report

    write_eval_report(results, pairs, config, args.report or REPORTS / "eval.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
