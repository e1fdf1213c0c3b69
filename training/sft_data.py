"""Supervised examples for the adapter: the serving prompt (with retrieved sources) and the answer.

Loss is on the answer and the end-of-answer token only. Contexts for training questions come from a
retriever whose document expansion leaves out the question's own fold, so training sees retrieval as
good as serving sees it for a new question, not better.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from app.artifacts import ArtifactError, input_name, sha256_file
from app.kiosk.corpus import Passage
from app.kiosk.embeddings import Embedder, get_embedder, tuned_manifest
from app.kiosk.grounding import ground
from app.kiosk.retriever import Context, Retriever
from app.kiosk.verified import VerifiedPair
from training.finetune_config import FinetuneConfig
from training.qa import QAPair

IGNORE = -100
FOLDS = 5
"""Training questions are split in this many folds (by hash): retrieval hints and fold encoders leave one out."""


@dataclass(frozen=True)
class SFTExample:
    prompt: str
    answer: str
    source_ids: tuple[str, ...]
    context: Context = field(default_factory=lambda: Context([], [], []))


def fold_of(question: str, folds: int) -> int:
    return int(hashlib.sha256(question.encode()).hexdigest()[:8], 16) % folds


def fold_embedders(folder: Path, train_csv: Path, folds: int) -> list[Embedder]:
    """The encoders of `python -m training.embedder folds`: fold K's never saw fold K's questions.

    Each is checked to hold out its own fold of `folds`, and to come from `train_csv` as it is now.
    """
    name, data = input_name(train_csv), sha256_file(train_csv)
    paths = []
    for fold in range(folds):  # all checked before any is loaded
        path = folder / f"fold-{fold}"
        manifest = tuned_manifest(str(path))
        if manifest is None:
            raise ArtifactError(f"{path} is missing: make it with python -m training.embedder folds")
        if (manifest.get("holdout_fold"), manifest.get("folds")) != (fold, folds):
            raise ArtifactError(f"{path} did not hold out fold {fold} of {folds}: rebuild the folds")
        if manifest.get("inputs", {}).get(name) != data:
            raise ArtifactError(f"{path} was trained on other data than {train_csv} holds now: rebuild the folds")
        paths.append(path)
    return [get_embedder(str(path)) for path in paths]


def split_for_eval(pairs: list[QAPair], share: float) -> tuple[list[QAPair], list[QAPair]]:
    """(training pairs, evaluation-loss pairs): the adapter's validation split, drawn by question hash."""
    buckets = 1000
    held = [p for p in pairs if fold_of("eval" + p.question, buckets) < share * buckets]
    return [p for p in pairs if p not in held], held


def context_embedders(config: FinetuneConfig, folds: int = FOLDS) -> list[Embedder | None]:
    """One encoder per fold for the training prompts (the same one in every fold for a base encoder)."""
    name = config.context_embedder
    if not (config.retrieval and name):
        return []
    if (Path(name) / "fold-0").is_dir():
        return list(fold_embedders(Path(name), config.train_csv, folds))
    return [get_embedder(name)] * folds


def make_examples(
    pairs: list[QAPair],
    passages: list[Passage],
    retrieval: bool,
    folds: int = FOLDS,
    hint_pairs: list[QAPair] | None = None,
    embedders: Sequence[Embedder | None] = (),
    **retriever_kw: Any,
) -> list[SFTExample]:
    """Prompts for `pairs`; a pair's context is retrieved with hints from the other folds of `hint_pairs`.

    `embedders`, one per fold, rank verified answers for that fold's questions (see `fold_embedders`).
    """
    hint_pairs = pairs if hint_pairs is None else hint_pairs
    retrievers: dict[int, Retriever] = {}
    examples = []
    for pair in pairs:
        retriever = None
        if retrieval:
            k = fold_of(pair.question, folds)
            if k not in retrievers:
                hints = [
                    VerifiedPair(p.question, p.answer, p.source_ids)
                    for p in hint_pairs
                    if fold_of(p.question, folds) != k
                ]
                if embedders:
                    retriever_kw["embedder"] = embedders[k]
                retrievers[k] = Retriever(passages, hints, **retriever_kw)
            retriever = retrievers[k]
        grounded = ground(pair.question, retriever)
        examples.append(SFTExample(grounded.prompt, pair.answer, pair.source_ids, grounded.context))
    return examples


class TokenizedDataset(torch.utils.data.Dataset):
    """input_ids = prompt + " " + answer + eos; labels mask the prompt."""

    def __init__(self, examples: list[SFTExample], tokenizer: Any, max_length: int) -> None:
        self.items = []
        eos = tokenizer.eos_token_id
        for ex in examples:
            prompt_ids = tokenizer(ex.prompt, add_special_tokens=False)["input_ids"]
            answer_ids = tokenizer(" " + ex.answer, add_special_tokens=False)["input_ids"] + [eos]
            prompt_ids = prompt_ids[-(max_length - len(answer_ids)) :]  # keep the question; drop old context
            self.items.append({"input_ids": prompt_ids + answer_ids, "labels": [IGNORE] * len(prompt_ids) + answer_ids})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.items[i]

    def lengths(self) -> list[int]:
        return [len(x["input_ids"]) for x in self.items]


class PadCollator:
    """Pads a batch on the left to its longest example (no fixed-length padding).

    Left padding makes every answer end at the last position, so the loss needs logits for the last few
    positions only (`AnswerOnlyLoss`); rotary position embeddings are relative, so the offset is harmless.
    """

    def __init__(self, pad_id: int, width: int | None = None) -> None:
        self.pad_id = pad_id
        self.width = width  # a fixed width pads every batch to it (the student report's way)

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = self.width or max(len(x["input_ids"]) for x in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, x in enumerate(batch):
            n = len(x["input_ids"])
            ids[i, width - n :] = torch.tensor(x["input_ids"])
            labels[i, width - n :] = torch.tensor(x["labels"])
            mask[i, width - n :] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def answer_only_loss(
    model: Any, inputs: dict[str, torch.Tensor], num_items: int | None = None
) -> tuple[torch.Tensor, Any]:
    """Cross-entropy on the answer tokens, computing the vocabulary projection only where it is needed.

    With left padding the answers occupy the last positions; the logits of the other ~75% of positions
    (a [batch, length, vocabulary] tensor, the largest of the step) are never formed.
    """
    labels = inputs["labels"]
    answer = labels != IGNORE
    first = int(answer.float().argmax(dim=1).min()) if answer.any() else labels.shape[1] - 1
    keep = labels.shape[1] - first + 1  # the logit at position t predicts token t + 1
    outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], logits_to_keep=keep)
    logits = outputs.logits[:, :-1, :].float()
    targets = labels[:, labels.shape[1] - keep + 1 :]
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
    count = num_items if num_items is not None else int((targets != IGNORE).sum())
    return loss / max(count, 1), outputs
