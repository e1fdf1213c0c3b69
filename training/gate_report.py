"""`reports/classifier.md` and its plots: per-class scores, per language and kind, confusion matrix, PR curve, named
errors. Every score is the whole gate's (both stages, `RelevanceGate.relevances`)."""

from __future__ import annotations

import datetime
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_curve

from app.artifacts import atomic_write_text
from app.kiosk.gate import RelevanceGate
from training.gate_data import Example
from training.gate_metrics import cells, metrics, target_rows

# The student report's gate, on its own (easier) split.
REPORT_FIGURES = {"related": (0.95, 0.97, 0.96), "not_related": (1.00, 1.00, 1.00)}


def _plot_scores(m: dict[str, float], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = ["precision", "recall", "f1"]
    x = np.arange(len(names))
    for i, cls in enumerate(("related", "not_related")):
        values = [m[f"{cls}_{n}"] for n in names]
        bars = ax.bar(x + (i - 0.5) * 0.38, values, 0.38, label=cls.replace("_", " "))
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylim(0.8, 1.01)
    ax.set_title("Relevance gate on held-out questions")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_confusion(labels: np.ndarray, predicted: np.ndarray, path: Path) -> None:
    cm = confusion_matrix(labels, predicted, labels=[1, 0])
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(cm, cmap="Blues")
    names = ["related", "not related"]
    ax.set_xticks([0, 1], names)
    ax.set_yticks([0, 1], names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    ax.set_title("Confusion matrix (test)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_pr(labels: np.ndarray, scores: np.ndarray, threshold: float, path: Path) -> None:
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(recall, precision)
    i = int(np.searchsorted(thresholds, threshold))
    ax.scatter([recall[i]], [precision[i]], color="red", zorder=3, label=f"threshold {threshold:.3f}")
    ax.set_xlabel("recall (related)")
    ax.set_ylabel("precision (related)")
    ax.set_xlim(0.8, 1.005)
    ax.set_ylim(0.8, 1.005)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    ax.set_title("Precision–recall curve (test)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _errors(examples: list[Example], scores: np.ndarray, threshold: float, group: str) -> list[str]:
    rows = []
    for ex, score in zip(examples, scores, strict=True):
        wrong = (score >= threshold) != bool(ex.label)
        if ex.group == group and wrong:
            rows.append(f"| {ex.text.replace('|', '/')} | {ex.category} | {score:.3f} |")
    return rows or ["| (none) | | |"]


def _source(ex: Example) -> str:
    """Where an off-topic question comes from: its corpus (webquestions, chitchat) or its hard category."""
    return ex.category if ex.group == "general" else f"hard negative: {ex.category}"


def _false_accepts(splits: dict[str, tuple[list[Example], np.ndarray]], threshold: float) -> list[str]:
    """Every off-topic question accepted, per split, grouped by source: the place to look for label noise."""
    counts: Counter[tuple[str, str]] = Counter()
    rows = []
    for split, (items, scores) in splits.items():
        wrong = [(e, s) for e, s in zip(items, scores, strict=True) if e.label == 0 and s >= threshold]
        for ex, score in sorted(wrong, key=lambda p: (_source(p[0]), -p[1])):
            counts[(_source(ex), split)] += 1
            rows.append(f"| {split} | {_source(ex)} | {ex.text.replace('|', '/')} | {score:.3f} |")
    sources = sorted({source for source, _ in counts})
    summary = [f"| {src} | {counts[(src, 'validation')]} | {counts[(src, 'test')]} |" for src in sources]
    return [
        "| source | validation | test |",
        "|---|---|---|",
        *summary,
        "",
        "| split | source | question | relevance |",
        "|---|---|---|---|",
        *rows,
    ]


def _ambiguous(gate: RelevanceGate, examples: list[Example]) -> list[str]:
    rows = [
        f"| {e.text.replace('|', '/')} | {_source(e)} | {e.reason} | {gate.relevance(e.text):.3f} |"
        for e in examples
        if e.split == "ambiguous"
    ]
    return ["| question | source | why | relevance |", "|---|---|---|---|", *(rows or ["| (none) | | | |"])]


def _group_rate(examples: list[Example], scores: np.ndarray, threshold: float, group: str) -> tuple[int, int]:
    """(questions of `group` decided right, questions of `group`)."""
    chosen = [(e, s) for e, s in zip(examples, scores, strict=True) if e.group == group]
    right = sum((s >= threshold) == bool(e.label) for e, s in chosen)
    return right, len(chosen)


def _plots(m: dict[str, float], labels: np.ndarray, scores: np.ndarray, threshold: float, path: Path) -> list[str]:
    """Draw the three plots beside the report; their Markdown image links."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.with_suffix("")
    plots = {name: stem.parent / f"{stem.name}_{name}.png" for name in ("scores", "confusion", "pr_curve")}
    _plot_scores(m, plots["scores"])
    _plot_confusion(labels, (scores >= threshold).astype(int), plots["confusion"])
    _plot_pr(labels, scores, threshold, plots["pr_curve"])
    return [
        f"![per-class scores]({plots['scores'].name})",
        f"![confusion matrix]({plots['confusion'].name})",
        f"![precision-recall curve]({plots['pr_curve'].name})",
    ]


def _method(gate: RelevanceGate, test: int, related: int) -> list[str]:
    """The report's opening: the model, its features, how the threshold was chosen, the test questions."""
    return [
        "# Relevance gate: evaluation",
        "",
        f"Made by `python -m training.classifier evaluate` on {datetime.date.today().isoformat()}. "
        f"Model: `{gate.manifest.get('file')}` (sha256 `{gate.manifest.get('sha256', '')[:12]}…`), "
        f"scikit-learn {gate.manifest.get('sklearn_version')}.",
        "",
        "First stage: TF-IDF over word 1–2-grams and character 2–5-grams of the folded question (lower-case, "
        "Vietnamese diacritics removed; the city, the road and the man named in any language each one token), "
        "plus three single features: whether the question names him, how well the "
        "museum's knowledge base covers its words (best BM25 score of any passage per distinct content word; "
        "`app.kiosk.gate.KnowledgeCoverage`) and the share of its content words the knowledge base never uses "
        "(`app.kiosk.gate.UnknownWords`); logistic regression with `class_weight='balanced'`. Hard examples "
        "weigh more in training. "
        + _review_text(gate)
        + " The threshold is chosen on the validation split to minimise "
        f"{gate.manifest['config']['cost_false_accept']} × false-accept rate + "
        f"{gate.manifest['config']['cost_false_refusal']} × false-refusal rate: an answered off-topic question "
        "costs GPU time and can embarrass the museum, a refused visitor is frustrated.",
        "",
        f"Threshold: **{gate.threshold:.3f}**. Test questions: {test} ({related} related), none "
        "seen in training; the related test questions are the QA dataset's test split.",
        "",
    ]


def _review_text(gate: RelevanceGate) -> str:
    if gate.review is None:
        return "No second stage."
    return (
        f"Second stage (`app.kiosk.gate_review`), for first-stage scores from {gate.review.low:g} to "
        f"{gate.review.high:g}: gradient-boosted trees over the first stage's score, the question's nearest training "
        "questions (best cosine similarity to a related and to an off-topic one, related share of the ten "
        "nearest), its length and language, trained on out-of-fold first-stage scores."
    )


def _target_table(splits: dict[str, tuple[list[Example], np.ndarray]], threshold: float) -> list[str]:
    """The rows the issue sets targets on, one column per split (share, and n)."""
    rows = {name: target_rows(items, scores, threshold) for name, (items, scores) in splits.items()}
    names = list(splits)
    lines = ["| " + " | ".join(["", *names]) + " |", "|---" * (len(names) + 1) + "|"]
    for row in next(iter(rows.values())):
        values = [f"{rows[n][row][0]:.3f} (n={rows[n][row][1]})" for n in names]
        lines.append("| " + " | ".join([row, *values]) + " |")
    return [*lines, ""]


def _cell_table(splits: dict[str, tuple[list[Example], np.ndarray]], threshold: float) -> list[str]:
    """Every (language, kind, class) cell: share accepted (off-topic: wrongly; related: rightly), per split."""
    found = {name: {c[:3]: c[3:] for c in cells(items, scores, threshold)} for name, (items, scores) in splits.items()}
    keys = sorted({k for cells_ in found.values() for k in cells_})
    names = list(splits)
    lines = [
        "| language | kind | class | " + " | ".join(f"{n}: accepted / n" for n in names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for lang, kind, label in keys:
        values = []
        for n in names:
            count, accepted = found[n].get((lang, kind, label), (0, 0))
            values.append(f"{accepted / count:.3f} ({accepted}/{count})" if count else "–")
        cls = "related" if label else "off-topic"
        lines.append(f"| {lang} | {kind} | {cls} | " + " | ".join(values) + " |")
    return [*lines, ""]


# ---------------------------------------------------------------------------------------------------------------
# EXTERNAL EVALUATION: the place for a held-out evaluation file kept outside the training data. Not wired: nothing
# passes `external` yet. To add one, read its questions into `Example`s (label, and a category such as
# "hcmc-travel-vi" or "fragment" so that `Example.language` and `Example.kind` sort them; split "test") and pass
# {"name": examples} to `write_report(..., external=...)`: each gets the tables below, at the gate's threshold.
# ---------------------------------------------------------------------------------------------------------------
def external_sections(gate: RelevanceGate, external: dict[str, list[Example]]) -> list[str]:
    """Per language and kind tables for each external evaluation set, scored by the whole gate."""
    lines: list[str] = []
    for name, items in external.items():
        scores = gate.relevances([e.text for e in items])
        lines += [
            f"## External evaluation: {name}",
            "",
            *_target_table({name: (items, scores)}, gate.threshold),
            *_cell_table({name: (items, scores)}, gate.threshold),
        ]
    return lines


# A section another step writes into this report (the fresh evaluation's gate table, by `training.evaluate`):
# kept as it is, between these markers, when the report is rewritten.
BLOCK_START, BLOCK_END = "<!-- kept: begin -->", "<!-- kept: end -->"


def kept_block(path: Path) -> list[str]:
    """The marked section of the report at `path` as it stands (none if there is none)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    start, end = text.find(BLOCK_START), text.find(BLOCK_END)
    return text[start : end + len(BLOCK_END)].splitlines() + [""] if 0 <= start < end else []


def replace_block(path: Path, lines: list[str]) -> None:
    """Write `lines` as the report's marked section (after its per-language tables if it has none yet)."""
    text = path.read_text(encoding="utf-8")
    block = "\n".join([BLOCK_START, *lines, BLOCK_END])
    start, end = text.find(BLOCK_START), text.find(BLOCK_END)
    if 0 <= start < end:
        text = text[:start] + block + text[end + len(BLOCK_END) :]
    else:
        at = text.find("\n## ", text.find("## Per language and kind") + 1)
        text = text + "\n" + block + "\n" if at < 0 else text[: at + 1] + block + "\n" + text[at:]
    atomic_write_text(path, text)


def _class_table(m: dict[str, float]) -> list[str]:
    """Per-class scores on the test split beside the student report's."""
    rp, rr, rf = REPORT_FIGURES["related"]
    np_, nr, nf = REPORT_FIGURES["not_related"]
    return [
        "| | precision | recall | F1 | n |",
        "|---|---|---|---|---|",
        f"| related (ours, test) | {m['related_precision']:.3f} | {m['related_recall']:.3f} | "
        f"{m['related_f1']:.3f} | {m['related_n']} |",
        f"| not related (ours, test) | {m['not_related_precision']:.3f} | {m['not_related_recall']:.3f} | "
        f"{m['not_related_f1']:.3f} | {m['not_related_n']} |",
        f"| related (student report) | {rp:.2f} | {rr:.2f} | {rf:.2f} | |",
        f"| not related (student report) | {np_:.2f} | {nr:.2f} | {nf:.2f} | |",
        "",
    ]


def _error_table(
    m: dict[str, float], val: dict[str, float], hard_negative: tuple[int, int], hard_positive: tuple[int, int]
) -> list[str]:
    """Error rates at the threshold, validation (from the manifest) and test, and on the hard examples."""
    hn_right, hn_n = hard_negative
    hp_right, hp_n = hard_positive
    return [
        "| error rate at the threshold | validation | test |",
        "|---|---|---|",
        f"| off-topic question answered (false accept) | {val.get('false_accept_rate', float('nan')):.4f} | "
        f"{m['false_accept_rate']:.4f} |",
        f"| related question refused (false refusal) | {val.get('false_refusal_rate', float('nan')):.4f} | "
        f"{m['false_refusal_rate']:.4f} |",
        f"| hard negatives accepted (test) | | {hn_n - hn_right} / {hn_n} = {(hn_n - hn_right) / max(hn_n, 1):.3f} |",
        f"| hard positives recalled (test) | | {hp_right} / {hp_n} = {hp_right / max(hp_n, 1):.3f} |",
        "",
    ]


def _error_sections(test: list[Example], scores: np.ndarray, threshold: float) -> list[str]:
    """The test questions decided wrong, by group."""
    lines = []
    for title, column, group in (
        ("Hard negatives accepted (test)", "category", "hard_negative"),
        ("Hard positives refused (test)", "category", "hard_positive"),
        ("Related QA questions refused (test)", "topic", "qa"),
    ):
        lines += [
            f"## {title}",
            "",
            f"| question | {column} | relevance |",
            "|---|---|---|",
            *_errors(test, scores, threshold, group),
            "",
        ]
    return lines


def write_report(
    gate: RelevanceGate, examples: list[Example], path: Path, external: dict[str, list[Example]] | None = None
) -> dict[str, float]:
    test = [e for e in examples if e.split == "test"]
    labels = np.array([e.label for e in test])
    scores = gate.relevances([e.text for e in test])
    val_examples = [e for e in examples if e.split == "val"]
    val_scores = gate.relevances([e.text for e in val_examples])
    splits = {"validation": (val_examples, val_scores), "test": (test, scores)}
    m = metrics(labels, scores, gate.threshold)
    hard_negative = _group_rate(test, scores, gate.threshold, "hard_negative")
    hard_positive = _group_rate(test, scores, gate.threshold, "hard_positive")
    val = gate.manifest.get("metrics", {}).get("validation", {})
    lines = [
        *_method(gate, len(test), int(labels.sum())),
        *_class_table(m),
        *_error_table(m, val, hard_negative, hard_positive),
        "## Per language and kind",
        "",
        "Validation is carved from the training data (`val_share` of every group, language and kind cell, by a "
        "seeded hash; the QA set's paraphrases by their answer); test is the old held-out split (the QA test "
        "split and a hash of each other question). Shares accepted at the threshold: for off-topic questions, "
        "wrongly; for related ones, rightly (recall).",
        "",
        *_target_table(splits, gate.threshold),
        *_cell_table(splits, gate.threshold),
        *(external_sections(gate, external) if external else []),
        *kept_block(path),
        *_plots(m, labels, scores, gate.threshold, path),
        "",
        *_error_sections(test, scores, gate.threshold),
        "## Every false accept, validation and test, by source",
        "",
        *_false_accepts(splits, gate.threshold),
        "",
        "## Left out by the scope rule (ambiguous)",
        "",
        "Off-topic questions that the QA dataset's own scope makes related (`training.gate_data.scope_conflict`, "
        "see `data/offtopic/SOURCES.md`): neither trained on nor scored. Their relevance under this gate:",
        "",
        *_ambiguous(gate, examples),
        "",
    ]
    atomic_write_text(path, "\n".join(lines))
    (hn_right, hn_n), (hp_right, hp_n) = hard_negative, hard_positive
    return m | {
        "hard_negative_accept_rate": (hn_n - hn_right) / max(hn_n, 1),
        "hard_positive_recall": hp_right / max(hp_n, 1),
    }


def write_variants(results: dict[str, dict[str, dict[str, tuple[float, int]]]], path: Path) -> None:
    """`reports/gate_variants.md`: the rows the issue sets targets on, one column per variant and split."""
    names = list(results)
    splits = ("validation", "test")
    counts = {row: (n, results[names[0]]["test"][row][1]) for row, (_, n) in results[names[0]]["validation"].items()}
    lines = [
        "# Relevance gate: variants compared",
        "",
        f"Made by `python -m training.classifier compare` on {datetime.date.today().isoformat()}. Each variant is "
        "trained on the training split and gets its own threshold, chosen on validation as in `train`; "
        "shares accepted at that threshold (off-topic: wrongly; related: rightly).",
        "",
        "| row (n validation / test) | " + " | ".join(f"{name}, {split}" for name in names for split in splits) + " |",
        "|---|" + "---|" * (len(names) * len(splits)),
        "| threshold | " + " | ".join(f"{results[n]['threshold']['threshold'][0]:.3f} | " for n in names) + "",
    ]
    for row, (n_val, n_test) in counts.items():
        values = [f"{results[n][split][row][0]:.3f}" for n in names for split in splits]
        lines.append(f"| {row} ({n_val} / {n_test}) | " + " | ".join(values) + " |")
    atomic_write_text(path, "\n".join([*lines, ""]))
