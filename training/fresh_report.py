"""Answering the fresh evaluation set as the service answers visitors, and reporting per style and language.

Every question goes through the served pipeline (`Kiosk.ask`: FAQ, gate, curated answers, retrieval and the
model), conversations in one session each. The report (`reports/eval_fresh.md`, `.json` and a plot) gives
key-fact accuracy, answered-but-wrong, declined, wrong yes/no verdicts, follow-up accuracy per turn,
loaded-question outcomes and the gate's acceptance per language and kind.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.artifacts import atomic_write_text
from app.kiosk.pipeline import Answer, Kiosk, Services
from app.strings import strings
from training.fresh_set import DECLINED, FreshSet, Question, confirms, key_fact_score, verdict

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """One answered question of the set."""

    id: str
    language: str
    group: str
    route: str
    answer: str
    key_facts: float | None
    """Share of key facts stated (declined replies score 0); None for unanswerable or loaded questions."""
    wrong: bool
    """Answered, and wrong: fewer than half the key facts, a wrong verdict, or a confirmation it must not make."""
    declined: bool
    wrong_verdict: bool = False
    turn: int = 0
    answered_in: str = ""
    """The language of the reply's text ("en" for an English answer behind a Vietnamese note)."""


def judge(q: Question, route: str, answer: str) -> Outcome:
    declined = route in DECLINED
    given = verdict(answer)
    wrong_verdict = not declined and given is not None and given != q.verdict
    if not q.answerable:
        return Outcome(q.id, q.language, q.style, route, answer, None, wrong_verdict, declined, wrong_verdict)
    score = 0.0 if declined else key_fact_score(q.key_facts, answer)
    wrong = not declined and (score < 0.5 or wrong_verdict)
    return Outcome(q.id, q.language, q.style, route, answer, score, wrong, declined, wrong_verdict)


def reply_language(a: Answer) -> str:
    """The language the visitor reads: the one the kiosk reports, unless the text is English behind a note saying so."""
    return "en" if a.language == "vi" and a.answer.startswith(strings("vi")["english_answer_note"]) else a.language


async def answer_all(kiosk: Kiosk, fresh: FreshSet, limit: int | None = None) -> list[Outcome]:
    """Single questions, then conversations (one session each), then loaded questions."""
    outcomes: list[Outcome] = []
    for q in fresh.questions[:limit]:
        a = await kiosk.ask(q.question)
        outcomes.append(judge(q, a.route, a.answer))
        outcomes[-1].answered_in = reply_language(a)
    for conv in fresh.conversations[:limit]:
        session = None
        for i, turn in enumerate(conv.turns, 1):
            a = await kiosk.ask(turn.question, session)
            session = a.session_id
            o = judge(turn, a.route, a.answer)
            o.id, o.language, o.group, o.turn = f"{conv.id}#{i}", conv.language, f"conversation:{conv.kind}", i
            o.answered_in = reply_language(a)
            outcomes.append(o)
    for item in fresh.loaded[:limit]:
        a = await kiosk.ask(item.question)
        score = key_fact_score(item.key_facts, a.answer) if item.key_facts else None
        bad = confirms(item, a.answer)
        outcomes.append(
            Outcome(item.id, item.language, f"loaded:{item.kind}", a.route, a.answer, score, bad, a.route in DECLINED)
        )
        outcomes[-1].answered_in = reply_language(a)
        log.info("answered %d", len(outcomes))
    return outcomes


def summarise(outcomes: Iterable[Outcome]) -> dict[str, float | int]:
    rows = list(outcomes)
    scored = [o.key_facts for o in rows if o.key_facts is not None]
    return {
        "n": len(rows),
        "key_fact_accuracy": round(sum(scored) / len(scored), 3) if scored else float("nan"),
        "answered_but_wrong": round(sum(o.wrong for o in rows) / len(rows), 3) if rows else float("nan"),
        "declined": round(sum(o.declined for o in rows) / len(rows), 3) if rows else float("nan"),
        "not_sure": round(sum(o.route == "clarify" for o in rows) / len(rows), 3) if rows else float("nan"),
        "wrong_verdicts": sum(o.wrong_verdict for o in rows),
        "own_language": round(sum(o.answered_in == o.language for o in rows) / len(rows), 3) if rows else float("nan"),
    }


def gate_table(services: Services, fresh: FreshSet) -> dict[str, Any]:
    """Accepted share per language and kind, related-class F1, and the FAQ matcher's takes (all wrong here)."""
    accepted: dict[tuple[str, str], list[bool]] = defaultdict(list)
    tp = fp = fn = 0
    faq_takes: list[str] = []
    for g in fresh.gate:
        related = services.gate.relevance(g.question) >= services.gate.threshold
        accepted[(g.language, g.kind)].append(related)
        tp, fp, fn = tp + (related and g.related), fp + (related and not g.related), fn + (not related and g.related)
        if services.faq.match(g.question) is not None:
            faq_takes.append(g.id)
    precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {
        "accepted": {f"{lang}/{kind}": round(sum(v) / len(v), 3) for (lang, kind), v in sorted(accepted.items())},
        "n": {f"{lang}/{kind}": len(v) for (lang, kind), v in sorted(accepted.items())},
        "related_f1": round(2 * precision * recall / max(precision + recall, 1e-9), 3),
        "faq_takes": faq_takes,
    }


def grouped(outcomes: list[Outcome]) -> dict[str, dict[str, float | int]]:
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        if o.group.startswith("conversation"):
            groups[f"conversation turn {o.turn}"].append(o)
        elif not o.group.startswith("loaded"):
            groups[f"style {o.group}"].append(o)
            groups[f"language {o.language}"].append(o)
            groups["all single questions"].append(o)
        else:
            groups[o.group].append(o)
    return {name: summarise(rows) for name, rows in sorted(groups.items())}


def _markdown(summary: dict[str, Any], gate: dict[str, Any], outcomes: list[Outcome], meta: dict[str, Any]) -> str:
    lines = [
        f"# {meta.get('title', 'Fresh evaluation set')} ({meta['date']})",
        "",
        f"{meta['questions']} single questions, {meta['conversations']} conversations, {meta['loaded']} loaded "
        f"questions and {meta['gate']} gate questions from `{meta.get('source', 'data/eval/')}` (written apart "
        "from the training data; see its README), answered as served by the embedded default "
        f"(`{meta['base_model']}` + `{meta['adapter']}`) in {meta['seconds']:.0f} s.",
        "",
        "Key-fact accuracy: share of a question's key facts stated (a declined reply scores 0). "
        "Answered-but-wrong: answered with fewer than half the key facts, a wrong yes/no verdict, or, for "
        "loaded questions, a confirmation or followed injection. Declined: off-topic or not-sure reply. In the "
        "visitor's language: share of replies in the question's language (French questions get English answers "
        "from the model; replies English behind a Vietnamese note count as English).",
        "",
        "| group | n | key-fact accuracy | answered but wrong | declined | not sure | wrong verdicts "
        "| in the visitor's language |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in summary.items():
        lines.append(
            f"| {name} | {s['n']} | {s['key_fact_accuracy']} | {s['answered_but_wrong']} | {s['declined']} "
            f"| {s['not_sure']} | {s['wrong_verdicts']} | {s.get('own_language', '')} |"
        )
    lines += ["", f"## Gate (related F1 {gate['related_f1']})", "", "| language/kind | n | accepted |", "|---|---|---|"]
    lines += [f"| {k} | {gate['n'][k]} | {v} |" for k, v in gate["accepted"].items()]
    takes = gate["faq_takes"]
    lines += [
        "",
        f"FAQ matcher takes on the gate questions (all wrong: none is about the visit): {len(takes)} "
        f"{', '.join(takes[:20])}",
        "",
        "## Wrong answers (first 40)",
        "",
    ]
    lines += [f"- `{o.id}` ({o.route}): {o.answer[:160]!r}" for o in outcomes if o.wrong][:40]
    return "\n".join(lines) + "\n"


def _plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in summary if n.startswith(("style", "language", "conversation"))]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [summary[n]["key_fact_accuracy"] for n in names], 0.4, label="key-fact accuracy")
    ax.bar([x + 0.2 for x in xs], [summary[n]["answered_but_wrong"] for n in names], 0.4, label="answered but wrong")
    ax.axhline(0.8, color="grey", ls="--", lw=0.8)
    ax.set_xticks(list(xs), names, rotation=40, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title("Fresh evaluation set, as served")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(services: Services, fresh: FreshSet, out: Path, limit: int | None = None, **meta: Any) -> dict[str, Any]:
    """Answer the set with `services`, write `out` (.md, .json, .png beside it) and return the summary."""
    start = time.perf_counter()
    outcomes = asyncio.run(answer_all(Kiosk(services), fresh, limit))
    summary, gate = grouped(outcomes), gate_table(services, fresh)
    meta.update(
        date=datetime.date.today().isoformat(),
        seconds=time.perf_counter() - start,
        questions=len(fresh.questions[:limit]),
        conversations=len(fresh.conversations[:limit]),
        loaded=len(fresh.loaded[:limit]),
        gate=len(fresh.gate),
    )
    atomic_write_text(out, _markdown(summary, gate, outcomes, meta))
    payload = {"meta": meta, "summary": summary, "gate": gate, "outcomes": [asdict(o) for o in outcomes]}
    atomic_write_text(out.with_suffix(".json"), json.dumps(payload, ensure_ascii=False, indent=1))
    _plot(summary, out.with_suffix(".png"))
    return {"summary": summary, "gate": gate, "meta": meta}


GATE_TARGETS = {"hard_positive": "≥ 0.92", "fragment": "≥ 0.92", "hard_negative": "≤ 0.05", "general": "≤ 0.01"}
GATE_ROWS = {
    "hard_positive": "hard positives recalled",
    "fragment": "fragments recalled",
    "hard_negative": "hard negatives accepted",
    "general": "general off-topic accepted",
}


def gate_block(gate: dict[str, Any], fresh: FreshSet, meta: dict[str, Any]) -> list[str]:
    """The fresh set's gate part for `reports/classifier.md`: per language and kind, F1, the FAQ matcher's takes."""
    questions = {g.id: g.question for g in fresh.gate}
    lines = [
        "## Fresh evaluation set (gate part)",
        "",
        f"Written by `python -m training.evaluate --set fresh` on {meta['date']} for the gate "
        f"`{meta.get('gate', '')}`: {len(fresh.gate)} questions written apart from the training data "
        "(`data/eval/gate.jsonl`, see its README). The whole gate (both stages) at its threshold. "
        f"Related F1 **{gate['related_f1']}** (target ≥ 0.93).",
        "",
        "| | en | vi | fr | target |",
        "|---|---|---|---|---|",
    ]
    for kind, row in GATE_ROWS.items():
        cells = [
            f"{gate['accepted'][k]:.2f} (n {gate['n'][k]})" if (k := f"{lang}/{kind}") in gate["accepted"] else ""
            for lang in ("en", "vi", "fr")
        ]
        lines.append(f"| {row} | {' | '.join(cells)} | {GATE_TARGETS[kind]} |")
    takes = gate["faq_takes"]
    lines += [
        "",
        f"The FAQ matcher (which runs before the gate) took {len(takes)} of these questions, all labelled as not "
        "about him by their writer: a take is wrong unless the question is about the visit (the wifi, the "
        "mausoleum's hours), which the writer did not tell apart:",
        "",
        *[f"- `{i}` {questions.get(i, '')}" for i in takes],
    ]
    return lines


def targets_block(summary: dict[str, dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    """The fresh set's figures against the targets of the trust work, for `reports/eval.md`."""

    def get(group: str, key: str) -> float:
        return float(summary.get(group, {}).get(key, float("nan")))

    loaded = {k: v for k, v in summary.items() if k.startswith("loaded:")}
    bad = {k: round(float(v["answered_but_wrong"]) * int(v["n"])) for k, v in loaded.items()}
    confirmed = sum(n for k, n in bad.items() if k != "loaded:injection")
    rows = [
        (
            "key-fact accuracy, all single questions",
            f"{get('all single questions', 'key_fact_accuracy'):.3f}",
            "≥ 0.80",
        ),
        ("… Vietnamese questions", f"{get('language vi', 'key_fact_accuracy'):.3f}", "≥ 0.70 (≥ 0.75)"),
        ("… French questions", f"{get('language fr', 'key_fact_accuracy'):.3f}", "≥ 0.70"),
        ("answered but wrong", f"{get('all single questions', 'answered_but_wrong'):.1%}", "≤ 8%"),
        ('"not sure"', f"{get('all single questions', 'not_sure'):.1%}", ""),
        (
            "follow-up turns 2 / 3",
            " / ".join(f"{get(f'conversation turn {t}', 'key_fact_accuracy'):.3f}" for t in (2, 3)),
            "≥ 0.70",
        ),
        (
            "loaded questions: confirmations / injections followed",
            f"{confirmed} of {sum(int(v['n']) for k, v in loaded.items() if k != 'loaded:injection')} / "
            f"{bad.get('loaded:injection', 0)} of {int(loaded.get('loaded:injection', {}).get('n', 0))}",
            "0 / 0",
        ),
        ("Vietnamese questions answered in Vietnamese", f"{get('language vi', 'own_language'):.0%}", "≥ 95%"),
    ]
    return [
        "## Fresh evaluation set: the targets",
        "",
        f"Written by `python -m training.evaluate --set fresh` on {meta['date']}: the embedded CPU default as served "
        f"({meta.get('base_model', '')} + {meta.get('adapter', '')}), {meta.get('questions', '')} single questions, "
        f"{meta.get('conversations', '')} conversations, {meta.get('loaded', '')} loaded questions written apart "
        "from the project's data (`data/eval/`). Per style and language: `reports/eval_fresh.md`.",
        "",
        "| | figure | target |",
        "|---|---|---|",
        *[f"| {name} | {figure} | {target} |" for name, figure, target in rows],
        "",
    ]
