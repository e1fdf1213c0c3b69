"""Check, split and count the question–answer dataset.

python -m training.dataset validate [--topic early-life]   # exit 1 and one line per defect
python -m training.dataset split                           # data/qa/source/*.csv -> train.csv, test.csv
python -m training.dataset stats
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from app.artifacts import ArtifactError
from app.kiosk.corpus import Passage, load_corpus
from app.kiosk.faq import read_entries
from app.kiosk.gate import MentionsHim
from app.kiosk.guard import asks_yes_or_no, missing_facts, opens_with_verdict
from app.text import fold_words, sent_tokenize
from training import gate_data, multilingual, qa
from training.documents import CORPUS

FAQ_PATH = Path("data/faq.yaml")
HAND_WRITTEN = (gate_data.GENERAL_MULTILINGUAL_CSV, gate_data.HARD_NEGATIVES_CSV, gate_data.HARD_POSITIVES_CSV)
TEST_SHARE = 0.15


@dataclass(frozen=True)
class Defect:
    file: str
    row: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}: {self.reason}"


def check_pair(pair: qa.QAPair, passages: dict[str, Passage], topics: Iterable[str]) -> list[str]:
    """Every reason this pair is unfit, empty when it is fine."""
    reasons = [f"empty {f}" for f in ("question", "answer", "topic") if not getattr(pair, f)]
    if not pair.source_ids:
        reasons.append("empty source_ids")
    if len(pair.question) > qa.MAX_QUESTION_CHARS:
        reasons.append(f"question longer than {qa.MAX_QUESTION_CHARS} characters")
    if pair.topic and pair.topic not in topics:
        reasons.append(f"unknown topic {pair.topic!r}")
    if pair.answer:
        n_words = len(pair.answer.split())
        if n_words > qa.MAX_ANSWER_WORDS:
            reasons.append(f"answer has {n_words} words (at most {qa.MAX_ANSWER_WORDS})")
        n_sentences = len(sent_tokenize(pair.answer))
        if n_sentences > qa.MAX_ANSWER_SENTENCES:
            reasons.append(f"answer has {n_sentences} sentences (at most {qa.MAX_ANSWER_SENTENCES})")
        if pair.question and opens_with_verdict(pair.answer) and not asks_yes_or_no(pair.question):
            reasons.append("answer opens with Yes/No but the question is not a yes/no question")
    unknown = [s for s in pair.source_ids if s not in passages]
    if unknown:
        reasons.append(f"unknown source id(s) {' '.join(unknown)}")
    elif pair.source_ids and pair.answer:
        missing = missing_facts(pair.answer, " ".join(passages[s].text for s in pair.source_ids))
        if missing:
            reasons.append(f"not in the cited passages: {', '.join(dict.fromkeys(missing))}")
    return reasons


def duplicate_defects(pairs: list[qa.QAPair]) -> list[Defect]:
    first: dict[str, qa.QAPair] = {}
    defects = []
    for p in pairs:
        key = qa.question_key(p.question)
        if key in first:
            other = first[key]
            defects.append(Defect(p.file, p.row, f"duplicate question (same as {other.file}:{other.row})"))
        else:
            first[key] = p
    return defects


def cross_split_defects(train: list[qa.QAPair], test: list[qa.QAPair]) -> list[Defect]:
    near = qa.NearDuplicates()
    train_features = [(p, near.features(p.question)) for p in train]
    defects = []
    for t in test:
        ft = near.features(t.question)
        for p, fp in train_features:
            if near.similar(ft, fp):
                defects.append(Defect(t.file, t.row, f"near-duplicate of {p.file}:{p.row} across the split"))
                break
    return defects


def answer_leak_defects(train: list[qa.QAPair], test: list[qa.QAPair]) -> list[Defect]:
    """A test answer that is also a training answer would be scored on an answer the models were trained on."""
    trained = {qa.answer_key(p.answer): p for p in train}
    return [
        Defect(t.file, t.row, f"answer also in training ({trained[key].file}:{trained[key].row}) across the split")
        for t in test
        if (key := qa.answer_key(t.answer)) in trained
    ]


def faq_passages() -> dict[str, Passage]:
    return {
        f"faq-{e.id}": Passage(f"faq-{e.id}", "museum", "Visitor information", e.id, e.answer, "", "")
        for e in read_entries(FAQ_PATH)
    }


def validate(topic: str | None = None) -> list[Defect]:
    passages = {p.id: p for p in load_corpus(CORPUS)}
    defects: list[Defect] = []
    files = qa.source_files(topic)
    if not files:
        return [Defect(str(qa.SOURCE_DIR), 0, f"no QA file{' for topic ' + topic if topic else ''}")]
    everything: list[qa.QAPair] = []
    for path in files:
        try:
            pairs = qa.read_pairs(path)
        except qa.QAFileError as exc:
            defects.append(Defect(str(path), 0, str(exc)))
            continue
        for p in pairs:
            if p.topic and p.topic != path.stem:
                defects.append(Defect(p.file, p.row, f"topic {p.topic!r} in the file of topic {path.stem!r}"))
            defects += [Defect(p.file, p.row, r) for r in check_pair(p, passages, qa.TOPICS)]
        everything += pairs
    if topic is None:
        defects += split_defects(everything)
        museum, museum_pairs = museum_defects()
        defects += museum
        everything += museum_pairs
        defects += offtopic_defects()
    defects += duplicate_defects(everything)
    return defects + multilingual_defects(topic, everything)


def multilingual_defects(topic: str | None, pairs: list[qa.QAPair]) -> list[Defect]:
    """Every verified answer has its phrasings (English styles, Vietnamese, French) and its Vietnamese version, whose
    numbers and Vietnamese names agree with the English (`training.multilingual`)."""
    if not multilingual.phrasing_files() and not multilingual.vi_files():
        return []  # a collection without them (the tests' small ones) has nothing to check
    answers = {p.answer for p in pairs if p.topic != "museum" and (topic is None or p.topic == topic)}
    try:
        found = multilingual.check(topic, answers, {qa.question_key(p.question) for p in pairs})
    except qa.QAFileError as exc:
        return [Defect(str(multilingual.PHRASINGS_DIR), 0, str(exc))]
    return [Defect(file, row, problem) for file, row, problem in found]


def offtopic_defects() -> list[Defect]:
    """The gate's question files (`data/offtopic`): their header, a known category (`gate_data.KINDS` names its
    kind, its -vi / -fr suffix the language), no question twice (folded) in or across them, none longer than a QA
    question, and none that names him among the off-topic questions and the fragments (a fragment has no subject;
    the city and the road are written as such: "TP.HCM", "đường Hồ Chí Minh")."""
    if not gate_data.OFFTOPIC_DIR.is_dir():
        return []  # a collection without the gate's questions (the tests' small ones) has nothing to check
    defects: list[Defect] = []
    seen: dict[str, tuple[str, int]] = {}
    for path in (gate_data.GENERAL_CSV, *HAND_WRITTEN):
        try:
            rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
        except (OSError, UnicodeDecodeError) as exc:
            defects.append(Defect(str(path), 0, f"unreadable: {exc}"))
            continue
        header = ["question", "source" if path == gate_data.GENERAL_CSV else "category"]
        if not rows or rows[0] != header:
            defects.append(Defect(str(path), 1, f"header must be {','.join(header)}"))
            continue
        for line, row in enumerate(rows[1:], start=2):
            reasons = _offtopic_row_defects(path, row)
            key = fold_words(row[0]) if row else ""
            if key in seen:
                reasons.append(f"duplicate question (same as {seen[key][0]}:{seen[key][1]})")
            elif key:
                seen[key] = (str(path), line)
            defects += [Defect(str(path), line, r) for r in reasons]
    return defects


def _offtopic_row_defects(path: Path, row: list[str]) -> list[str]:
    if len(row) != 2 or not row[0].strip() or not row[1].strip():
        return ["a row is a non-empty question and its category"]
    question, category = row[0].strip(), row[1].strip()
    reasons = []
    if len(question) > qa.MAX_QUESTION_CHARS:
        reasons.append(f"question longer than {qa.MAX_QUESTION_CHARS} characters")
    if path == gate_data.GENERAL_CSV:
        return reasons
    base = gate_data.base_category(category)
    if base not in gate_data.KINDS:
        reasons.append(f"unknown category {category!r} (name its kind in training.gate_data.KINDS)")
    names_him = MentionsHim.value(question) == 1.0
    if names_him and path != gate_data.HARD_POSITIVES_CSV:
        reasons.append("an off-topic question that names him")
    elif names_him and base == "fragment":
        reasons.append("a fragment that names him (a fragment has no subject)")
    return reasons


def museum_defects() -> tuple[list[Defect], list[qa.QAPair]]:
    """Museum-visit questions cite FAQ entries instead of passages."""
    try:
        pairs = qa.read_pairs(qa.MUSEUM_CSV)
    except FileNotFoundError:
        return [Defect(str(qa.MUSEUM_CSV), 0, "missing")], []
    except qa.QAFileError as exc:
        return [Defect(str(qa.MUSEUM_CSV), 0, str(exc))], []
    faq = faq_passages()
    return [Defect(p.file, p.row, r) for p in pairs for r in check_pair(p, faq, ("museum",))], pairs


def split_defects(sources: list[qa.QAPair]) -> list[Defect]:
    """The split files must hold exactly the source pairs, with no near-duplicate question and no answer across
    them."""
    try:
        train, test = qa.read_pairs(qa.TRAIN_CSV), qa.read_pairs(qa.TEST_CSV)
    except FileNotFoundError as exc:
        return [Defect(str(exc.filename), 0, "missing: run `python -m training.dataset split`")]
    except qa.QAFileError as exc:
        return [Defect("data/qa", 0, str(exc))]

    def keys(pairs: list[qa.QAPair]) -> Counter[tuple[str, str, str, tuple[str, ...]]]:
        return Counter((p.question, p.answer, p.topic, p.source_ids) for p in pairs)

    defects = []
    if keys(train) + keys(test) != keys(sources):
        defects.append(Defect(str(qa.TRAIN_CSV), 0, "train/test differ from data/qa/source: rerun the split"))
    return defects + cross_split_defects(train, test) + answer_leak_defects(train, test)


def split(pairs: list[qa.QAPair], test_share: float = TEST_SHARE) -> tuple[list[qa.QAPair], list[qa.QAPair]]:
    """Stratified by topic; the questions of one answer, and near-duplicate questions (of any topic), stay on one
    side; deterministic."""
    near = qa.NearDuplicates()
    by_topic: dict[str, list[list[qa.QAPair]]] = defaultdict(list)
    for cluster in _clusters(pairs, near):
        cluster.sort(key=lambda p: qa.question_key(p.question))
        by_topic[cluster[0].topic].append(cluster)
    train: list[qa.QAPair] = []
    test: list[qa.QAPair] = []
    for topic in sorted(by_topic):
        clusters = sorted(by_topic[topic], key=lambda c: _stable_hash(c[0].question))
        target = round(test_share * sum(len(c) for c in clusters))
        n_test = 0
        for cluster in clusters:
            if n_test + len(cluster) <= target:
                test += cluster
                n_test += len(cluster)
            else:
                train += cluster
    return train, test


def _stable_hash(question: str) -> str:
    return hashlib.sha256(qa.question_key(question).encode()).hexdigest()


def _clusters(pairs: list[qa.QAPair], near: qa.NearDuplicates) -> list[list[qa.QAPair]]:
    parent = list(range(len(pairs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    features = [near.features(p.question) for p in pairs]
    first_with_answer: dict[str, int] = {}
    for i in range(len(pairs)):
        j = first_with_answer.setdefault(qa.answer_key(pairs[i].answer), i)
        parent[root(i)] = root(j)
        for j in range(i + 1, len(pairs)):
            if near.similar(features[i], features[j]):
                parent[root(j)] = root(i)
    groups: dict[int, list[qa.QAPair]] = defaultdict(list)
    for i, p in enumerate(pairs):
        groups[root(i)].append(p)
    return list(groups.values())


def stats() -> str:
    corpus = load_corpus(CORPUS)
    lines = [f"corpus: {len(corpus)} passages, {sum(len(p.text.split()) for p in corpus)} words"]
    by_source = Counter(p.source for p in corpus)
    lines += [f"  {source}: {n} passages" for source, n in sorted(by_source.items())]
    split_counts = {
        name: Counter(p.topic for p in qa.read_pairs(path))
        for name, path in (("train", qa.TRAIN_CSV), ("test", qa.TEST_CSV))
        if path.exists()
    }
    lines.append(f"{'topic':<22}" + "".join(f"{name:>8}" for name in split_counts) + f"{'all':>8}")
    for topic in qa.TOPICS:
        counts = [c[topic] for c in split_counts.values()]
        lines.append(f"{topic:<22}" + "".join(f"{n:>8}" for n in counts) + f"{sum(counts):>8}")
    totals = [sum(c.values()) for c in split_counts.values()]
    lines.append(f"{'total':<22}" + "".join(f"{n:>8}" for n in totals) + f"{sum(totals):>8}")
    if qa.MUSEUM_CSV.exists():
        lines.append(f"museum questions: {len(qa.read_pairs(qa.MUSEUM_CSV))}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["validate", "split", "stats"])
    parser.add_argument("--topic", choices=qa.TOPICS, help="validate only this topic's source file")
    args = parser.parse_args(argv)
    if args.command == "validate":
        try:
            defects = validate(args.topic)
        except (ArtifactError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        for d in defects:
            print(d)
        print(f"{len(defects)} defect(s)" if defects else "ok: no defect found", file=sys.stderr)
        return 1 if defects else 0
    if args.command == "split":
        train, test = split(qa.load_source_pairs())
        qa.write_pairs(qa.TRAIN_CSV, train)
        qa.write_pairs(qa.TEST_CSV, test)
        print(f"train: {len(train)} pairs, test: {len(test)} pairs")
        return 0
    print(stats())
    return 0


if __name__ == "__main__":
    sys.exit(main())
