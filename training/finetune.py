"""Fine-tune a LoRA adapter (QLoRA on CUDA) that answers from retrieved sources.

    python -m training.finetune --config training/configs/smollm2-135m-lora.yaml
    python -m training.finetune --config training/configs/falcon-7b-qlora.yaml --resume

Evaluation loss every `eval_steps`; early stopping on it; the best checkpoint is kept and becomes the
adapter, written atomically to `out_dir` with its config, metrics, training log and the base's identity.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

from app.artifacts import atomic_write_json, folder_hashes, input_hashes, replace_folder, staging_folder
from app.kiosk.corpus import load_corpus
from app.kiosk.embeddings import tuned_manifest
from app.modeling.base import base_identity, decoder_layers, frozen_layer_count, load_base
from app.modeling.lora import ADAPTER_MANIFEST, lora_config
from app.prompt import HUMAN
from training import qa
from training.adapter_files import to_half
from training.config import load_config, to_dict
from training.finetune_config import FinetuneConfig
from training.sft_data import (
    FOLDS,
    PadCollator,
    TokenizedDataset,
    answer_only_loss,
    context_embedders,
    make_examples,
    split_for_eval,
)

log = logging.getLogger(__name__)


def prepare_model(config: FinetuneConfig) -> tuple[Any, Any]:
    from peft import get_peft_model, prepare_model_for_kbit_training

    model, tokenizer = load_base(config.base_model, quantize_4bit=config.quantize_4bit, targets=config.lora_targets)
    n_layers = len(decoder_layers(model))
    frozen = frozen_layer_count(config.freeze_layers, n_layers)
    if config.quantize_4bit and torch.cuda.is_available():
        # Casts norms to fp32 for stability; no input gradients: nothing below the first adapter needs them.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": config.input_require_grads})
    if config.input_require_grads:
        model.enable_input_require_grads()
    model.config.use_cache = False
    peft_config = lora_config(
        config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_targets, layers=range(frozen, n_layers)
    )
    model = get_peft_model(model, peft_config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("layers %d, frozen %d, trainable parameters %d", n_layers, frozen, trainable)
    return model, tokenizer


def training_args(config: FinetuneConfig) -> Any:
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available() and config.device == "auto"
    fields = TrainingArguments.__dataclass_fields__
    # transformers 5.2x replaced `group_by_length` with `train_sampling_strategy`; the GPU image has 5.17.
    if "train_sampling_strategy" in fields:
        strategy = "group_by_length" if config.group_by_length else "random"
        sampling: dict[str, Any] = {"train_sampling_strategy": strategy}
    else:
        sampling = {"group_by_length": config.group_by_length}
    return TrainingArguments(
        output_dir=str(config.output_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        optim=config.optim if cuda else config.optim.replace("paged_", "").replace("_32bit", "_torch"),
        eval_strategy="steps",
        eval_steps=config.eval_steps,
        save_strategy="steps",  # must match eval_strategy for load_best_model_at_end
        save_steps=config.eval_steps,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        label_names=["labels"],  # without it a PEFT model yields no eval_loss and early stopping disables itself
        restore_callback_states_from_checkpoint=True,  # keeps the patience counter across --resume
        logging_steps=max(1, config.eval_steps // 5),
        seed=config.seed,
        data_seed=config.seed,
        bf16=config.bf16 if config.bf16 is not None else cuda,
        use_cpu=not cuda,
        **sampling,
        report_to="none",
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=False,
    )


def trainer_class(answer_only_logits: bool = True) -> type:
    from transformers import Trainer

    if not answer_only_logits:
        return Trainer

    class AnswerOnlyTrainer(Trainer):
        """Trainer whose loss forms logits only for answer positions (see `answer_only_loss`)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[no-untyped-def]
            n = int(num_items_in_batch) if num_items_in_batch is not None else None
            loss, outputs = answer_only_loss(model, inputs, n)
            return (loss, outputs) if return_outputs else loss

    return AnswerOnlyTrainer


def context_encoder_files(config: FinetuneConfig, folds: int = FOLDS) -> list[Path]:
    """The weights and adapter configs of the fine-tuned encoders `context_embedders` loads (none for a base).

    Their files, not their manifests: what the adapter learnt from is the encoders themselves.
    """
    if not (config.retrieval and config.context_embedder):
        return []
    folder = Path(config.context_embedder)
    files: list[Path] = []
    for path in [folder / f"fold-{k}" for k in range(folds)] if (folder / "fold-0").is_dir() else [folder]:
        manifest = tuned_manifest(str(path))
        files += [path / name for name in sorted(manifest["files"])] if manifest else []
    return files


def input_files(config: FinetuneConfig, config_file: Path | None) -> list[Path]:
    """Every file in the repository the adapter is trained from (the base model is identified apart)."""
    return [config.train_csv, config.corpus, *context_encoder_files(config), *([config_file] if config_file else [])]


def build_trainer(config: FinetuneConfig, model: Any, tokenizer: Any) -> Any:
    from transformers import EarlyStoppingCallback

    passages = load_corpus(config.corpus)
    pairs = qa.read_pairs(config.train_csv)
    train_pairs, eval_pairs = split_for_eval(pairs, config.eval_share)
    embedders = context_embedders(config)
    train_examples = make_examples(train_pairs, passages, config.retrieval, hint_pairs=pairs, embedders=embedders)
    eval_examples = make_examples(eval_pairs, passages, config.retrieval, hint_pairs=pairs, embedders=embedders)
    pad = config.max_length if config.pad_to_max_length else None
    train_set = TokenizedDataset(train_examples, tokenizer, config.max_length)
    eval_set = TokenizedDataset(eval_examples, tokenizer, config.max_length)
    lengths = train_set.lengths()
    log.info(
        "%d training and %d evaluation examples; %d tokens per epoch (mean %.0f)",
        len(train_set),
        len(eval_set),
        sum(lengths),
        sum(lengths) / max(len(lengths), 1),
    )
    callback = EarlyStoppingCallback(config.early_stopping_patience, config.early_stopping_threshold)
    return trainer_class(config.answer_only_logits)(
        model=model,
        args=training_args(config),
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=PadCollator(tokenizer.pad_token_id, width=pad),
        callbacks=[callback],
    )


def write_adapter(
    config: FinetuneConfig, trainer: Any, tokenizer: Any, seconds: float, config_file: Path | None = None
) -> dict[str, Any]:
    """Save the best adapter next to its final place, then swap it in whole."""
    out = config.out_dir
    tmp = staging_folder(out)
    trainer.model.save_pretrained(tmp)
    to_half(tmp / "adapter_model.safetensors")
    history = trainer.state.log_history
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    metrics = {
        "best_eval_loss": trainer.state.best_metric,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "evaluations": len(evals),
        "global_step": trainer.state.global_step,
        "epochs_run": trainer.state.epoch,
        "stopped_early": trainer.state.global_step < trainer.state.max_steps,
        "train_seconds": round(seconds, 1),
    }
    (tmp / "log_history.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
    manifest = {
        "base_model": base_identity(config.base_model),
        "config": to_dict(config),
        "metrics": metrics,
        "prompt_format": f"{HUMAN} … / <assistant>: …, end-of-answer token {tokenizer.eos_token!r}",
        **input_hashes(input_files(config, config_file)),
        "files": folder_hashes(tmp),  # before the manifest itself is written
        "versions": _versions(),
    }
    atomic_write_json(tmp / ADAPTER_MANIFEST, manifest)
    replace_folder(tmp, out)
    return manifest


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "transformers", "peft")}


def run(config: FinetuneConfig, resume: bool = False, config_file: Path | None = None) -> dict[str, Any]:
    from transformers import set_seed

    set_seed(config.seed)
    if config.device == "cpu" or not torch.cuda.is_available():
        log.info("training on the CPU (%d threads)", torch.get_num_threads())
    model, tokenizer = prepare_model(config)
    trainer = build_trainer(config, model, tokenizer)
    has_checkpoint = any(config.output_dir.glob("checkpoint-*"))
    start = time.monotonic()
    trainer.train(resume_from_checkpoint=True if resume and has_checkpoint else None)
    manifest = write_adapter(config, trainer, tokenizer, time.monotonic() - start, config_file)
    log.info("adapter written to %s: %s", config.out_dir, manifest["metrics"])
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in output_dir")
    parser.add_argument("--max-steps", type=int, help="override the config's max_steps")
    parser.add_argument("--out-dir", type=Path, help="override the config's out_dir (where the adapter goes)")
    parser.add_argument("--base-model", help="override the config's base_model (hub id or folder)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(
        FinetuneConfig, args.config, max_steps=args.max_steps, out_dir=args.out_dir, base_model=args.base_model
    )
    run(config, resume=args.resume, config_file=args.config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
