"""Train, evaluate and query the relevance gate.

    python -m training.classifier train [--config training/configs/gate.yaml]
    python -m training.classifier evaluate          # reports/classifier.md and its PNG plots
    python -m training.classifier compare           # reports/gate_variants.md: with and without the second stage
    echo "who was bac ho?" | python -m training.classifier predict

`train` is deterministic: the same data and config give the same artefact, byte for byte, on any number of
cores. Its manifest hashes every input (`tests/test_artifacts_fresh.py` compares them with the repository).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import platform
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from app.artifacts import atomic_write_bytes, atomic_write_json, input_hashes, sha256_file
from app.kiosk.corpus import load_corpus
from app.kiosk.gate import MANIFEST_FILE, MODEL_FILE, REVIEW_FILE, RelevanceGate, build_pipeline
from training.config import load_config, to_dict
from training.gate_data import Example, data_files, load_examples
from training.gate_metrics import error_rates, metrics, target_rows
from training.gate_review import fit_review

log = logging.getLogger(__name__)


@dataclass
class GateConfig:
    """How the gate is trained and where it goes."""

    c: float = 4.0
    """Inverse regularisation strength of the logistic regression."""
    seed: int = 0
    val_share: float = 0.15
    """Share of questions (outside the QA split) used to choose the threshold."""
    test_share: float = 0.2
    """Share of questions (outside the QA split) held out for the report."""
    cost_false_accept: float = 2.0
    """Cost of answering an off-topic question (GPU time, possible embarrassment)."""
    cost_false_refusal: float = 1.0
    """Cost of turning away a visitor's real question."""
    hard_weight: float = 5.0
    """Training weight of the hand-written hard negatives and positives (general questions weigh 1)."""
    multilingual_weight: float = 5.0
    """Training weight of the hand-written Vietnamese and French general questions: about 300 of them stand against
    some 4,000 Vietnamese and French phrasings of related questions (English general ones number 5,000+)."""
    review: bool = True
    """Whether the gate gets its second stage (`app.kiosk.gate_review`) for the questions the first is unsure of."""
    review_low: float = 0.02
    """First-stage scores from `review_low` to `review_high` go to the second stage; outside, the first decides."""
    review_high: float = 0.98
    review_folds: int = 4
    """Folds for the second stage's out-of-fold training scores."""
    review_neighbours: int = 10
    """How many nearest training questions the second stage's "related share" counts."""
    corpus: Path | None = Path("data/corpus.jsonl")
    """The knowledge base, for the coverage feature (`app.kiosk.gate.KnowledgeCoverage`); none: no such feature."""
    out_dir: Path = Path("models/classifier")
    report: Path = Path("reports/classifier.md")


def choose_threshold(labels: np.ndarray, scores: np.ndarray, config: GateConfig) -> float:
    """The threshold with the lowest expected cost on validation, each error rate weighted by its cost."""
    candidates = np.unique(scores)
    costs = []
    for t in candidates:
        far, frr = error_rates(labels, scores, t)
        costs.append(config.cost_false_accept * far + config.cost_false_refusal * frr)
    best = int(np.argmin(costs))
    # Midway down to the next score: the same decisions on validation, a margin for unseen questions.
    lower = candidates[best - 1] if best > 0 else 0.0
    return float((candidates[best] + lower) / 2)


def split_arrays(examples: list[Example], split: str) -> tuple[list[str], np.ndarray]:
    chosen = [e for e in examples if e.split == split]
    return [e.text for e in chosen], np.array([e.label for e in chosen])


def _without_memory_addresses(pipeline: Pipeline) -> Pipeline:
    """The pipeline without the `id()` that TfidfVectorizer caches after checking its stop words: a memory
    address, different in every process, would make the artefact's bytes (and hash) differ between rebuilds.
    Without it the vectorizer only checks its (absent) stop words again."""
    for _, transformer in pipeline.named_steps["features"].transformer_list:
        vars(transformer).pop("_stop_words_id", None)
    return pipeline


def example_weight(example: Example, config: GateConfig) -> float:
    if example.group in ("hard_negative", "hard_positive"):
        return config.hard_weight
    if example.group == "general" and example.category.endswith(("-vi", "-fr")):
        return config.multilingual_weight
    return 1.0


def input_files(config: GateConfig, config_file: Path | None) -> list[Path]:
    """Every file the gate is built from: its manifest hashes them, a test compares them with the repository."""
    return [*data_files(), *(p for p in (config.corpus, config_file) if p is not None)]


def fit_stages(config: GateConfig, examples: list[Example]) -> RelevanceGate:
    """Both stages fitted on the training split; the threshold is not chosen yet (0.5)."""
    train_examples = [e for e in examples if e.split == "train"]
    texts, labels = split_arrays(examples, "train")
    log.info("training on %d questions (%d related)", len(texts), int(labels.sum()))
    weights = np.array([example_weight(e, config) for e in train_examples])
    passages = tuple(p.text for p in load_corpus(config.corpus)) if config.corpus else ()
    pipeline = build_pipeline(config.c, config.seed, passages)
    # One BLAS (and OpenMP) thread: the solvers' sums would otherwise be split by the machine's core count, and
    # the weights (so the artefact's bytes) would differ in their last digits from one machine to the next.
    with threadpool_limits(limits=1):
        pipeline.fit(texts, labels, classifier__sample_weight=weights)
        review = None
        if config.review:
            band = (config.review_low, config.review_high)
            review = fit_review(
                pipeline, train_examples, weights, band, config.review_folds, config.review_neighbours, config.seed
            )
    return RelevanceGate(pipeline, 0.5, {}, review)


def _dump(obj: object, path: Path) -> str:
    buf = io.BytesIO()
    joblib.dump(obj, buf, compress=3)
    atomic_write_bytes(path, buf.getvalue())
    return sha256_file(path)


def train(config: GateConfig, config_file: Path | None = None) -> RelevanceGate:
    """Fit, choose the threshold, write the artefact; its manifest hashes the data and `config_file`."""
    examples = load_examples(config.val_share, config.test_share, config.corpus, config.seed)
    gate = fit_stages(config, examples)
    val_texts, val_labels = split_arrays(examples, "val")
    val_scores = gate.relevances(val_texts)
    threshold = choose_threshold(val_labels, val_scores, config)
    if gate.review is not None and not gate.review.low < threshold < gate.review.high:
        log.warning("threshold %.3f outside the second stage's band: widen review_low/review_high", threshold)
    test_texts, test_labels = split_arrays(examples, "test")
    test_scores = gate.relevances(test_texts)

    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / REVIEW_FILE).unlink(missing_ok=True)  # a gate built without one must not load an old one
    review = None
    if gate.review is not None:
        review = {"file": REVIEW_FILE, "sha256": _dump(gate.review, config.out_dir / REVIEW_FILE)}
    manifest = {
        "file": MODEL_FILE,
        "sha256": _dump(_without_memory_addresses(gate.pipeline), config.out_dir / MODEL_FILE),
        "review": review,
        "sklearn_version": sklearn.__version__,
        "python_version": platform.python_version(),
        "threshold": round(threshold, 6),
        **input_hashes(input_files(config, config_file)),
        "config": to_dict(config),
        "counts": {s: int(sum(e.split == s for e in examples)) for s in ("train", "val", "test", "ambiguous")},
        "metrics": {
            "validation": metrics(val_labels, val_scores, threshold),
            "test": metrics(test_labels, test_scores, threshold),
        },
    }
    atomic_write_json(config.out_dir / MANIFEST_FILE, manifest)
    log.info("threshold %.3f; test metrics %s", threshold, manifest["metrics"]["test"])
    return RelevanceGate(gate.pipeline, threshold, manifest, gate.review)


def compare(config: GateConfig) -> dict[str, dict[str, dict[str, tuple[float, int]]]]:
    """The first stage alone, and with the second stage on a band of its scores or on every question: each with
    its own threshold chosen on validation, scored on validation and test (`target_rows`)."""
    examples = load_examples(config.val_share, config.test_share, config.corpus, config.seed)
    first = fit_stages(replace(config, review=False), examples)
    train_examples = [e for e in examples if e.split == "train"]
    weights = np.array([example_weight(e, config) for e in train_examples])
    variants = {"first stage alone": first}
    for low, high in ((config.review_low, config.review_high), (0.0, 1.0)):
        with threadpool_limits(limits=1):
            review = fit_review(
                first.pipeline, train_examples, weights, (low, high), config.review_folds, config.review_neighbours
            )
        variants[f"+ second stage on first-stage scores {low:g}–{high:g}"] = RelevanceGate(
            first.pipeline, 0.5, {}, review
        )
    results = {}
    for name, gate in variants.items():
        val = [e for e in examples if e.split == "val"]
        test = [e for e in examples if e.split == "test"]
        val_scores = gate.relevances([e.text for e in val])
        threshold = choose_threshold(np.array([e.label for e in val]), val_scores, config)
        results[name] = {
            "validation": target_rows(val, val_scores, threshold),
            "test": target_rows(test, gate.relevances([e.text for e in test]), threshold),
            "threshold": {"threshold": (threshold, 0)},
        }
        log.info("%s: threshold %.3f", name, threshold)
    return results


def predict(gate: RelevanceGate, lines: io.TextIOBase | list[str]) -> list[dict]:
    results = []
    for line in lines:
        question = line.strip()
        if question:
            score = gate.relevance(question)
            results.append({"question": question, "related": score >= gate.threshold, "relevance": round(score, 4)})
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["train", "evaluate", "predict", "compare"])
    parser.add_argument("--config", type=Path, default=Path("training/configs/gate.yaml"))
    parser.add_argument("--model-dir", type=Path, help="the artefact folder (default: the config's out_dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    config_file = args.config if args.config.exists() else None
    config = load_config(GateConfig, config_file, out_dir=args.model_dir)
    if args.command == "train":
        train(config, config_file)
        return 0
    if args.command == "compare":
        from training.gate_report import write_variants

        write_variants(compare(config), config.report.with_name("gate_variants.md"))
        return 0
    gate = RelevanceGate.load(config.out_dir)
    if args.command == "predict":
        for result in predict(gate, sys.stdin):  # type: ignore[arg-type]
            print(json.dumps(result, ensure_ascii=False), flush=True)
        return 0
    from training.gate_report import write_report  # matplotlib is only needed here

    write_report(gate, load_examples(config.val_share, config.test_share, config.corpus, config.seed), config.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
