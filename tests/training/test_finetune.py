"""The training loop on a tiny model built here: answer-only loss, early stopping on a plateau, resume."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from app.artifacts import input_hashes
from app.generation.local import verify_adapter
from training import qa
from training.finetune import context_encoder_files, run
from training.finetune_config import FinetuneConfig
from training.sft_data import IGNORE, PadCollator, TokenizedDataset, answer_only_loss

ROOT = Path(__file__).resolve().parents[2]


def _tiny_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted(
        {w for p in qa.read_pairs(qa.TRAIN_CSV)[:200] for w in (p.question + " " + p.answer).lower().split()}
    )
    vocab = {t: i for i, t in enumerate(["<unk>", "<pad>", "</s>", "<human>:", "<assistant>:", "<sources>:", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = _tiny_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _config(tiny_base: Path, tmp_path: Path, **kw) -> FinetuneConfig:
    base = FinetuneConfig(
        base_model=str(tiny_base),
        lora_r=4,
        lora_alpha=8,
        lora_targets=["q_proj", "v_proj"],
        freeze_layers=1,
        retrieval=False,
        max_length=96,
        batch_size=8,
        learning_rate=1e-2,
        eval_share=0.05,
        eval_steps=2,
        early_stopping_patience=2,
        save_total_limit=2,
        output_dir=tmp_path / "ckpt",
        out_dir=tmp_path / "adapter",
        max_steps=6,
        device="cpu",
    )
    return dataclasses.replace(base, **kw)


def test_answer_only_loss_equals_the_full_causal_lm_loss(tiny_base):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_base).eval()
    batch = [
        {"input_ids": [5, 6, 7, 8, 9, 10], "labels": [IGNORE] * 4 + [9, 10]},
        {"input_ids": [5, 6, 7, 11, 12, 13, 14, 15], "labels": [IGNORE] * 5 + [13, 14, 15]},
    ]
    loss, _ = answer_only_loss(model, PadCollator(1)(batch))
    total, count = 0.0, 0
    for x in batch:
        out = model(input_ids=torch.tensor([x["input_ids"]]), labels=torch.tensor([x["labels"]]))
        n = sum(label != IGNORE for label in x["labels"][1:])
        total, count = total + float(out.loss) * n, count + n
    assert float(loss) == pytest.approx(total / count, rel=1e-5)


def test_prompt_tokens_are_masked_and_the_answer_ends_with_eos(tiny_base):
    from transformers import AutoTokenizer

    from training.sft_data import SFTExample

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    ds = TokenizedDataset(
        [SFTExample("<human>: when was he born\n<assistant>:", "he was born in 1890.", ())], tokenizer, 64
    )
    item = ds[0]
    answer = [t for t in item["labels"] if t != IGNORE]
    assert answer[-1] == tokenizer.eos_token_id
    assert len(answer) == len(tokenizer(" he was born in 1890.", add_special_tokens=False)["input_ids"]) + 1
    assert item["labels"][: len(item["labels"]) - len(answer)] == [IGNORE] * (len(item["labels"]) - len(answer))


def test_early_stopping_fires_on_a_plateau(tiny_base, tmp_path):
    # learning rate 0: the evaluation loss cannot improve, so training must stop after `patience` evaluations
    manifest = run(_config(tiny_base, tmp_path, learning_rate=0.0, max_steps=40, early_stopping_patience=2))
    metrics = manifest["metrics"]
    assert metrics["stopped_early"] is True
    assert metrics["evaluations"] <= 2 + 1
    assert metrics["global_step"] < 40 and metrics["best_eval_loss"] is not None


def test_adapter_is_written_whole_with_its_manifest(tiny_base, tmp_path):
    manifest = run(_config(tiny_base, tmp_path))
    out = tmp_path / "adapter"
    assert verify_adapter(out)["base_model"]["name"] == str(tiny_base)
    assert manifest["config"]["lora_r"] == 4 and manifest["metrics"]["evaluations"] >= 1
    assert manifest["inputs"] == input_hashes([qa.TRAIN_CSV, Path("data/corpus.jsonl")])["inputs"]
    history = json.loads((out / "log_history.json").read_text())
    assert any("eval_loss" in h for h in history) and any("loss" in h for h in history)
    assert not list(tmp_path.glob(".adapter.*")), "no temporary folder may be left behind"
    assert len(list((tmp_path / "ckpt").glob("checkpoint-*"))) <= 2  # save_total_limit


def test_the_fine_tuned_context_encoders_are_inputs_of_the_adapter():
    folds = "models/embedder/minilm-hcm-folds"
    files = context_encoder_files(FinetuneConfig(context_embedder=folds))
    assert [f.as_posix() for f in files] == [
        f"{folds}/fold-{k}/{name}" for k in range(5) for name in ("adapter_config.json", "adapter_model.safetensors")
    ]
    assert context_encoder_files(FinetuneConfig(context_embedder="models/embedder/minilm-hcm")) == [
        Path("models/embedder/minilm-hcm/adapter_config.json"),
        Path("models/embedder/minilm-hcm/adapter_model.safetensors"),
    ]
    assert context_encoder_files(FinetuneConfig(context_embedder="packaged:minilm")) == []  # a base: identified apart
    assert context_encoder_files(FinetuneConfig(context_embedder=folds, retrieval=False)) == []


def test_resume_after_a_crash_finishes_the_run(tiny_base, tmp_path):
    run(_config(tiny_base, tmp_path, max_steps=4, learning_rate=1e-3))  # stands for a run killed at step 4
    manifest = run(_config(tiny_base, tmp_path, max_steps=8, learning_rate=1e-3), resume=True)
    history = json.loads((tmp_path / "adapter" / "log_history.json").read_text())
    assert manifest["metrics"]["global_step"] == 8
    assert min(h["step"] for h in history if "loss" in h) <= 4  # the earlier steps' logs came with the checkpoint


def test_the_config_presets_load():
    from training.config import load_config
    from training.embedder_training import EmbedderConfig

    for preset in (ROOT / "training/configs").glob("*.yaml"):
        if preset.name.startswith("minilm-hcm"):  # the sentence encoder's presets (fold encoders', served)
            encoder = load_config(EmbedderConfig, preset)
            assert encoder.lora_targets and encoder.epochs > 0
        elif preset.name != "gate.yaml":
            config = load_config(FinetuneConfig, preset)
            assert config.lora_targets and config.eval_steps > 0
    falcon = load_config(FinetuneConfig, ROOT / "training/configs/falcon-7b-qlora.yaml")
    assert (falcon.lora_r, falcon.lora_alpha, falcon.lora_dropout, falcon.freeze_layers) == (64, 16, 0.1, 16)
    assert falcon.quantize_4bit and falcon.optim == "paged_adamw_32bit"
