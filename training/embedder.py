"""Fine-tune the sentence encoder that ranks verified answers: each training question is pulled towards
its own answer and away from the other answers in its batch (in-batch negatives, as in
sentence-transformers' MultipleNegativesRankingLoss), with a small LoRA adapter on all-MiniLM-L6-v2.

    python -m training.embedder train [--config training/configs/minilm-hcm.yaml] [--holdout-fold K]
    python -m training.embedder folds [--config ...]   # one encoder per fold, for the adapter's training
    python -m training.embedder evaluate [--embedder models/embedder/minilm-hcm]

Visitors ask the museum's known questions in words of their own; 171 of the 181 test questions have an
answer that a training question already has, so which verified answer comes first decides most answers.
`train` writes the adapter (float16, ~1 MB) atomically with `embedder.json`: the base's identity, the
files' hashes, the config, the data's hash and the loss per step. `--holdout-fold K` instead trains
without the training questions of fold K (the folds of `training.sft_data.fold_of`) and prints how often
their answer comes first, before and after: that is how the recipe was chosen, without the test split.
`folds` writes `<out_dir>-folds/fold-K`, each trained without fold K's questions (see `train_folds`).
`evaluate` ranks the test questions against the training answers as serving ranks them, with the base
and with the fine-tuned encoder, and writes `reports/embedder.md` and its loss plot.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.artifacts import (
    atomic_write_json,
    atomic_write_text,
    folder_hashes,
    input_hashes,
    replace_folder,
    staging_folder,
)
from app.kiosk.corpus import load_corpus
from app.kiosk.embeddings import EMBEDDER_MANIFEST, PACKAGED_MINILM, Embedder, base_identity, encode, resolve
from app.kiosk.grounding import build_retriever
from app.kiosk.retriever import Retriever
from app.kiosk.verified import VerifiedPair, read_verified
from training import qa
from training.config import load_config, to_dict
from training.finetune import to_half
from training.metrics import Scores, score
from training.sft_data import FOLDS, fold_of

log = logging.getLogger(__name__)
REPORTS = Path("reports")
LORA_TARGETS = ("query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense")


@dataclass
class EmbedderConfig:
    """The encoder, its adapter and the optimisation (defaults chosen on held-out training folds)."""

    base: str = PACKAGED_MINILM
    """Base sentence encoder: `packaged:minilm`, a local folder or a hub id."""
    train_csv: Path = qa.TRAIN_CSV
    corpus: Path = Path("data/corpus.jsonl")
    out_dir: Path = Path("models/embedder/minilm-hcm")
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: list[str] = field(default_factory=lambda: list(LORA_TARGETS))
    epochs: int = 4
    batch_size: int = 32
    learning_rate: float = 5e-4
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    scale: float = 20.0
    """Cosine similarities are multiplied by this before the softmax over the batch's answers."""
    max_length: int = 128
    seed: int = 0
    folds: int = FOLDS


@dataclass(frozen=True)
class Pairs:
    questions: list[str]
    answers: list[str]  # distinct, in first-seen order
    target: list[int]  # the index in `answers` of each question's answer


def read_pairs(path: Path) -> Pairs:
    pairs = qa.read_pairs(path)
    answers = list(dict.fromkeys(p.answer for p in pairs))
    index = {a: i for i, a in enumerate(answers)}
    return Pairs([p.question for p in pairs], answers, [index[p.answer] for p in pairs])


def in_batch_loss(model: Any, tokenizer: Any, pairs: Pairs, rows: list[int], config: EmbedderConfig) -> torch.Tensor:
    """Cross-entropy of each question over the batch's distinct answers (a shared answer is not a negative)."""
    distinct = list(dict.fromkeys(pairs.target[i] for i in rows))
    q = encode(model, tokenizer, [pairs.questions[i] for i in rows], config.max_length)
    a = encode(model, tokenizer, [pairs.answers[j] for j in distinct], config.max_length)
    target = torch.tensor([distinct.index(pairs.target[i]) for i in rows])
    return torch.nn.functional.cross_entropy(config.scale * q @ a.T, target)


def fit(config: EmbedderConfig, pairs: Pairs, rows: list[int]) -> tuple[Embedder, list[float]]:
    """LoRA-tune the base on the question rows `rows`; returns the encoder (adapter unmerged) and loss per step."""
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm

    torch.manual_seed(config.seed)
    embedder = Embedder(config.base)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.lora_targets)  # fmt: skip
    model = get_peft_model(embedder.model, lora)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate,
                                  weight_decay=config.weight_decay)  # fmt: skip
    per_epoch = math.ceil(len(rows) / config.batch_size)
    steps = config.epochs * per_epoch
    warmup = max(1, round(config.warmup_ratio * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: min(1.0, (t + 1) / warmup) * max(0.0, 1.0 - t / steps)
    )
    rng = np.random.default_rng(config.seed)
    losses: list[float] = []
    with tqdm(total=steps, desc="encoder", unit="step") as progress:
        for _ in range(config.epochs):
            order = rng.permutation(rows).tolist()
            for start in range(0, len(order), config.batch_size):
                loss = in_batch_loss(model, embedder.tokenizer, pairs, order[start : start + config.batch_size], config)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss is {loss.item()} at step {len(losses)}: lower the learning rate")
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                schedule.step()
                losses.append(round(loss.item(), 4))
                progress.update()
                progress.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    embedder.model = model
    embedder.identity += "+unsaved"  # its vectors are not the base's: never share the base's cached ones
    return embedder, losses


def answer_ranks(retriever: Retriever, questions: list[str], answers: list[str]) -> np.ndarray:
    """Position (0 = first) of each question's answer among the verified answers, as serving ranks them."""
    index = retriever.answers
    if index is None:
        raise ValueError("the retriever has no verified answers")
    position = {h.answer: i for i, h in enumerate(index.pairs)}
    ranks = []
    for question, answer in zip(questions, answers, strict=True):
        order = np.argsort(-index.scores(question), kind="stable")
        found = np.flatnonzero(order == position.get(answer, -1))
        ranks.append(int(found[0]) if len(found) else len(order))
    return np.array(ranks)


def top_k(ranks: np.ndarray) -> dict[str, float]:
    return {f"top{k}": round(float((ranks < k).mean()), 4) for k in (1, 2, 5)} | {"questions": len(ranks)}


def _split(config: EmbedderConfig, pairs: Pairs, fold: int) -> tuple[list[int], list[int], list[VerifiedPair]]:
    """Rows kept for training, rows held out (fold `fold`), and serving's hints without the held-out questions.

    Every training answer stays in the index (as a test question's does); the held-out questions' words are
    neither hints nor word statistics.
    """
    folds = [fold_of(q, config.folds) for q in pairs.questions]
    kept = [i for i, k in enumerate(folds) if k != fold]
    held = [i for i, k in enumerate(folds) if k == fold]
    left_out = {pairs.questions[i] for i in held}
    hints = [h if h.question not in left_out else dataclasses.replace(h, question="")
             for h in read_verified([config.train_csv])]  # fmt: skip
    return kept, held, hints


def _held_ranks(config: EmbedderConfig, pairs: Pairs, held: list[int], hints: list[VerifiedPair],
                embedder: Embedder | None) -> dict[str, float]:  # fmt: skip
    retriever = Retriever(load_corpus(config.corpus), hints, embedder=embedder)
    answers = [pairs.answers[pairs.target[i]] for i in held]
    questions = [pairs.questions[i] for i in held]
    ranks = top_k(answer_ranks(retriever, questions, answers))
    return ranks | {"copy_key_fact": copying_first(retriever, questions, answers).key_fact_accuracy}


def copying_first(retriever: Retriever, questions: list[str], answers: list[str]) -> Scores:
    """How replies that copied the first verified answer would score: the ceiling copying sets."""
    assert retriever.answers is not None
    first = [next(iter(retriever.answers.top(q, 1)), None) for q in questions]
    return score(answers, [h.answer if h else "" for h in first])


def holdout(config: EmbedderConfig, fold: int) -> dict[str, dict[str, float]]:
    """Train without fold `fold`'s questions; rank that fold's questions among all training answers."""
    pairs = read_pairs(config.train_csv)
    kept, held, hints = _split(config, pairs, fold)
    tuned, _ = fit(config, pairs, kept)
    return {name: _held_ranks(config, pairs, held, hints, embedder)
            for name, embedder in (("base", Embedder(config.base)), ("fine-tuned", tuned))}  # fmt: skip


def input_files(config: EmbedderConfig, config_file: Path | None, folds: bool = False) -> list[Path]:
    """Every file an encoder is trained from; fold encoders' manifests also score their held-out questions
    against the corpus. (The base is identified apart.)"""
    return [config.train_csv, *([config.corpus] if folds else []), *([config_file] if config_file else [])]


def save(config: EmbedderConfig, embedder: Embedder, losses: list[float], out: Path, seconds: float,
         inputs: list[Path], **extra: Any) -> dict[str, Any]:  # fmt: skip
    """Write the adapter (float16) and its manifest (with the hashes of `inputs`) into `out`, atomically."""
    tmp = staging_folder(out)
    embedder.model.save_pretrained(tmp)
    to_half(tmp / "adapter_model.safetensors")
    (tmp / "README.md").unlink(missing_ok=True)  # peft's model-card template says nothing true
    manifest = {
        "base": config.base,
        "base_identity": base_identity(resolve(config.base)),
        "config": to_dict(config),
        **input_hashes(inputs),
        **extra,
        "losses": losses,
        "train_seconds": round(seconds, 1),
        "made": datetime.date.today().isoformat(),
        "files": folder_hashes(tmp),  # before the manifest itself is written
    }
    atomic_write_json(tmp / EMBEDDER_MANIFEST, manifest)
    replace_folder(tmp, out)
    return manifest


def train_folds(config: EmbedderConfig, out: Path, config_file: Path | None = None) -> dict[str, Any]:
    """One encoder per fold, each trained without that fold's questions: `out/fold-K`.

    The adapter's training prompts rank verified answers for a training question with the encoder that never
    saw it (`training.finetune`, `context_embedder`), so training meets the first answer right about as often
    as serving does for a new phrasing. Each folder's manifest records its fold and how its held-out questions
    ranked (the cross-validated figure of the recipe).
    """
    pairs = read_pairs(config.train_csv)
    inputs = input_files(config, config_file, folds=True)
    results = {}
    for fold in range(config.folds):
        start = time.monotonic()
        kept, held, hints = _split(config, pairs, fold)
        tuned, losses = fit(config, pairs, kept)
        ranks = _held_ranks(config, pairs, held, hints, tuned)
        save(config, tuned, losses, out / f"fold-{fold}", time.monotonic() - start, inputs, holdout_fold=fold,
             folds=config.folds, holdout=ranks)  # fmt: skip
        results[f"fold-{fold}"] = ranks
        log.info("fold %d of %d: held-out top-1 %.3f (%d questions)", fold, config.folds, ranks["top1"], len(held))
    return results


def train(config: EmbedderConfig, config_file: Path | None = None) -> dict[str, Any]:
    start = time.monotonic()
    pairs = read_pairs(config.train_csv)
    embedder, losses = fit(config, pairs, list(range(len(pairs.questions))))
    manifest = save(
        config, embedder, losses, config.out_dir, time.monotonic() - start, input_files(config, config_file)
    )
    log.info("encoder adapter written to %s in %.0fs (loss %.3f -> %.3f)", config.out_dir,
             manifest["train_seconds"], losses[0], losses[-1])  # fmt: skip
    return manifest


def evaluate(config: EmbedderConfig, tuned: Path, report: Path) -> dict[str, dict[str, float]]:
    """Rank the test questions among the training answers with the base and with `tuned`; write the report."""
    test = qa.read_pairs(qa.TEST_CSV)
    questions, answers = [p.question for p in test], [p.answer for p in test]
    results = {}
    for name, embedder in (("words only", None), ("base MiniLM", Embedder(config.base)),
                           ("fine-tuned MiniLM", Embedder(str(tuned)))):  # fmt: skip
        retriever = build_retriever(config.corpus, [config.train_csv], embedder)
        results[name] = top_k(answer_ranks(retriever, questions, answers))
        copied = copying_first(retriever, questions, answers)
        results[name] |= {"copy_bleu": copied.mean_sentence_bleu, "copy_key_fact": copied.key_fact_accuracy}
    manifest = json.loads((tuned / EMBEDDER_MANIFEST).read_text(encoding="utf-8"))
    write_report(results, manifest, report)
    return results


def write_report(results: dict[str, dict[str, float]], manifest: dict[str, Any], report: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = manifest["losses"]
    config = manifest["config"]
    per_epoch = max(1, len(losses) // max(1, config["epochs"]))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(losses) + 1), losses, lw=1, label="loss per step")
    smooth = np.convolve(losses, np.ones(per_epoch // 4 or 1) / (per_epoch // 4 or 1), mode="valid")
    ax.plot(range(len(losses) - len(smooth) + 1, len(losses) + 1), smooth, lw=2, label="running mean")
    ax.set_xlabel("step")
    ax.set_ylabel("in-batch cross-entropy")
    ax.set_title("Sentence encoder fine-tuning")
    ax.legend()
    fig.tight_layout()
    plot = report.with_name(report.stem + "_loss.png")
    plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(plot, dpi=110)
    plt.close(fig)
    rows = "\n".join(
        f"| {name} | {r['top1']:.3f} | {r['top2']:.3f} | {r['top5']:.3f} | {r['copy_bleu']:.3f} | "
        f"{r['copy_key_fact']:.3f} |"
        for name, r in results.items()
    )
    n = next(iter(results.values()))["questions"]
    today, seconds = datetime.date.today().isoformat(), manifest["train_seconds"]
    text = f"""# Verified-answer ranking: sentence encoder

Made by `python -m training.embedder evaluate` on {today}. Encoder: LoRA r={config["lora_r"]}
on `{config["base"]}`, {config["epochs"]} epochs ({len(losses)} steps, {seconds:.0f} s on a 2-core CPU).

How often the test question's own answer is the first (second, fifth) of the {n} test questions' rankings among
the training split's verified answers, scored as serving scores them (`app.kiosk.verified.AnswerRanker`):

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["train", "folds", "evaluate"])
    parser.add_argument("--config", type=Path, help="a YAML preset of EmbedderConfig fields")
    parser.add_argument("--holdout-fold", type=int, help="train: leave this fold's questions out and score them")
    parser.add_argument("--embedder", type=Path, help="evaluate: the fine-tuned folder (default: out_dir)")
    parser.add_argument("--out", type=Path, help="folds: where fold-K folders go (default: out_dir + '-folds')")
    parser.add_argument("--report", type=Path, default=REPORTS / "embedder.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(EmbedderConfig, args.config)
    if args.command == "train" and args.holdout_fold is not None:
        if not 0 <= args.holdout_fold < config.folds:
            parser.error(f"--holdout-fold must be between 0 and {config.folds - 1}")
        print(json.dumps(holdout(config, args.holdout_fold), indent=1))
    elif args.command == "train":
        train(config, args.config)
    elif args.command == "folds":
        out = args.out or config.out_dir.with_name(config.out_dir.name + "-folds")
        print(json.dumps(train_folds(config, out, args.config), indent=1))
    else:
        print(json.dumps(evaluate(config, args.embedder or config.out_dir, args.report), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
