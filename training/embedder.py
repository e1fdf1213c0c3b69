"""Fine-tune the sentence encoder that ranks verified answers: a small LoRA adapter on all-MiniLM-L6-v2
(`training.embedder_training`: `transformers.Trainer`, in-batch contrastive loss).

    python -m training.embedder train [--config training/configs/minilm-hcm.yaml] [--holdout-fold K]
    python -m training.embedder folds [--config ...]   # one encoder per fold, for the adapter's training
    python -m training.embedder evaluate [--embedder models/embedder/minilm-hcm]
    python -m training.embedder seed [--embedder models/embedder/minilm-hcm]   # also run by `train`

Visitors ask the museum's known questions in words of their own; 171 of the 181 test questions have an
answer that a training question already has, so which verified answer comes first decides most answers.
`train` writes the adapter (float16, ~1 MB) atomically with `embedder.json`: the base's identity, the
files' hashes, the config, the hashes of every input file and the loss per step. `--holdout-fold K`
instead trains without the training questions of fold K (the folds of `training.sft_data.fold_of`) and
prints how often their answer comes first, before and after: that is how the recipe was chosen, without
the test split.
`folds` writes `<out_dir>-folds/fold-K`, each trained without fold K's questions (see `train_folds`).
`seed` writes the vectors of the verified answers the service reads into the encoder's folder
(`seed_vectors.npz`), so that a first start on a new machine does not encode them (`app.kiosk.embeddings`).
`evaluate` ranks the test questions against the training answers as serving ranks them, with the base
and with the fine-tuned encoder, and writes `reports/embedder.md` and its loss plot.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from app.artifacts import atomic_write_json, folder_hashes, input_hashes, replace_folder, staging_folder
from app.kiosk.corpus import load_corpus
from app.kiosk.embeddings import EMBEDDER_MANIFEST, SEED_VECTORS, Embedder, base_identity, resolve, write_seed
from app.kiosk.retriever import Retriever
from app.kiosk.verified import VerifiedPair, read_phrasings, read_verified
from app.settings import Settings
from training import qa
from training.adapter_files import to_half
from training.answer_ranking import answer_ranks, copying_first, held_out_ranks, top_k
from training.config import load_config, to_dict
from training.embedder_pairs import Pairs, fold_split, read_pairs, with_phrasings
from training.embedder_report import write_report
from training.embedder_training import EmbedderConfig, fit

log = logging.getLogger(__name__)
REPORTS = Path("reports")


def holdout(config: EmbedderConfig, fold: int) -> dict[str, dict[str, float]]:
    """Train without fold `fold`'s questions; rank that fold's questions among all training answers."""
    pairs = read_pairs(config.train_csv)
    kept, held, hints = fold_split(pairs, config.train_csv, config.folds, fold)
    tuned, _ = fit(config, pairs, kept)
    return {
        name: held_out_ranks(config.corpus, pairs, held, hints, embedder)
        for name, embedder in (("base", Embedder(config.base)), ("fine-tuned", tuned))
    }


def phrasing_files(config: EmbedderConfig) -> list[Path]:
    directory = config.phrasings_dir
    return sorted(directory.glob("*.csv")) if directory and directory.is_dir() else []


def input_files(config: EmbedderConfig, config_file: Path | None, folds: bool = False) -> list[Path]:
    """Every file an encoder is trained from; fold encoders' manifests also score their held-out questions
    against the corpus, the served encoder also learns the phrasings. (The base is identified apart.)"""
    extra = [config.corpus] if folds else [*config.phrasings_also_for, *phrasing_files(config)]
    return [config.train_csv, *extra, *([config_file] if config_file else [])]


def training_pairs(config: EmbedderConfig) -> Pairs:
    """The served encoder's pairs: the training questions and the phrasings of their answers, less the
    phrasings `training.thresholds` holds out."""
    pairs = read_pairs(config.train_csv)
    known = set(pairs.answers)
    more = [p.answer for path in config.phrasings_also_for for p in qa.read_pairs(path) if p.answer not in known]
    pairs = Pairs(pairs.questions, pairs.answers + list(dict.fromkeys(more)), pairs.target)
    phrasings = read_phrasings(config.phrasings_dir)
    left_out = {p.question for p in phrasings if qa.held_out(p.question, config.phrasings_held_out)}
    return with_phrasings(pairs, phrasings, left_out)


def save(
    config: EmbedderConfig,
    embedder: Embedder,
    losses: list[float],
    out: Path,
    seconds: float,
    inputs: list[Path],
    **extra: Any,
) -> dict[str, Any]:
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
        kept, held, hints = fold_split(pairs, config.train_csv, config.folds, fold)
        tuned, losses = fit(config, pairs, kept)
        ranks = held_out_ranks(config.corpus, pairs, held, hints, tuned)
        save(
            config,
            tuned,
            losses,
            out / f"fold-{fold}",
            time.monotonic() - start,
            inputs,
            holdout_fold=fold,
            folds=config.folds,
            holdout=ranks,
        )
        results[f"fold-{fold}"] = ranks
        log.info("fold %d of %d: held-out top-1 %.3f (%d questions)", fold, config.folds, ranks["top1"], len(held))
    return results


def train(config: EmbedderConfig, config_file: Path | None = None, with_seed: bool = True) -> dict[str, Any]:
    """Train the served encoder and write it to `out_dir`, with the seed vectors of the served answers."""
    start = time.monotonic()
    pairs = training_pairs(config)
    log.info("training on %d questions and phrasings for %d answers", len(pairs.questions), len(pairs.answers))
    embedder, losses = fit(config, pairs, list(range(len(pairs.questions))))
    manifest = save(
        config, embedder, losses, config.out_dir, time.monotonic() - start, input_files(config, config_file)
    )
    log.info(
        "encoder adapter written to %s in %.0fs (loss %.3f -> %.3f)",
        config.out_dir,
        manifest["train_seconds"],
        losses[0],
        losses[-1],
    )
    if with_seed:
        seed(config.out_dir)
    return manifest


def served_answers() -> list[str]:
    """The distinct verified answers the service embeds at start-up (its default QA files)."""
    return list(dict.fromkeys(p.answer for p in read_verified(Settings(_env_file=None).qa_files)))


def seed(folder: Path) -> int:
    """Write `folder`'s seed vectors: the served answers as the served (merged, half-precision adapter) encoder
    computes them."""
    count = write_seed(folder / SEED_VECTORS, Embedder(str(folder)), served_answers())
    log.info("%d answers' vectors written to %s", count, folder / SEED_VECTORS)
    return count


def evaluate(config: EmbedderConfig, tuned: Path, report: Path) -> dict[str, dict[str, float]]:
    """Rank the test questions among the training answers with the base and with `tuned`; write the report."""
    test = qa.read_pairs(qa.TEST_CSV)
    questions, answers = [p.question for p in test], [p.answer for p in test]
    results = {}
    for name, embedder in (
        ("words only", None),
        ("base MiniLM", Embedder(config.base)),
        ("fine-tuned MiniLM", Embedder(str(tuned))),
    ):
        # every served answer: the training ones with their questions, the test split's without (no test question
        # is indexed); no test answer is a training answer since the split by answer
        unseen = [VerifiedPair("", p.answer, p.source_ids) for p in test]
        retriever = Retriever(load_corpus(config.corpus), read_verified([config.train_csv]) + unseen, embedder=embedder)
        results[name] = top_k(answer_ranks(retriever, questions, answers))
        copied = copying_first(retriever, questions, answers)
        results[name] |= {"copy_bleu": copied.mean_sentence_bleu, "copy_key_fact": copied.key_fact_accuracy}
    manifest = json.loads((tuned / EMBEDDER_MANIFEST).read_text(encoding="utf-8"))
    write_report(results, manifest, report)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["train", "folds", "evaluate", "seed"])
    parser.add_argument("--config", type=Path, help="a YAML preset of EmbedderConfig fields")
    parser.add_argument("--holdout-fold", type=int, help="train: leave this fold's questions out and score them")
    parser.add_argument("--embedder", type=Path, help="evaluate, seed: the fine-tuned folder (default: out_dir)")
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
    elif args.command == "seed":
        seed(args.embedder or config.out_dir)
    else:
        print(json.dumps(evaluate(config, args.embedder or config.out_dir, args.report), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
