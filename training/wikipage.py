"""Wikipedia article HTML -> a `Document` of headings, paragraphs and list items, without the clutter; cached pages."""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

from bs4 import BeautifulSoup, Tag

from training.documents import Document

RAW_DIR = Path("data/raw")
"""Where `python -m training.scrape` caches pages: `<slug>.html` beside `<slug>.json` (title and url)."""
WIKIPEDIA_LICENCE = "CC BY-SA 4.0"
# Everything that is not running prose: boxes, tables, notes, figures, edit links, citation markers.
_DROP = (
    "table, style, script, figure, .infobox, .navbox, .vertical-navbox, .sidebar, .metadata, .ambox, "
    ".hatnote, .thumb, .toc, #toc, .mw-editsection, sup.reference, .reference, .reflist, "
    "ol.references, .mw-references-wrap, .noprint, .shortdescription, .mw-empty-elt, .portalbox, "
    ".navbox-styles, .catlinks, .printfooter, .mw-jump-link, sup.noprint, .authority-control, .gallery"
)
_STOP_SECTIONS = {
    "see also",
    "references",
    "notes",
    "further reading",
    "external links",
    "bibliography",
    "sources",
    "citations",
    "footnotes",
    "works cited",
    "notes and references",
    "explanatory notes",
}
_CITATION = re.compile(r"\[(?:\d+|[a-z]|note \d+|citation needed|clarification needed|edit|nb \d+)\]", re.I)
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?)])")


def clean_text(text: str) -> str:
    """Remove citation markers left in the text and tidy the spacing around punctuation."""
    text = _CITATION.sub("", text.replace("\u200b", "").replace("\xa0", " "))
    text = re.sub(r"\(\s*\)", "", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", re.sub(r"\s+", " ", text))
    return text.replace("( ", "(").strip()


def slugify(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower().replace("đ", "d")).strip("-") or "page"


def article_url(title: str, base: str = "https://en.wikipedia.org/wiki/") -> str:
    return base + urllib.parse.quote(title.replace(" ", "_"))


def _heading_text(node: Tag) -> str | None:
    if node.name in {"h2", "h3", "h4"}:
        return clean_text(node.get_text())
    return None


def _own_text(item: Tag) -> str:
    """A list item's text without that of lists nested inside it (those are visited on their own)."""
    own_list = item.find_parent(["ul", "ol"])
    return "".join(s for s in item.find_all(string=True) if s.find_parent(["ul", "ol"]) is own_list)


def parse_article(html: str, title: str, url: str) -> Document:
    """Keep the article body's headings, paragraphs and list items, in order."""
    soup = BeautifulSoup(html, "lxml")
    heading = soup.select_one("#firstHeading")
    if heading and heading.get_text(strip=True):
        title = heading.get_text(" ", strip=True)
    body = soup.select_one("div.mw-parser-output") or soup.body or soup
    for node in body.select(_DROP):
        node.decompose()
    doc = Document(slug=f"wp-{slugify(title)}", source="wikipedia", title=title, url=url, licence=WIKIPEDIA_LICENCE)
    section, skipping = "Introduction", False
    for node in body.find_all(["h2", "h3", "h4", "p", "li"]):
        name = _heading_text(node)
        if name is not None:
            if node.name == "h2":
                skipping = name.lower() in _STOP_SECTIONS
            if not skipping:
                section = name
            continue
        # A list item inside a paragraph's own list is kept; list items of leftover boxes are not.
        if skipping or (node.name == "li" and node.find_parent(["nav", "footer"])):
            continue
        if node.name == "p" and node.find_parent("li"):
            continue
        text = clean_text(_own_text(node) if node.name == "li" else node.get_text())
        if len(text.split()) >= 3:
            doc.add(section, text)
    if not doc.sections:
        raise ValueError(f"no article text found in the page for {title!r}")
    return doc


def cached_pages(raw_dir: Path) -> list[Document]:
    """Parse every page the scraper cached (`<slug>.html` beside `<slug>.json` holding title and url)."""
    docs = []
    for meta_path in sorted(raw_dir.glob("*.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        html = meta_path.with_suffix(".html").read_text(encoding="utf-8")
        docs.append(parse_article(html, meta["title"], meta["url"]))
    return docs
