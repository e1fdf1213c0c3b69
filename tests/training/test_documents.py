"""Knowledge-base chapters become numbered passages; long paragraphs are cut at sentence boundaries."""

import pytest

from training.documents import read_chapter, split_block

CHAPTER = """---
title: Early life and family
topic: early-life
licence: CC BY-SA 4.0
attribution: Written for the museum.
url: https://en.wikipedia.org/wiki/Ho_Chi_Minh
---
# Early life and family

## Birth

Hồ Chí Minh was born on **19 May 1890** in [Kim Liên](https://example.org).
He was the third child.

- Father: Nguyễn Sinh Sắc
- Mother: Hoàng Thị Loan

## Schooling

He studied in Huế.
"""


def test_chapter_to_passages(tmp_path):
    path = tmp_path / "early-life.md"
    path.write_text(CHAPTER, encoding="utf-8")
    doc = read_chapter(path)
    assert doc.topic == "early-life" and doc.title == "Early life and family"
    assert doc.sections == [
        (
            "Birth",
            [
                "Hồ Chí Minh was born on 19 May 1890 in Kim Liên. He was the third child.",
                "Father: Nguyễn Sinh Sắc",
                "Mother: Hoàng Thị Loan",
            ],
        ),
        ("Schooling", ["He studied in Huế."]),
    ]


def test_chapter_without_front_matter_is_refused(tmp_path):
    path = tmp_path / "x.md"
    path.write_text("## Birth\n\ntext\n", encoding="utf-8")
    with pytest.raises(ValueError, match="front matter"):
        read_chapter(path)


def test_chapter_with_incomplete_front_matter_is_refused(tmp_path):
    path = tmp_path / "x.md"
    path.write_text("---\ntitle: T\n---\ntext\n", encoding="utf-8")
    with pytest.raises(ValueError, match="topic"):
        read_chapter(path)


def test_split_block_respects_the_word_limit_and_sentences():
    sentence = "Hồ Chí Minh travelled to France in 1911 aboard a French steamer as a kitchen helper."
    block = " ".join([sentence] * 20)
    chunks = split_block(block, max_words=60)
    assert len(chunks) > 1
    assert all(len(c.split()) <= 60 for c in chunks)
    assert all(c.endswith("helper.") for c in chunks)
    assert " ".join(chunks) == block
