"""The shipped relevance gate: loading checks, and the visitors' questions the issue names."""

from __future__ import annotations

import json
import shutil
import statistics
import time
import zlib

import pytest

from app.artifacts import ArtifactError, sha256_file
from app.kiosk.gate import RelevanceGate
from tests.conftest import ROOT

GATE = ROOT / "models/classifier"


@pytest.fixture(scope="module")
def gate() -> RelevanceGate:
    return RelevanceGate.load(GATE)


RELATED = [
    "what was Bác Hồ's real name",
    "who read the declaration in 1945?",
    "when did uncle ho die",
    "ho chi min birthplace",
    "nguyen ai quoc in paris",
]


@pytest.mark.parametrize("question", RELATED)
def test_related_questions_pass(gate, question):
    assert gate.is_related(question), gate.relevance(question)


@pytest.mark.parametrize(
    "question",
    [
        "best pho in Ho Chi Minh City?",
        "taxi from tan son nhat airport to district 1",
        "how did lenin die",
        "what is the capital of france?",
    ],
)
def test_off_topic_questions_are_refused(gate, question):
    assert not gate.is_related(question), gate.relevance(question)


def test_relevance_is_a_probability(gate):
    assert 0.0 <= gate.relevance("hello") <= 1.0


def _copy(tmp_path):
    target = tmp_path / "gate"
    shutil.copytree(GATE, target)
    return target


def test_a_flipped_byte_is_refused_before_loading(tmp_path):
    target = _copy(tmp_path)
    data = bytearray((target / "gate.joblib").read_bytes())
    data[100] ^= 1
    (target / "gate.joblib").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match its manifest"):
        RelevanceGate.load(target)


def test_a_truncated_or_missing_file_is_refused(tmp_path):
    target = _copy(tmp_path)
    (target / "gate.joblib").write_bytes((target / "gate.joblib").read_bytes()[:1000])
    with pytest.raises(ArtifactError):
        RelevanceGate.load(target)
    (target / "gate.joblib").unlink()
    with pytest.raises(ArtifactError, match="not found"):
        RelevanceGate.load(target)
    with pytest.raises(ArtifactError, match="manifest not found"):
        RelevanceGate.load(tmp_path / "nowhere")


def test_a_gate_whose_classes_moved_is_refused_with_the_command_that_rebuilds_it(tmp_path):
    """The pickle names each class's module: a gate built before a module moved must say how to rebuild it."""
    target = _copy(tmp_path)
    model = target / "gate.joblib"
    pickled = zlib.decompress(model.read_bytes())  # joblib compresses with zlib
    model.write_bytes(zlib.compress(pickled.replace(b"app.kiosk.gate", b"app.kiosk.gone")))  # same length
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["sha256"] = sha256_file(model)
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"python -m training\.classifier train"):
        RelevanceGate.load(target)


def test_another_scikit_learn_version_is_refused(tmp_path):
    target = _copy(tmp_path)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["sklearn_version"] = "0.24.2"
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"scikit-learn 0\.24\.2"):
        RelevanceGate.load(target)


def test_one_question_is_scored_well_within_2_ms(gate):
    """A sanity bound, not the benchmark (benchmarks/gate.py prints p50/p95/p99 on one core)."""
    for _ in range(20):
        gate.relevance("when was he born")
    times = []
    for i in range(200):
        start = time.perf_counter()
        gate.relevance(f"who was uncle ho {i}")
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.02


def test_fast_scorer_gives_the_pipelines_numbers(gate):
    import numpy as np

    from training import qa

    questions = [p.question for p in qa.read_pairs(qa.TEST_CSV)] + ["", "!!!", "best pho in saigon?", "Bác Hồ"]
    slow = gate.pipeline.predict_proba(questions)[:, 1]
    fast = np.array([gate.scorer(q) for q in questions])
    assert np.allclose(fast, slow, atol=1e-12)


def test_one_question_at_a_time_gives_the_batch_numbers_through_both_stages(gate):
    """`relevance` (the service: fast scorers) and `relevances` (evaluation: scikit-learn in matrices) agree."""
    import numpy as np

    from training import qa

    questions = [p.question for p in qa.read_pairs(qa.TEST_CSV)][:150] + [*HARD_VI_FR, *FRAGMENTS, "", "!!!"]
    one = np.array([gate.relevance(q) for q in questions])
    assert np.allclose(one, gate.relevances(questions), atol=1e-9)
    assert gate.review is not None
    assert sum(gate.review.applies(gate.scorer(q)) for q in questions) > 20  # the second stage ran, often


# The city and the road in Vietnamese and French, written for these tests (in none of the gate's files), and
# questions without a subject: the issue's own examples (three of them are training questions too) and two new.
HARD_VI_FR = [
    "giá vé máy bay đi tp hồ chí minh",
    "thời tiết tp.hcm thứ bảy này",
    "vé xe khách hà nội đi tp hồ chí minh",
    "hô chi minh-ville vol direct depuis lyon",
    "phượt đường hồ chí minh cuối tuần này",
]
FRAGMENTS = ["vợ ông ấy tên gì", "wife?", "thọ mấy tuổi", "sa femme ?", "how old when he died"]


@pytest.mark.parametrize("question", HARD_VI_FR)
def test_the_city_and_the_road_in_vietnamese_and_french_are_refused(gate, question):
    assert not gate.is_related(question), gate.relevance(question)


@pytest.mark.parametrize("question", FRAGMENTS)
def test_a_question_without_a_subject_is_about_him(gate, question):
    assert gate.is_related(question), gate.relevance(question)


def test_the_city_the_road_and_the_man_are_three_tokens_in_every_language():
    from app.kiosk.gate import MentionsHim, gate_text

    for city in ("TP.HCM", "tp hồ chí minh", "Hô-Chi-Minh-Ville", "ville de Hô Chi Minh", "thành phố HCM", "hcmc"):
        assert gate_text(city).split() == ["hcmcity"], city
    for road in ("đường mòn Hồ Chí Minh", "đường Hồ Chí Minh", "piste Hô Chi Minh", "the ho chi minh trail"):
        assert "hcmroad" in gate_text(road).split() and not MentionsHim.value(road), road
    for man in ("Chủ tịch Hồ Chí Minh", "uncle ho chi minh", "l'oncle Hô", "Bác Hồ", "Hồ Chủ tịch"):
        assert gate_text(man).split()[-1:] == ["hcmperson"] and "minh" not in gate_text(man), man
    assert gate_text("ho ho ho") == "ho ho ho"


def test_a_flipped_byte_in_the_second_stage_is_refused_before_loading(tmp_path):
    target = _copy(tmp_path)
    data = bytearray((target / "review.joblib").read_bytes())
    data[100] ^= 1
    (target / "review.joblib").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match its manifest"):
        RelevanceGate.load(target)


def test_the_fast_tree_scorer_gives_the_models_numbers():
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    from app.kiosk.gate_review import TreeScorer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    x[rng.random((400, 5)) < 0.05] = np.nan  # missing values take the side the tree learned
    y = (x[:, 0] + np.nan_to_num(x[:, 1]) * x[:, 2] > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=7, random_state=0).fit(x, y)
    trees = TreeScorer(model)
    assert np.allclose([trees(row) for row in x[:100]], model.predict_proba(x[:100])[:, 1], atol=1e-12)


def test_neighbours_summarise_the_nearest_training_questions():
    import numpy as np
    import scipy.sparse as sp

    from app.kiosk.gate_review import Neighbours

    questions = sp.csr_matrix(np.array([[1.0, 0, 0], [0, 1.0, 0], [0.6, 0.8, 0]]))
    neighbours = Neighbours.build(questions, np.array([1, 0, 0]), k=2)
    asked = sp.csr_matrix(np.array([[0.8, 0.6, 0.0]]))
    best_related, best_off, margin, share = neighbours.summary(neighbours.similarities(asked))[0]
    assert (best_related, best_off) == pytest.approx((0.8, 0.96))
    assert margin == pytest.approx(-0.16) and share == pytest.approx(0.8**4 / (0.8**4 + 0.96**4))
    one = neighbours.similarity(np.array([0, 1]), np.array([0.8, 0.6]))
    assert one == pytest.approx(neighbours.similarities(asked)[0])


def test_the_names_him_feature_tells_the_man_from_the_city():
    from app.kiosk.gate import MentionsHim

    assert MentionsHim.value("Bác Hồ mất năm nào") == 1.0
    assert MentionsHim.value("president ho famous quotes") == 1.0
    assert MentionsHim.value("best pho in Ho Chi Minh City?") == 0.0
    assert MentionsHim.value("ho xuan huong poems") == 0.0


def test_knowledge_coverage_is_high_for_what_the_museum_tells_and_zero_for_unknown_words():
    from app.kiosk.gate import KnowledgeCoverage

    passages = (
        "Ho Chi Minh read the Declaration of Independence in Ba Dinh Square on 2 September 1945.",
        "He worked as a kitchen assistant in London and as a photo retoucher in Paris.",
        "Ba Dinh Square lies in Hanoi.",
    )
    coverage = KnowledgeCoverage(passages).fit([])
    declaration = coverage.value("who read the declaration of independence in 1945?")
    assert declaration > coverage.value("when was the declaration read and where is paris?") > 0.0
    assert coverage.value("best pho restaurant near the airport") == 0.0
    assert coverage.transform(["declaration 1945", "pho"]).toarray().ravel().tolist()[1] == 0.0


def test_the_shipped_gate_uses_the_knowledge_base():
    from app.kiosk.gate import KnowledgeCoverage, RelevanceGate

    gate = RelevanceGate.load(ROOT / "models" / "classifier")
    assert gate.scorer is not None and gate.scorer.coverage is not None
    coverage, weight = gate.scorer.coverage
    assert isinstance(coverage, KnowledgeCoverage) and len(coverage.passages) > 100 and weight > 0


def test_unknown_words_counts_what_the_knowledge_base_never_says():
    from app.kiosk.gate import UnknownWords

    passages = ("Ho Chi Minh read the Declaration of Independence in Ba Dinh Square on 2 September 1945.",)
    unknown = UnknownWords(passages).fit([])
    assert unknown.value("who read the declaration in ba dinh square?") == 0.0
    assert unknown.value("Bác Hồ declaration") == 0.0  # his names are one known word, as in the passages
    assert unknown.value("is there a book about the declaration?") == 0.5
    assert unknown.value("best pho near the airport") == 1.0
    assert unknown.value("who is he?") == 0.0  # no content word at all


def test_the_shipped_gate_counts_unknown_words_against_relevance(gate):
    assert gate.scorer is not None and gate.scorer.unknown is not None
    assert gate.scorer.unknown[1] < 0


def test_a_rebuild_is_byte_identical_whatever_the_hash_seed(tmp_path):
    """Sets and dicts hash strings differently in each process: the pickled gate must not depend on that."""
    import os
    import subprocess
    import sys

    script = (
        "import io, sys, joblib; from app.kiosk.gate import build_pipeline; "
        "from training.classifier import _without_memory_addresses as clean; "
        "p = build_pipeline(4.0, 0, ('Ho Chi Minh was born in Kim Lien in 1890.', 'He read the declaration.')); "
        "q = ['when was he born', 'born in kim lien?', 'best pho', 'weather today', 'who read it', 'pho 24']; "
        "p.fit(q * 2, [1, 1, 0, 0, 1, 0] * 2); buf = io.BytesIO(); joblib.dump(clean(p), buf, compress=3); "
        "sys.stdout.buffer.write(buf.getvalue())"
    )

    def build(seed: str) -> bytes:
        env = {**os.environ, "PYTHONHASHSEED": seed}
        return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, check=True, env=env).stdout

    outputs = [build("1"), build("2")]
    assert outputs[0] == outputs[1] and len(outputs[0]) > 1000
