"""The Wikipedia parser keeps prose and drops clutter, on a full-page fixture and on real markup."""

from pathlib import Path

import pytest

from training.documents import passages
from training.wikipage import clean_text, parse_article

FIXTURES = Path(__file__).parent.parent / "fixtures"
SHARED_HTML = Path(__file__).resolve().parents[3] / "shared/data/wikipedia/es_wikipedia_Ho_Chi_Minh_fragment.html"


def _all_text(doc):
    return " ".join(b for _, blocks in doc.sections for b in blocks)


@pytest.fixture(scope="module")
def full_page():
    html = (FIXTURES / "wiki_full_page.html").read_text(encoding="utf-8")
    return parse_article(html, "fallback title", "https://en.wikipedia.org/wiki/Test_Article")


def test_title_comes_from_the_page_heading(full_page):
    assert full_page.title == "Test Article"
    assert full_page.slug == "wp-test-article"


def test_keeps_headings_paragraphs_and_list_items(full_page):
    sections = [name for name, _ in full_page.sections]
    assert sections == ["Introduction", "Early life", "Education"]
    text = _all_text(full_page)
    assert "Hồ was born in Kim Liên, in Nghệ An province." in text
    assert "He learned French at school." in text
    assert "He later taught at a school in Phan Thiết." in text


def test_nested_list_items_are_not_repeated(full_page):
    assert _all_text(full_page).count("Nested detail") == 1


@pytest.mark.parametrize(
    "clutter",
    [
        "[1]",
        "[2]",
        "[a]",
        "citation needed",
        "edit",
        "Born",
        "aged 79",
        "Table text",
        "see-also entry",
        "Duiker",
        "Official biography",
        "Navbox entry",
        "Authority control",
        "Category",
        "last edited",
        "redirects here",
        "Jump to content",
        "Kim_Lien",
        "The house in Kim Liên",
    ],
)
def test_drops_clutter(full_page, clutter):
    assert clutter not in _all_text(full_page)


def test_clean_text_removes_markers_and_spaces():
    assert clean_text("born in 1890 [12] , in Kim Liên[a] .") == "born in 1890, in Kim Liên."
    assert clean_text("a\xa0b\u200bc [citation needed]") == "a bc"


@pytest.mark.skipif(not SHARED_HTML.exists(), reason="shared Wikipedia markup not present")
def test_real_wikipedia_markup():
    html = f'<div class="mw-parser-output">{SHARED_HTML.read_text(encoding="utf-8")}</div>'
    doc = parse_article(html, "Ho Chi Minh", "https://es.wikipedia.org/wiki/Ho_Chi_Minh")
    text = _all_text(doc)
    assert "Nguyễn Sinh Cung" in text
    assert "[1]" not in text and "[2]" not in text and "corchete" not in text
    produced = list(passages(doc))
    assert len(produced) >= 10
    assert all(len(p.text.split()) <= 120 or "." not in p.text[:-1] for p in produced)
    assert [p.id for p in produced][:2] == ["wp-ho-chi-minh-01", "wp-ho-chi-minh-02"]


def test_page_without_text_is_an_error():
    with pytest.raises(ValueError, match="no article text"):
        parse_article("<html><body><table><tr><td>x y z</td></tr></table></body></html>", "Empty", "u")
