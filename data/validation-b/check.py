"""Check validation set B: parsing, ids, counts, key facts found in data/knowledge/*.md."""
import collections, glob, json, os, re, sys, unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
KB = os.path.join(HERE, "..", "knowledge")


def fold(s):
    s = s.replace("đ", "d").replace("Đ", "D")
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    s = re.sub(r"[\u2010-\u2015\u2212]", "-", s)
    s = s.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return re.sub(r"\s+", " ", s)


chap = {os.path.basename(p)[:-3]: fold(open(p, encoding="utf-8").read())
        for p in sorted(glob.glob(os.path.join(KB, "*.md"))) if not p.endswith("README.md")}
kb_all = " ".join(chap.values())
errors, warnings = [], []
ids, seen_q = set(), {}


def load(name):
    rows = []
    for n, line in enumerate(open(os.path.join(HERE, name), encoding="utf-8"), 1):
        try:
            rows.append(json.loads(line))
        except Exception as e:  # noqa
            errors.append(f"{name}:{n} does not parse: {e}")
    return rows


def check_facts(where, kfs, chapter=None):
    if not (1 <= len(kfs) <= 2):
        errors.append(f"{where}: {len(kfs)} key facts (want 1-2)")
    for fact in kfs:
        if not fact or not all(isinstance(x, str) and x for x in fact):
            errors.append(f"{where}: empty fact")
            continue
        if not any(fold(x) in kb_all for x in fact):
            errors.append(f"{where}: no form of {fact[:4]} in the knowledge base")
        elif chapter and not any(fold(x) in chap[chapter] for x in fact):
            warnings.append(f"{where}: {fact[:3]} not in chapter {chapter}")


def check_q(where, text):
    k = fold(text).strip(" ?!.")
    if k in seen_q:
        errors.append(f"{where}: duplicate question of {seen_q[k]}")
    seen_q[k] = where


def check_id(i):
    if i in ids:
        errors.append(f"duplicate id {i}")
    ids.add(i)


style_count = collections.Counter()
chapter_count = collections.Counter()
verdicts = collections.Counter()
for name in ["questions-en.jsonl", "questions-vi-fr.jsonl"]:
    for r in load(name):
        where = r.get("id")
        check_id(where)
        for key in ["id", "language", "style", "question", "key_facts", "answerable", "verdict", "chapter"]:
            if key not in r:
                errors.append(f"{where}: missing {key}")
        style_count[(r["language"], r["style"])] += 1
        chapter_count[r["chapter"]] += 1
        if r["chapter"] not in chap:
            errors.append(f"{where}: unknown chapter {r['chapter']}")
            continue
        prefix = {"vi_diacritics": "rr-vi-diacritics-", "vi_plain": "rr-vi-plain-", "fr": "rr-fr-"}.get(
            r["style"], f"rr-en-{r['style']}-")
        if not re.fullmatch(re.escape(prefix) + r"\d{3}", where):
            errors.append(f"{where}: id does not match style {r['style']}")
        if r["answerable"] is not True:
            errors.append(f"{where}: answerable must be true")
        if r["style"] == "yesno" and r["verdict"] not in ("yes", "no"):
            errors.append(f"{where}: yes/no question without verdict")
        if r["verdict"] not in (None, "yes", "no"):
            errors.append(f"{where}: bad verdict")
        if r["verdict"]:
            verdicts[(r["style"], r["verdict"])] += 1
        check_q(where, r["question"])
        check_facts(where, r["key_facts"], r["chapter"])

conv_count = collections.Counter()
for r in load("conversations.jsonl"):
    where = r["id"]
    check_id(where)
    if not re.fullmatch(r"rr-conv-(en|vi|fr)-\d{3}", where) or where.split("-")[2] != r["language"]:
        errors.append(f"{where}: bad id")
    conv_count[(r["language"], r["kind"])] += 1
    if not 2 <= len(r["turns"]) <= 3:
        errors.append(f"{where}: {len(r['turns'])} turns")
    for t, turn in enumerate(r["turns"], 1):
        if t == 1:
            check_q(where, turn["question"])
        check_facts(f"{where} turn {t}", turn["key_facts"])

# as written: 60 per English style, 75 + 75 Vietnamese, 100 French; a few were dropped since (README.md)
want = {("en", s): 50 for s in ["plain", "typo", "fragment", "long", "yesno"]}
want.update({("vi", "vi_diacritics"): 70, ("vi", "vi_plain"): 60, ("fr", "fr"): 90})
for k, v in want.items():
    if style_count[k] < v:
        errors.append(f"count {k}: {style_count[k]} (want at least {v})")
if set(style_count) - set(want):
    errors.append(f"unexpected styles {set(style_count) - set(want)}")
langs = collections.Counter(l for l, _ in conv_count.elements())
kinds = collections.Counter(k for _, k in conv_count.elements())
if langs["en"] < 25 or langs["vi"] < 15 or langs["fr"] < 15 or kinds["topic_change"] < 5:
    errors.append(f"conversation counts {dict(conv_count)}")
missing = set(chap) - set(chapter_count)
if missing:
    errors.append(f"chapters without questions: {missing}")

print("questions per style:", dict(style_count))
print("questions per chapter:", dict(sorted(chapter_count.items())))
print("verdicts:", dict(verdicts))
print("conversations:", dict(conv_count))
print(f"{len(warnings)} warnings (fact found in the knowledge base but not in the question's chapter)")
for w in warnings:
    print("  WARN", w)
print(f"{len(errors)} errors")
for e in errors:
    print("  ERR", e)
sys.exit(1 if errors else 0)
