"""LoRA-tune the sentence encoder with `transformers.Trainer` on an in-batch contrastive loss.

Each training question is pulled towards its own answer and away from the other answers in its batch
(in-batch negatives, as in sentence-transformers' MultipleNegativesRankingLoss).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from app.kiosk.embeddings import PACKAGED_MINILM, Embedder, encode
from training import qa
from training.embedder_pairs import Pairs
from training.sft_data import FOLDS

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
    phrasings_dir: Path | None = Path("data/qa/phrasings")
    """The served encoder also learns the visitors' phrasings of the training answers (fold encoders do not)."""
    phrasings_held_out: float = 0.2
    """Share of the phrasings never trained on: `training.thresholds` chooses the clarify threshold on them."""
    phrasings_also_for: list[Path] = field(default_factory=list)
    """QA files whose answers' phrasings are learned too (beyond `train_csv`'s): the served encoder learns the
    phrasings of every served answer, the test split's included; only the fresh evaluation set then measures it."""


class PairCollator:
    """A batch of question rows -> its questions, the batch's distinct answers and each question's answer."""

    def __init__(self, pairs: Pairs) -> None:
        self.pairs = pairs

    def __call__(self, rows: list[int]) -> dict[str, Any]:
        distinct = list(dict.fromkeys(self.pairs.target[i] for i in rows))  # a shared answer is not a negative
        return {
            "questions": [self.pairs.questions[i] for i in rows],
            "answers": [self.pairs.answers[j] for j in distinct],
            "target": torch.tensor([distinct.index(self.pairs.target[i]) for i in rows]),
        }


class InBatchContrastive(torch.nn.Module):
    """The encoder with its loss, for the Trainer: each question's cross-entropy over the batch's answers."""

    def __init__(self, encoder: torch.nn.Module, tokenizer: Any, scale: float, max_length: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.scale = scale
        self.max_length = max_length

    def forward(self, questions: list[str], answers: list[str], target: torch.Tensor) -> dict[str, torch.Tensor]:
        q = encode(self.encoder, self.tokenizer, questions, self.max_length)
        a = encode(self.encoder, self.tokenizer, answers, self.max_length)
        loss = torch.nn.functional.cross_entropy(self.scale * q @ a.T, target)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()}: lower the learning rate")
        return {"loss": loss}


def training_args(config: EmbedderConfig, output_dir: str) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=config.warmup_ratio,  # below 1: a share of the steps
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        optim="adamw_torch",
        logging_steps=1,  # the loss of every step goes into the manifest and the report's plot
        save_strategy="no",  # the adapter is written once, by the caller, atomically
        eval_strategy="no",
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=True,  # `encode` tokenizes on the CPU; a 22M-parameter encoder trains there in minutes
        report_to="none",
        dataloader_num_workers=0,
        remove_unused_columns=False,  # the collator's texts are not the wrapper's tensor arguments
        disable_tqdm=False,
    )


def fit(config: EmbedderConfig, pairs: Pairs, rows: list[int]) -> tuple[Embedder, list[float]]:
    """LoRA-tune the base on the question rows `rows`; returns the encoder (adapter unmerged) and loss per step."""
    from peft import LoraConfig, get_peft_model
    from transformers import ProgressCallback, Trainer, set_seed

    set_seed(config.seed)  # the adapter's initial weights
    embedder = Embedder(config.base)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_targets,
    )
    model = InBatchContrastive(
        get_peft_model(embedder.model, lora), embedder.tokenizer, config.scale, config.max_length
    )
    with tempfile.TemporaryDirectory(prefix="embedder-") as scratch:
        trainer = Trainer(
            model=model, args=training_args(config, scratch), train_dataset=rows, data_collator=PairCollator(pairs)
        )
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(_bar_only())
        trainer.train()
    losses = [round(h["loss"], 4) for h in trainer.state.log_history if "loss" in h]
    embedder.model = model.encoder.eval()
    embedder.identity += "+unsaved"  # its vectors are not the base's: never share the base's cached ones
    return embedder, losses


def _bar_only() -> type:
    from transformers import ProgressCallback

    class BarOnly(ProgressCallback):
        """The progress bar without a line per log: those go to stdout, where the step prints its results."""

        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
            pass

    return BarOnly
