"""reports/eval.md: base vs fine-tuned vs the student report, sample answers, loss and BLEU plots."""

from __future__ import annotations

import csv
import datetime
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from app.artifacts import atomic_write_text
from app.settings import COPY_BIAS
from training import qa
from training.finetune_config import FinetuneConfig
from training.gate_report import kept_block
from training.metrics import Scores

REPORT_BLEU = {"base": 0.184, "fine-tuned": 0.67}


def plot_losses(log_history: Path, out: Path) -> bool:
    if not log_history.exists():
        return False
    history = json.loads(log_history.read_text(encoding="utf-8"))
    train = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
    evals = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    if train:
        ax.plot(*zip(*train, strict=True), label="training loss", alpha=0.8)
    if evals:
        ax.plot(*zip(*evals, strict=True), marker="o", label="evaluation loss")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("cross-entropy (answer tokens)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Adapter training")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return True


def plot_bleu_over_runs(runs_csv: Path, out: Path) -> bool:
    if not runs_csv.exists():
        return False
    with runs_csv.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for variant in dict.fromkeys(r["variant"] for r in rows):
        points = [(i, float(r["mean_sentence_bleu"])) for i, r in enumerate(rows) if r["variant"] == variant]
        ax.plot(*zip(*points, strict=True), marker="o", label=variant)
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="target 0.5")
    ax.set_xlabel("evaluation run (reports/runs.csv row)")
    ax.set_ylabel("mean sentence BLEU (generated)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("BLEU over evaluation runs")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return True


def _number(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "n/a"


def write_eval_report(
    results: dict[str, tuple[Scores, list[str]]], pairs: list[qa.QAPair], config: FinetuneConfig, path: Path
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    losses = plot_losses(config.out_dir / "log_history.json", path.parent / "eval_loss_curves.png")
    bleu = plot_bleu_over_runs(path.parent / "runs.csv", path.parent / "eval_bleu_runs.png")
    manifest_path = config.out_dir / "adapter_manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    lines = [
        "# Answer quality: base model vs adapter",
        "",
        f"Made by `python -m training.evaluate` on {datetime.date.today().isoformat()}: {len(pairs)} test questions "
        f"(data/qa/test.csv, never seen in training), greedy decoding, at most 64 new tokens. Base model: "
        f"`{config.base_model}`; adapter: `{config.out_dir}` "
        f"(best evaluation loss {_number(manifest.get('metrics', {}).get('best_eval_loss'))}). Copy bias "
        f"{COPY_BIAS:g} unless a row says otherwise (`app.generation.copying`; "
        "chosen on the adapter's validation questions, "
        "`python -m training.evaluate --split validation`).",
        "",
        "Key-fact accuracy is the share of the reference answer's numbers and names (case- and accent-folded) "
        "found in the generated answer. A clean ending means no turn marker and a finished last sentence. "
        "Answers are scored as the service shows them on the CPU (float32 prompts, int8 decoding steps): an "
        "answer that does not end cleanly is replaced by the first complete retrieved sentence (the closest "
        "verified answer, else a passage sentence; `app.kiosk.grounding.readable`); the last column counts those "
        "replacements, so the model's own share of clean endings is clean endings − fallbacks / n.",
        "",
        "| variant | mean sentence BLEU | corpus BLEU | ROUGE-L | key-fact accuracy | clean endings | fallbacks |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (s, _) in results.items():
        lines.append(
            f"| {name} | {s.mean_sentence_bleu:.3f} | {s.corpus_bleu:.3f} | {s.rouge_l:.3f} | "
            f"{s.key_fact_accuracy:.3f} | {s.clean_endings:.3f} | {s.fallbacks} / {s.n} |"
        )
    lines += [
        f"| student report, base (BLEU on argmax logits) | {REPORT_BLEU['base']:.3f} | | | | | |",
        f"| student report, fine-tuned (BLEU on argmax logits) | {REPORT_BLEU['fine-tuned']:.3f} | | | | | |",
        "",
        "The student report's BLEU compared argmax logits under teacher forcing with the reference, which is "
        "far easier than scoring free generation; ours scores what a visitor would read.",
        "",
    ]
    if losses:
        lines += ["![loss curves](eval_loss_curves.png)", ""]
    if bleu:
        lines += ["![BLEU over runs](eval_bleu_runs.png)", ""]
    lines += kept_block(path)  # the fresh set's figures against the targets, written by `--set fresh`
    lines += ["## Sample answers", ""]
    names = list(results)
    for i, pair in enumerate(pairs[:12]):
        lines += [f"**Q:** {pair.question}  ", f"**Reference:** {pair.answer}  "]
        lines += [f"**{name}:** {results[name][1][i]}  " for name in names]
        lines.append("")
    atomic_write_text(path, "\n".join(lines))
