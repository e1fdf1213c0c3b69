"""The encoder's training loop (`transformers.Trainer`, in-batch contrastive loss), proved on a tiny set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from app.kiosk.embeddings import PACKAGED_MINILM, Embedder
from training.config import load_config
from training.embedder_pairs import Pairs, read_pairs
from training.embedder_training import EmbedderConfig, InBatchContrastive, PairCollator, fit, training_args

ROOT = Path(__file__).resolve().parents[2]


def test_a_shared_answer_is_one_candidate_not_a_negative(small_csv):
    pairs = read_pairs(small_csv)
    a, b = next((i, j) for i in range(16) for j in range(i + 1, 16) if pairs.target[i] == pairs.target[j])
    other = next(k for k in range(16) if pairs.target[k] != pairs.target[a])
    batch = PairCollator(pairs)([a, other, b])
    assert batch["answers"] == [pairs.answers[pairs.target[a]], pairs.answers[pairs.target[other]]]
    assert batch["target"].tolist() == [0, 1, 0]


def test_the_trainer_runs_the_presets_recipe():
    config = load_config(EmbedderConfig, ROOT / "training/configs/minilm-hcm.yaml")
    args = training_args(config, "unused")
    assert (args.learning_rate, args.num_train_epochs, args.per_device_train_batch_size) == (5e-4, 4, 32)
    assert (args.seed, args.weight_decay, args.max_grad_norm) == (0, 0.01, 1.0)
    assert args.get_warmup_steps(120) == 12 and args.lr_scheduler_type == "linear"
    assert args.save_strategy == "no" and args.logging_steps == 1  # nothing written; every step's loss kept


def _loss_and_top1(embedder: Embedder, pairs: Pairs, scale: float) -> tuple[float, float]:
    """The in-batch loss over every pair at once, and how often a question's own answer is the nearest."""
    rows = list(range(len(pairs.questions)))
    with torch.no_grad():
        loss = InBatchContrastive(embedder.model, embedder.tokenizer, scale, 128)(**PairCollator(pairs)(rows))["loss"]
    nearest = (embedder.embed(pairs.questions) @ embedder.embed(pairs.answers).T).argmax(axis=1)
    return float(loss), float(np.mean(nearest == np.array(pairs.target)))


def test_training_lowers_the_loss_and_ranks_each_questions_answer_first(small_csv):
    pairs = read_pairs(small_csv)
    config = EmbedderConfig(train_csv=small_csv, epochs=4, batch_size=8, learning_rate=1e-3)
    loss_before, top1_before = _loss_and_top1(Embedder(PACKAGED_MINILM), pairs, config.scale)
    tuned, losses = fit(config, pairs, list(range(16)))
    loss_after, top1_after = _loss_and_top1(tuned, pairs, config.scale)
    assert len(losses) == 4 * 2 and all(np.isfinite(losses))  # a step per batch of 8, four epochs
    assert tuned.identity.endswith("+unsaved")  # never shares the base's cached answer vectors
    assert loss_after < 0.5 * loss_before, (loss_before, loss_after)
    assert top1_before < 0.8 and top1_after > top1_before, (top1_before, top1_after)
