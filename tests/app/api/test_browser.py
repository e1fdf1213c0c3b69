"""The kiosk page in headless Chromium: tap a suggestion, see the answer stream in, and no script runs from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.app.test_live import LiveServer
from tests.conftest import ROOT, FakeGenerator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]
SCREENSHOT = ROOT / "reports" / "kiosk-browser-test.png"  # the fake generator answers: not the README picture
XSS = '<img src=x onerror="window.__pwned = 1"> <script>window.__pwned = 2</script> Ho Chi Minh was born in 1890.'


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
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )  # fmt: skip
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
