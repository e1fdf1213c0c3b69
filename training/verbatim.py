"""Choose when the kiosk gives a verified answer as written instead of letting the model reword it.

    python -m training.verbatim [--held-out 0.2] [--limit 400]

The phrasings held out of the matchers (`training.qa.held_out`, the ones `training.thresholds` uses; never
trained on) are asked of the served pipeline (`Kiosk.ask`: gate, curated answers, ranker, the model), built as
served from everything else, twice: once with the model writing every English or French answer from the best
verified answers and the retrieved sentences (`verbatim_from` 1), once with the best verified answer given as
written (`verbatim_from` 0). An answer is right when it states at least half the numbers and names of the
phrasing's own answer (as `training.thresholds` scores). Per band of the best verified answer's score, the
report compares the two; the chosen `KIOSK_VERBATIM_FROM` is the lowest band edge from which the written answer
is right at least as often in every band above. Written to `reports/verbatim.md`; the fresh set is never read.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import random
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from app.artifacts import atomic_write_text
from app.kiosk.pipeline import Kiosk, Services
from app.kiosk.services import load_services
from app.kiosk.verified import Phrasing, read_phrasings
from app.settings import Settings
from app.text import strip_accents
from training.metrics import same_facts
from training.qa import PLAIN_VI, held_out

log = logging.getLogger(__name__)
BANDS = (0.0, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7)
DECLINED = ("off_topic", "clarify")


@dataclass(frozen=True)
class Asked:
    language: str
    score: float  # the best verified answer's score for the question (its ranking as served)
    route: str
    right: bool
    declined: bool


def write_kept(phrasings: list[Phrasing], folder: Path) -> Path:
    """The phrasings the matchers may know, as a phrasings folder of one CSV file."""
    with (folder / "kept.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["answer", "language", "question"])
        writer.writerows([p.answer, p.language, p.question] for p in phrasings)
    return folder


def tested_phrasings(
    settings: Settings, share: float, limit: int | None, seed: int = 0
) -> tuple[list[Phrasing], list[Phrasing]]:
    """(kept, tested): the held-out phrasings (a seeded sample of `limit`), Vietnamese ones also typed plain."""
    phrasings = read_phrasings(settings.phrasings_dir)
    kept = [p for p in phrasings if not held_out(p.question, share)]
    tested = [p for p in phrasings if held_out(p.question, share)]
    random.Random(seed).shuffle(tested)
    tested = tested[:limit]
    plain = [Phrasing(p.answer, PLAIN_VI, strip_accents(p.question)) for p in tested if p.language == "vi"]
    return kept, tested + [p for p in plain if p.question not in {t.question for t in tested}]


async def ask_all(kiosk: Kiosk, tested: list[Phrasing]) -> list[Asked]:
    s: Services = kiosk.s
    out = []
    for p in tested:
        a = await kiosk.ask(p.question)
        reference = s.vietnamese.get(p.answer, p.answer) if a.language == "vi" else p.answer
        query = s.restore(p.question) if a.language == "vi" else p.question
        ranked = s.retriever.answers.ranked(query, 1) if s.retriever.answers is not None else []
        declined = a.route in DECLINED
        right = not declined and (same_facts(reference, a.answer) or same_facts(p.answer, a.answer))
        out.append(Asked(p.language, ranked[0][1] if ranked else 0.0, a.route, right, declined))
    return out


def choose(model: list[Asked], written: list[Asked]) -> float:
    """The lowest band edge from which, in every band above that holds questions, the written answer is right at
    least as often (1.0: the model is better in the top band)."""
    chosen = 1.0
    for lo in reversed(BANDS):
        band = [(m, w) for m, w in zip(model, written, strict=True) if lo <= m.score < _next(lo)]
        if not band:  # no evidence either way
            continue
        if sum(w.right - m.right for m, w in band) < 0:
            break
        chosen = lo
    return chosen


def _next(lo: float) -> float:
    i = BANDS.index(lo)
    return BANDS[i + 1] if i + 1 < len(BANDS) else 2.0


def _shares(rows: list[Asked]) -> str:
    n = max(len(rows), 1)
    right, declined = sum(r.right for r in rows), sum(r.declined for r in rows)
    return f"{right / n:.3f} | {(n - right - declined) / n:.3f} | {declined / n:.3f}"


def report(model: list[Asked], written: list[Asked], chosen: float) -> str:
    lines = [
        f"# Verified answers as written, or reworded by the model (`python -m training.verbatim`, {len(model)} "
        "held-out phrasings)",
        "",
        "Each phrasing asked of the served pipeline twice: the model writing English and French answers from the "
        "best verified answers and the retrieved sentences (`KIOSK_VERBATIM_FROM=1`), and the best verified answer "
        "given as written (`0`). Vietnamese questions get verified text either way. Right: at least half the "
        "numbers and names of the phrasing's own answer.",
        "",
        "| language | n | right (model) | wrong (model) | declined | right (as written) | wrong (as written) "
        "| declined |",
        "|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, m in enumerate(model):
        groups[m.language].append(i)
        groups["all"].append(i)
    for lang in ["all", *sorted(k for k in groups if k != "all")]:
        idx = groups[lang]
        lines.append(
            f"| {lang} | {len(idx)} | {_shares([model[i] for i in idx])} | {_shares([written[i] for i in idx])} |"
        )
    lines += [
        "",
        "Answers the model wrote (English and French), by the best verified answer's score: right when the model "
        "wrote it, and right when that verified answer was given as written instead.",
        "",
        "| score from | written by the model | right (model) | right (as written) |",
        "|---|---|---|---|",
    ]
    for lo in BANDS:
        band = zip(model, written, strict=True)
        pairs = [(m, w) for m, w in band if lo <= m.score < _next(lo) and m.route == "generated"]
        lines.append(f"| {lo} | {len(pairs)} | {sum(m.right for m, _ in pairs)} | {sum(w.right for _, w in pairs)} |")
    measured = [lo for lo in BANDS if any(lo <= m.score < _next(lo) and m.route == "generated" for m in model)]
    lines += ["", f"Chosen: `KIOSK_VERBATIM_FROM={chosen}`."]
    if measured and chosen < measured[0]:
        lines[-1] += (
            f" Measured from {measured[0]} on: below it the model answered none of these questions (they were asked "
            "back), so nothing here speaks for or against it there; follow-ups, asked back a little lower, were "
            "right more often as written on the validation conversations."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--held-out", type=float, default=0.2)
    parser.add_argument("--limit", type=int, default=400, help="held-out phrasings asked (a seeded sample)")
    parser.add_argument("--out", type=Path, default=Path("reports/verbatim.md"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    base = Settings(_env_file=None, request_timeout_s=600)
    kept, tested = tested_phrasings(base, args.held_out, args.limit)
    with tempfile.TemporaryDirectory() as folder:
        settings = base.model_copy(update={"phrasings_dir": write_kept(kept, Path(folder))})
        services = load_services(settings)
        try:
            kiosk = Kiosk(services)
            runs = []
            for verbatim_from in (1.0, 0.0):
                services.verbatim_from = verbatim_from
                runs.append(asyncio.run(ask_all(kiosk, tested)))
                log.info("verbatim_from %s: %d asked", verbatim_from, len(runs[-1]))
        finally:
            if services.worker is not None:
                services.worker.stop()
    model, written = runs
    chosen = choose(model, written)
    text = report(model, written, chosen)
    atomic_write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
