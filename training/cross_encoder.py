"""Fine-tune the cross-encoder that the reranker reads (`app.kiosk.reranker.CrossEncoder`).

    python -m training.cross_encoder [--config training/configs/minilm-hcm-served.yaml] [--out models/reranker/cross]

The answer ranker scores a question and an answer apart (words, and the sentence encoder's vectors of each); its
first candidates are often right, but the first is the right one only ~83% of the time while one of the first
three is ~95% (validation): "In which French port did he arrive in 1911?" ranks the answer about his leaving
Saigon in 1911 first. A cross-encoder reads the question and one answer together, word against word.

It is all-MiniLM-L6-v2 with a LoRA adapter and a one-logit head, trained on the served encoder's pairs (the
training questions and the visitors' phrasings of every served answer, less the fifth that `training.thresholds`
holds out): each question against its answer and `--negatives` hard negatives, the ranker's first candidates that
are neither its answer nor state the same facts, with a softmax over the group (the answer should win). The
adapter (float16) and its manifest (`cross_encoder.json`: base, hashes, inputs, losses) are written atomically.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from app.artifacts import atomic_write_json, folder_hashes, input_hashes, replace_folder, staging_folder
from app.kiosk.corpus import load_corpus
from app.kiosk.embeddings import PACKAGED_MINILM, get_embedder, resolve, base_identity
from app.kiosk.reranker import CROSS_MANIFEST, CrossEncoder
from app.kiosk.retriever import Retriever
from app.kiosk.verified import read_phrasings, read_verified, with_phrasings
from app.settings import Settings
from training import qa
from training.adapter_files import to_half
from training.config import load_config
from training.embedder import input_files, training_pairs
from training.embedder_pairs import Pairs
from training.embedder_training import LORA_TARGETS, EmbedderConfig
from training.metrics import same_facts

log = logging.getLogger(__name__)
SERVED_CONFIG = Path("training/configs/minilm-hcm-served.yaml")


@dataclass(frozen=True)
class CrossConfig:
    negatives: int = 3
    candidates: int = 8
    epochs: int = 1
    questions_per_step: int = 8
    learning_rate: float = 5e-4
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    max_length: int = 96
    seed: int = 0


def hard_negatives(pairs: Pairs, config: CrossConfig, settings: Settings) -> list[list[int]]:
    """For each question, the answers (indices into `pairs.answers`) that the served ranker puts first without
    being its answer or stating the same facts."""
    verified = read_verified(settings.qa_files)
    phrasings = read_phrasings(settings.phrasings_dir)
    kept = with_phrasings(verified, [p for p in phrasings if not qa.held_out(p.question, 0.2)])
    embedder = get_embedder(settings.embedder, settings.cache_dir) if settings.embedder else None
    ranker = Retriever(load_corpus(settings.corpus), kept, embedder=embedder).answers
    assert ranker is not None
    index = {a: i for i, a in enumerate(pairs.answers)}
    out = []
    for question, target in tqdm(list(zip(pairs.questions, pairs.target, strict=True)), desc="hard negatives"):
        answer = pairs.answers[target]
        found = [p.answer for p, _ in ranker.ranked(question, config.candidates)]
        wrong = [a for a in found if a in index and a != answer and not same_facts(answer, a)]
        out.append([index[a] for a in wrong[: config.negatives]])
    return out


def train(pairs: Pairs, negatives: list[list[int]], config: CrossConfig) -> tuple[torch.nn.Module, object, list[float]]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

    set_seed(config.seed)
    base = resolve(PACKAGED_MINILM)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, dtype=torch.float32)
    lora = LoraConfig(
        task_type="SEQ_CLS",
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(LORA_TARGETS),
    )
    model = get_peft_model(model, lora)
    model.train()
    rows = [i for i in range(len(pairs.questions)) if negatives[i]]
    steps = config.epochs * ((len(rows) + config.questions_per_step - 1) // config.questions_per_step)
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / (0.1 * steps)) * max(0.0, 1 - s / steps))
    rng = random.Random(config.seed)
    losses: list[float] = []
    bar = tqdm(total=steps, desc="cross-encoder")
    for _ in range(config.epochs):
        rng.shuffle(rows)
        for start in range(0, len(rows), config.questions_per_step):
            batch = rows[start : start + config.questions_per_step]
            width = config.negatives + 1
            questions, answers = [], []
            for i in batch:
                group = [pairs.target[i], *negatives[i]]
                group += [group[-1]] * (width - len(group))  # fewer negatives found: the last repeated
                questions += [pairs.questions[i]] * width
                answers += [pairs.answers[j] for j in group]
            inputs = tokenizer(questions, answers, padding=True, truncation=True, max_length=config.max_length, return_tensors="pt")
            logits = model(**inputs).logits.view(len(batch), width)
            loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(batch), dtype=torch.long))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()}: lower the learning rate")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            losses.append(round(loss.item(), 4))
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
    bar.close()
    return model.eval(), tokenizer, losses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=SERVED_CONFIG, help="the served encoder's preset (its pairs)")
    parser.add_argument("--out", type=Path, default=Path("models/reranker/cross"))
    parser.add_argument("--negatives", type=int, default=CrossConfig.negatives)
    parser.add_argument("--epochs", type=int, default=CrossConfig.epochs)
    parser.add_argument("--limit", type=int, help="train on the first N questions only (a quick check)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    config = CrossConfig(negatives=args.negatives, epochs=args.epochs)
    encoder_config = load_config(EmbedderConfig, args.config)
    pairs = training_pairs(encoder_config)
    if args.limit:
        pairs = Pairs(pairs.questions[: args.limit], pairs.answers, pairs.target[: args.limit])
    settings = Settings(_env_file=None, reranker_dir=None)
    start = time.monotonic()
    negatives = hard_negatives(pairs, config, settings)
    model, tokenizer, losses = train(pairs, negatives, config)
    tmp = staging_folder(args.out)
    model.save_pretrained(tmp)
    to_half(tmp / "adapter_model.safetensors")
    (tmp / "README.md").unlink(missing_ok=True)
    manifest = {
        "base": PACKAGED_MINILM,
        "base_identity": base_identity(resolve(PACKAGED_MINILM)),
        "config": {k: getattr(config, k) for k in CrossConfig.__dataclass_fields__},
        **input_hashes(input_files(encoder_config, args.config)),
        "questions": len(pairs.questions),
        "losses": losses,
        "train_seconds": round(time.monotonic() - start, 1),
        "made": datetime.date.today().isoformat(),
        "files": folder_hashes(tmp),
    }
    atomic_write_json(tmp / CROSS_MANIFEST, manifest)
    replace_folder(tmp, args.out)
    CrossEncoder(args.out)  # loads as served, or fails here
    log.info("cross-encoder written to %s (%d steps, last loss %.3f)", args.out, len(losses), np.mean(losses[-50:]))


if __name__ == "__main__":
    main()
