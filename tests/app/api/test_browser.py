"""The kiosk page in headless Chromium: tap a suggestion, see the answer stream in, and no script runs from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.strings import STRINGS, SUGGESTIONS
from tests.app.test_live import LiveServer
from tests.conftest import ROOT, FakeGenerator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]
SCREENSHOT = ROOT / "reports" / "kiosk-browser-test.png"  # the fake generator answers: not the README picture
XSS = '<img src=x onerror="window.__pwned = true"> <script>window.__pwned = "s"</script> Ho Chi Minh loved the sea.'


@pytest.fixture(params=[False], ids=["csp"])
def page(request):
    yield from _page(bypass_csp=request.param)


@pytest.fixture()
def page_without_csp():
    # Without the Content-Security-Policy the page itself must still never run markup from an answer.
    yield from _page(bypass_csp=True)


def _page(bypass_csp: bool):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=bypass_csp)
        yield context.new_page()
        browser.close()


def test_tap_a_suggestion_and_see_the_answer(tmp_path: Path, page):
    fake = FakeGenerator("Ho Chi Minh was born on 19 May 1890 in Kim Liên village.", delay_s=0.05)
    with LiveServer(tmp_path, fake) as server:
        page.goto(server.url + "/")
        page.get_by_role("button", name="Touch the screen to start").click()
        page.locator(".suggestion").nth(2).click()  # "What did he do in France?" — not a curated question
        answer = page.locator(".turn .answer").first
        page.wait_for_selector('.turn .answer[aria-busy="false"]')
        assert answer.inner_text().strip()
        assert page.locator(".turn .feedback").first.is_visible()
        assert page.locator("#conversation").get_attribute("aria-live") == "polite"
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))


def test_generated_markup_is_shown_as_text_and_never_runs(tmp_path: Path, page_without_csp):
    page = page_without_csp
    fake = FakeGenerator(XSS)
    with LiveServer(tmp_path, fake) as server:
        page.goto(server.url + "/")
        page.keyboard.press("Enter")  # keyboard alone: leave the attract screen
        page.fill("#question", "what did uncle ho think about the sea and fishermen in his youth?")
        page.keyboard.press("Enter")
        page.wait_for_selector('.turn .answer[aria-busy="false"]')
        assert "<img src=x" in page.locator(".turn .answer").first.inner_text()
        assert page.locator(".turn .answer img, .turn .answer script").count() == 0
        assert page.evaluate("window.__pwned") is None


def test_idle_reset_wipes_the_conversation(tmp_path: Path, page):
    with LiveServer(tmp_path, FakeGenerator(), idle_reset_s=10) as server:
        page.clock.install()
        page.goto(server.url + "/")
        page.get_by_role("button", name="Touch the screen to start").click()
        page.fill("#question", "where was he born")
        page.keyboard.press("Enter")
        page.wait_for_selector(".turn .feedback:not([hidden])")
        page.clock.run_for(11_000)
        assert page.locator(".turn").count() == 0
        assert page.locator("#attract").is_visible()


def test_the_api_docs_render_offline_under_the_csp(tmp_path: Path, page):
    with LiveServer(tmp_path, FakeGenerator()) as server:
        elsewhere: list[str] = []

        def this_server_only(route) -> None:  # as on a kiosk with no internet
            if route.request.url.startswith(server.url + "/"):
                route.continue_()
            else:
                elsewhere.append(route.request.url)
                route.abort()

        page.route("**/*", this_server_only)
        blocked: list[str] = []
        page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(server.url + "/docs")
        page.wait_for_selector(".opblock", timeout=20_000)
        assert page.locator(".opblock").count() >= 10  # every operation listed
        assert page.get_by_text("/api/v1/ask/stream").count() >= 1
        assert elsewhere == [] and blocked == []


# --- the visitor's language: the EN | VI switch, Vietnamese typed, the idle reset -----------------------------
STREAM = "**/api/v1/ask/stream"


def _is_stream(request) -> bool:
    return request.url.endswith("/api/v1/ask/stream")


def _ask(page, question: str) -> None:
    """Type a question and wait until its answer is complete."""
    n = page.locator(".turn").count()
    page.fill("#question", question)
    page.keyboard.press("Enter")
    page.locator(".turn").nth(n).locator('.answer[aria-busy="false"]').wait_for()


def _assert_page_in(page, language: str) -> None:
    t = STRINGS[language]
    assert page.locator("html").get_attribute("lang") == language
    assert page.title() == t["title"]
    assert page.locator("h1").inner_text() == t["title"]
    assert page.locator("#question").get_attribute("placeholder") == t["placeholder"]
    assert page.locator("#ask-button").inner_text() == t["ask"]
    assert page.locator("#reset").inner_text() == t["new_visitor"]
    assert page.locator("#suggestions-title").inner_text() == t["suggestions_title"]
    assert page.locator("#suggestion-list .suggestion").all_inner_texts() == SUGGESTIONS[language]
    assert page.locator("#attract .attract-title").text_content() == t["attract_title"]
    assert page.locator("#attract").get_attribute("aria-label") == t["attract_hint"]
    assert page.locator("#language-switch").get_attribute("aria-label") == t["language_switch"]
    assert set(page.locator(".turn .feedback-question").all_text_contents()) <= {t["helpful_question"]}
    pressed = page.locator('#language-switch [aria-pressed="true"]')
    assert pressed.count() == 1 and pressed.get_attribute("data-language") == language


def _answer_with(page, **done: object) -> None:
    """The stream answers one `done` event as the answering side sends it (`language`, route `clarify`)."""
    event = {
        "answer": "",
        "related": True,
        "relevance": 1.0,
        "route": "curated",
        "sources": [],
        "suggestions": [],
        "session_id": "s" * 32,
        "request_id": "r" * 32,
        "latency_ms": 1.0,
        **done,
    }
    body = f"event: done\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"
    page.unroute(STREAM)
    page.route(STREAM, lambda route: route.fulfill(status=200, content_type="text/event-stream", body=body))


def test_the_switch_turns_every_string_to_vietnamese_and_back_and_keeps_the_conversation(tmp_path: Path, page):
    with LiveServer(tmp_path, FakeGenerator()) as server:
        page.goto(server.url + "/")
        _assert_page_in(page, "en")
        page.get_by_role("button", name=STRINGS["en"]["attract_hint"]).click()
        _ask(page, "where was he born")
        page.evaluate("window.__samePage = true")
        page.get_by_role("button", name="VI").click()
        _assert_page_in(page, "vi")
        assert page.locator(".turn .feedback-question").inner_text() == STRINGS["vi"]["helpful_question"]
        assert page.locator(".turn .question").inner_text() == "where was he born"  # the conversation stays
        page.get_by_role("button", name="EN").click()
        _assert_page_in(page, "en")
        assert page.locator(".turn").count() == 1 and page.evaluate("window.__samePage") is True


def test_a_vietnamese_question_switches_the_page_and_is_sent_in_vietnamese(tmp_path: Path, page):
    with LiveServer(tmp_path, FakeGenerator()) as server:
        page.goto(server.url + "/")
        page.get_by_role("button", name=STRINGS["en"]["attract_hint"]).click()
        with page.expect_request(_is_stream) as french:
            _ask(page, "Quel âge avait-il à sa mort ?")  # â, à: French letters, not Vietnamese ones
        assert "language" not in french.value.post_data_json  # nothing chosen: the server detects
        _assert_page_in(page, "en")
        with page.expect_request(_is_stream) as vietnamese:
            _ask(page, "Bác Hồ sinh năm nào?")
        assert vietnamese.value.post_data_json["language"] == "vi"
        _assert_page_in(page, "vi")
        with page.expect_request(_is_stream) as english:
            _ask(page, "where was he born")
        assert english.value.post_data_json["language"] == "vi"  # the page does not switch back by itself
        _assert_page_in(page, "vi")


def test_the_answers_language_switches_to_vietnamese_but_never_back_and_clarify_offers_buttons(tmp_path: Path, page):
    with LiveServer(tmp_path, FakeGenerator()) as server:
        page.goto(server.url + "/")
        page.get_by_role("button", name=STRINGS["en"]["attract_hint"]).click()
        _answer_with(page, answer="Bác Hồ sinh ngày 19 tháng 5 năm 1890.", language="vi")
        with page.expect_request(_is_stream) as first:
            _ask(page, "bac ho sinh nam nao")  # no diacritics: only the server can tell
        assert "language" not in first.value.post_data_json
        _assert_page_in(page, "vi")
        assert page.locator(".turn .answer").get_attribute("lang") == "vi"
        meant = ["Who was his father?", "Who was his mother?"]
        _answer_with(page, answer=STRINGS["en"]["clarify"], route="clarify", language="en", suggestions=meant)
        _ask(page, "and his parent?")
        _assert_page_in(page, "vi")
        turn = page.locator(".turn").nth(1)
        assert turn.locator(".suggestion").all_inner_texts() == meant and not turn.locator(".feedback").is_visible()
        with page.expect_request(_is_stream) as tapped:
            turn.locator(".suggestion").first.click()
        assert tapped.value.post_data_json == {"question": meant[0], "session_id": "s" * 32, "language": "vi"}


def test_a_french_answer_makes_the_pages_own_replies_french(tmp_path: Path, page):
    with LiveServer(tmp_path, FakeGenerator()) as server:
        page.goto(server.url + "/")
        page.get_by_role("button", name=STRINGS["en"]["attract_hint"]).click()
        _answer_with(page, answer="Il est né le 19 mai 1890.", language="fr")
        _ask(page, "Quand est-il né ?")
        _assert_page_in(page, "en")  # the switch offers EN | VI only
        page.unroute(STREAM)
        page.route(STREAM, lambda route: route.fulfill(status=429, json={"detail": "too many requests"}))
        _ask(page, "Et son père ?")
        assert page.locator(".turn .answer").nth(1).inner_text() == STRINGS["fr"]["too_fast"]


@pytest.mark.parametrize("leave", ["idle", "start over"])
def test_leaving_returns_to_the_museums_language(tmp_path: Path, page, leave: str):
    with LiveServer(tmp_path, FakeGenerator(), ui_language="vi", idle_reset_s=10) as server:
        page.clock.install()
        page.goto(server.url + "/")
        _assert_page_in(page, "vi")
        page.get_by_role("button", name=STRINGS["vi"]["attract_hint"]).click()
        page.get_by_role("button", name="EN").click()
        _ask(page, "where was he born")
        _assert_page_in(page, "en")
        if leave == "idle":
            page.clock.run_for(11_000)
        else:
            page.get_by_role("button", name=STRINGS["en"]["new_visitor"]).click()
        assert page.locator("#attract").is_visible() and page.locator(".turn").count() == 0
        _assert_page_in(page, "vi")
        page.get_by_role("button", name=STRINGS["vi"]["attract_hint"]).click()
        with page.expect_request(_is_stream) as request:
            _ask(page, "where was he born")
        assert "language" not in request.value.post_data_json  # the next visitor has chosen nothing yet


OFF_TOPIC_VI = "Thời tiết Hà Nội hôm nay thế nào?"


def _assert_off_topic_reply_in_vietnamese(page) -> None:
    turn = page.locator(".turn").first
    assert turn.locator(".answer").inner_text() == STRINGS["vi"]["off_topic"]
    assert turn.locator(".suggestion").all_inner_texts() == SUGGESTIONS["vi"][:3]
    with page.expect_request(_is_stream) as tapped:
        turn.locator(".suggestion").first.click()
    assert tapped.value.post_data_json["question"] == SUGGESTIONS["vi"][0]


def test_off_topic_suggestions_in_a_vietnamese_museum(tmp_path: Path, page):
    with LiveServer(tmp_path, FakeGenerator(), ui_language="vi") as server:
        page.goto(server.url + "/")
        page.get_by_role("button", name=STRINGS["vi"]["attract_hint"]).click()
        _ask(page, OFF_TOPIC_VI)
        _assert_off_topic_reply_in_vietnamese(page)


def test_off_topic_suggestions_in_the_visitors_language_in_an_english_museum(tmp_path: Path, page):
    with LiveServer(tmp_path, FakeGenerator()) as server:
        page.goto(server.url + "/")
        page.get_by_role("button", name=STRINGS["en"]["attract_hint"]).click()
        _ask(page, OFF_TOPIC_VI)
        _assert_off_topic_reply_in_vietnamese(page)
