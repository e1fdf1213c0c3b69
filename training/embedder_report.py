"""reports/embedder.md and its loss plot: how often each encoder ranks the test question's own answer first."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import numpy as np

from app.artifacts import atomic_write_text


def plot_losses(losses: list[float], epochs: int, plot: Path) -> None:
    """Loss per step and its running mean over a quarter of an epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_epoch = max(1, len(losses) // max(1, epochs))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(losses) + 1), losses, lw=1, label="loss per step")
    smooth = np.convolve(losses, np.ones(per_epoch // 4 or 1) / (per_epoch // 4 or 1), mode="valid")
    ax.plot(range(len(losses) - len(smooth) + 1, len(losses) + 1), smooth, lw=2, label="running mean")
    ax.set_xlabel("step")
    ax.set_ylabel("in-batch cross-entropy")
    ax.set_title("Sentence encoder fine-tuning")
    ax.legend()
    fig.tight_layout()
    plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(plot, dpi=110)
    plt.close(fig)


def write_report(results: dict[str, dict[str, float]], manifest: dict[str, Any], report: Path) -> None:
    losses, config = manifest["losses"], manifest["config"]
    plot = report.with_name(report.stem + "_loss.png")
    plot_losses(losses, config["epochs"], plot)
    rows = "\n".join(
        f"| {name} | {r['top1']:.3f} | {r['top2']:.3f} | {r['top5']:.3f} | {r['copy_bleu']:.3f} | "
        f"{r['copy_key_fact']:.3f} |"
        for name, r in results.items()
    )
    n = next(iter(results.values()))["questions"]
    today, seconds = datetime.date.today().isoformat(), manifest["train_seconds"]
    caveat = (
        " The served encoder also learned visitors' phrasings of the test split's answers (`phrasings_also_for`):"
        " these figures flatter it; the fresh evaluation set (`python -m training.evaluate --set fresh`) does not."
        if config.get("phrasings_also_for")
        else ""
    )
    text = f"""# Verified-answer ranking: sentence encoder

Made by `python -m training.embedder evaluate` on {today}. Encoder: LoRA r={config["lora_r"]}
on `{config["base"]}`, {config["epochs"]} epochs ({len(losses)} steps, {seconds:.0f} s on a 2-core CPU).

How often the test question's own answer is the first (second, fifth) of the {n} test questions' rankings among
all verified answers (the training split's with their questions, the test split's by their own words and meaning
only), scored as serving scores them (`app.kiosk.verified.AnswerRanker`).{caveat}

| encoder | top-1 | top-2 | top-5 | copying the first: BLEU | key-fact |
|---|---|---|---|---|---|
{rows}

The last two columns score the first verified answer itself as the reply (mean sentence BLEU and key-fact
accuracy, as `training.evaluate` scores generated answers): what a generator that copied it faithfully
would reach. The test split was not used to choose anything: the recipe was chosen on training folds held out in turn
(`python -m training.embedder train --holdout-fold K`).

![loss]({plot.name})
"""
    atomic_write_text(report, text)
