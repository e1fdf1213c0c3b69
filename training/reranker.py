"""Fit the reranker (`app.kiosk.reranker`) on visitor questions written apart from the answers.

    python -m training.reranker [--out models/reranker] [--report reports/reranker.md]

Each question of `data/rerank/` (single questions, and every turn of its conversations, read with the turn before
as the kiosk reads it) is ranked as served, by the answer ranker without a reranker; its first `--depth`
candidates become rows, labelled right when the candidate (in Vietnamese for a Vietnamese question) states at least
half the question's key facts, as the evaluation scores answers. A logistic regression over `app.kiosk.reranker`'s
features is fitted to them; its regularisation is chosen by cross-validation over the questions (five folds; the
share of questions whose first candidate is right). The validation set (`data/validation/`) is then reranked to
report what it changes there and how well its chances are calibrated, with the cost of each "not sure" threshold
(the museum's rule: a wrong answer costs `--wrong-cost` clarifications) to choose `KIOSK_CLARIFY_THRESHOLD` from.
The fresh evaluation set is never read.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from app.artifacts import atomic_write_text, input_hashes
from app.kiosk.pipeline import TOPIC_WEIGHT, Kiosk, Services, leans_on
from app.kiosk.reranker import CROSS_FOLDER, FEATURES, CrossEncoder, Reranker, rows
from app.kiosk.services import load_services
from app.prompt import Turn
from app.settings import Settings
from training.metrics import Fact, key_fact_score

log = logging.getLogger(__name__)
RERANK_DIR = Path("data/rerank")
VALIDATION_DIR = Path("data/validation")
C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
THRESHOLDS = tuple(round(x, 2) for x in np.arange(0.2, 0.81, 0.05))


def input_files(directory: Path = RERANK_DIR) -> list[Path]:
    """The files the reranker is fitted on (the ranker and the cross-encoder it reads record their own)."""
    return sorted(directory.glob("*.jsonl"))


@dataclass(frozen=True)
class Written:
    """A question written apart from the answers, with the questions asked before it in its conversation."""

    id: str
    language: str
    group: str
    question: str
    key_facts: tuple[Fact, ...]
    before: tuple[str, ...] = ()


def read_written(directory: Path) -> list[Written]:
    """The single questions and conversation turns of the JSON-lines files in `directory` (`data/eval/FORMAT.md`'s
    format: conversations have `turns`); unanswerable questions are left out."""
    out: list[Written] = []
    for path in sorted(directory.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if "turns" in row:
                    asked: list[str] = []
                    for i, turn in enumerate(row["turns"], 1):
                        facts = tuple(tuple(f) for f in turn["key_facts"])
                        out.append(
                            Written(f"{row['id']}#{i}", row["language"], "turn", turn["question"], facts, tuple(asked))
                        )
                        asked.append(turn["question"])
                elif row.get("answerable", True):
                    facts = tuple(tuple(f) for f in row["key_facts"])
                    out.append(Written(row["id"], row["language"], row["style"], row["question"], facts))
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{n}: not a written question ({e})") from e
    return out


@dataclass(frozen=True)
class Ranked:
    """One question's first candidates as the ranker gives them, and which of them are right."""

    item: Written
    language: str
    follow_up: bool
    features: np.ndarray
    mean: np.ndarray
    cross: np.ndarray
    right: np.ndarray

    def inputs(self) -> np.ndarray:
        return rows(self.features, self.mean, self.cross, self.language, self.follow_up)


def ranked(services: Services, cross: CrossEncoder, items: list[Written], depth: int) -> Iterator[Ranked]:
    """Each question's first `depth` candidates, read as the kiosk reads it (language, diacritics, topic), with
    the cross-encoder's logits."""
    kiosk = Kiosk(services)
    ranker = services.retriever.answers
    assert ranker is not None and ranker.reranker is None
    for item in items:
        topic = kiosk.topic([Turn(q, "") for q in item.before]) if item.before else None
        language = services.detect(item.question, "en")
        if topic is not None and leans_on(item.question):
            language = services.detect(item.question, services.detect(topic, "en"))
        own, about = kiosk.ranked_as(item.question, topic, language)
        features, mean = ranker.matched(own, about, TOPIC_WEIGHT)
        first = np.argsort(-mean, kind="stable")[:depth]
        texts = [ranker.pairs[i].answer for i in first]
        if language == "vi":
            texts = [services.vietnamese.get(t, t) for t in texts]
        right = np.array([key_fact_score(item.key_facts, t) >= 0.5 for t in texts])
        read = own if about is None else f"{about} {own}"
        logits = cross.scores(read, [ranker.pairs[i].answer for i in first])
        yield Ranked(item, language, about is not None, features[first], mean[first], logits, right)


def fit(data: list[Ranked], c: float) -> LogisticRegression:
    x = np.vstack([r.inputs() for r in data])
    y = np.concatenate([r.right for r in data])
    return LogisticRegression(C=c, max_iter=5000).fit(x, y)


def chances(model: LogisticRegression, r: Ranked) -> np.ndarray:
    return model.predict_proba(r.inputs())[:, 1]


def first_right(data: list[Ranked], model: LogisticRegression | None | str = None) -> float:
    """Share of questions whose first candidate is right (by the ranker, by `model`'s chances, or with "cross" by
    the cross-encoder alone)."""
    hits = [
        r.right[int(np.argmax(r.cross))] if model == "cross" else r.right[int(np.argmax(chances(model, r)))] if model else r.right[0]
        for r in data
    ]
    return float(np.mean(hits)) if hits else float("nan")


def cross_validated(data: list[Ranked], c: float, folds: int = 5) -> float:
    """First candidate right, each fold's questions reranked by a model fitted on the other folds."""
    hits = []
    for k in range(folds):
        train = [r for i, r in enumerate(data) if i % folds != k]
        model = fit(train, c)
        hits += [r.right[int(np.argmax(chances(model, r)))] for i, r in enumerate(data) if i % folds == k]
    return float(np.mean(hits))


def costs(data: list[Ranked], model: LogisticRegression, wrong_cost: float) -> list[tuple[float, float, int, int]]:
    """(threshold, cost per question, wrong, not sure) for each "not sure" threshold on the reranked first chance."""
    best = [(float(p.max()), bool(r.right[int(np.argmax(p))])) for r in data for p in [chances(model, r)]]
    out = []
    for x in THRESHOLDS:
        wrong = sum(p >= x and not ok for p, ok in best)
        unsure = sum(p < x for p, _ in best)
        out.append((x, (wrong_cost * wrong + unsure) / max(len(best), 1), wrong, unsure))
    return out


def calibration_plot(data: list[Ranked], model: LogisticRegression, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = np.concatenate([chances(model, r) for r in data])
    y = np.concatenate([r.right for r in data])
    bins = np.linspace(0, 1, 11)
    which = np.clip(np.digitize(p, bins) - 1, 0, 9)
    centres = [(p[which == b].mean(), y[which == b].mean(), (which == b).sum()) for b in range(10) if (which == b).any()]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    ax.scatter([c[0] for c in centres], [c[1] for c in centres], s=[10 + c[2] / 3 for c in centres], label="validation")
    ax.set_xlabel("reranker's chance that the answer is right")
    ax.set_ylabel("share right (validation candidates)")
    ax.set_title("Reranker calibration")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def by_language(data: list[Ranked], model: LogisticRegression | None | str) -> str:
    cells = []
    for lang in ("en", "vi", "fr"):
        part = [r for r in data if r.language == lang]
        cells.append(f"{first_right(part, model):.3f} ({len(part)})")
    follow = [r for r in data if r.follow_up]
    return " | ".join([f"{first_right(data, model):.3f} ({len(data)})", *cells, f"{first_right(follow, model):.3f} ({len(follow)})"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=RERANK_DIR)
    parser.add_argument("--validation", type=Path, default=VALIDATION_DIR)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--wrong-cost", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=Path("models/reranker"))
    parser.add_argument("--report", type=Path, default=Path("reports/reranker.md"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings(_env_file=None, reranker_dir=None, generator="none")
    services = load_services(settings, lambda _: None)
    cross = CrossEncoder(args.out / CROSS_FOLDER)
    train = list(ranked(services, cross, read_written(args.data), args.depth))
    validation = list(ranked(services, cross, read_written(args.validation), args.depth))
    log.info("%d training questions, %d validation questions", len(train), len(validation))
    scores = {c: cross_validated(train, c) for c in C_GRID}
    c = max(C_GRID, key=lambda x: (round(scores[x], 3), -abs(np.log10(x))))  # ties: closest to C = 1
    model = fit(train, c)
    reranker = Reranker(
        model.coef_[0],
        float(model.intercept_[0]),
        args.depth,
        cross,
        {
            "fitted": datetime.date.today().isoformat(),
            "questions": len(train),
            "rows": int(sum(len(r.right) for r in train)),
            "C": c,
            **input_hashes(input_files(args.data)),
        },
    )
    reranker.save(args.out)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    plot = args.report.with_name(args.report.stem + "_calibration.png")
    calibration_plot(validation, model, plot)
    lines = [
        f"# Reranker (`python -m training.reranker`, {datetime.date.today().isoformat()})",
        "",
        f"Fitted on {len(train)} questions and turns of `{args.data.as_posix()}` (written apart from the answers), "
        f"their first {args.depth} candidates each; C = {c} by five-fold cross-validation over the questions "
        "(first candidate right: " + ", ".join(f"{k}: {v:.3f}" for k, v in scores.items()) + ").",
        "",
        "First candidate right (questions):",
        "",
        "| | all | en | vi | fr | follow-ups |",
        "|---|---|---|---|---|---|",
        f"| training questions, ranker | {by_language(train, None)} |",
        f"| validation, ranker | {by_language(validation, None)} |",
        f"| validation, cross-encoder alone | {by_language(validation, 'cross')} |",
        f"| validation, reranked | {by_language(validation, model)} |",
        "",
        f"Cost of each \"not sure\" threshold on the reranked first chance, validation (a wrong answer costs "
        f"{args.wrong_cost:g}; curated near-copies and the gate not counted):",
        "",
        "| not sure below | cost | wrong | not sure |",
        "|---|---|---|---|",
        *(f"| {x} | {cost:.3f} | {w} | {u} |" for x, cost, w, u in costs(validation, model, args.wrong_cost)),
        "",
        f"![calibration]({plot.name})",
        "",
        "Coefficients: " + ", ".join(f"{n} {w:+.2f}" for n, w in zip(FEATURES, model.coef_[0], strict=True)),
        "",
    ]
    atomic_write_text(args.report, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
