"""Train, evaluate and query the relevance gate.

    python -m training.classifier train [--config training/configs/gate.yaml]
    python -m training.classifier evaluate          # reports/classifier.md and its PNG plots
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
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from app.artifacts import atomic_write_bytes, atomic_write_json, input_hashes, sha256_file
from app.kiosk.corpus import load_corpus
from app.kiosk.gate import MANIFEST_FILE, MODEL_FILE, RelevanceGate, build_pipeline
from training.config import load_config, to_dict
from training.gate_data import Example, data_files, load_examples
from training.gate_metrics import error_rates, metrics

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


def train(config: GateConfig, config_file: Path | None = None) -> RelevanceGate:
    """Fit, choose the threshold, write the artefact; its manifest hashes the data and `config_file`."""
    examples = load_examples(config.val_share, config.test_share, config.corpus)
    texts, labels = split_arrays(examples, "train")
    log.info("training on %d questions (%d related)", len(texts), int(labels.sum()))
    weights = np.array([example_weight(e, config) for e in examples if e.split == "train"])
    passages = tuple(p.text for p in load_corpus(config.corpus)) if config.corpus else ()
    pipeline = build_pipeline(config.c, config.seed, passages)
    # One BLAS thread: the solver's sums would otherwise be split by the machine's core count, and the
    # weights (so the artefact's bytes) would differ in their last digits from one machine to the next.
    with threadpool_limits(limits=1):
        pipeline.fit(texts, labels, classifier__sample_weight=weights)
    val_texts, val_labels = split_arrays(examples, "val")
    val_scores = pipeline.predict_proba(val_texts)[:, 1]
    threshold = choose_threshold(val_labels, val_scores, config)
    test_texts, test_labels = split_arrays(examples, "test")
    test_scores = pipeline.predict_proba(test_texts)[:, 1]

    config.out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    joblib.dump(_without_memory_addresses(pipeline), buf, compress=3)
    atomic_write_bytes(config.out_dir / MODEL_FILE, buf.getvalue())
    manifest = {
        "file": MODEL_FILE,
        "sha256": sha256_file(config.out_dir / MODEL_FILE),
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
    return RelevanceGate(pipeline, threshold, manifest)


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
    parser.add_argument("command", choices=["train", "evaluate", "predict"])
    parser.add_argument("--config", type=Path, default=Path("training/configs/gate.yaml"))
    parser.add_argument("--model-dir", type=Path, help="the artefact folder (default: the config's out_dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    config_file = args.config if args.config.exists() else None
    config = load_config(GateConfig, config_file, out_dir=args.model_dir)
    if args.command == "train":
        train(config, config_file)
        return 0
    gate = RelevanceGate.load(config.out_dir)
    if args.command == "predict":
        for result in predict(gate, sys.stdin):  # type: ignore[arg-type]
            print(json.dumps(result, ensure_ascii=False), flush=True)
        return 0
    from training.gate_report import write_report  # matplotlib is only needed here

    write_report(gate, load_examples(config.val_share, config.test_share, config.corpus), config.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
