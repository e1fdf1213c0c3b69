"""Fetch Wikipedia articles, cache their HTML, and rebuild `data/corpus.jsonl` with them.

    python -m training.scrape                                  # the default articles, from the web
    python -m training.scrape --article "Ho Chi Minh" --article "Việt Minh"
    python -m training.scrape --html-dir saved_pages/          # offline: pages saved from a browser

A page that fails to fetch or parse is reported and skipped; the others complete. The exit status is 1
when any page failed, 0 otherwise. Raw HTML is cached under `data/raw/` (`--refresh` fetches again).
"""

from __future__ import annotations

import argparse
import email.utils
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tqdm import tqdm

from app.artifacts import atomic_write_json, atomic_write_text
from training.documents import CORPUS, KNOWLEDGE_DIR, build_corpus, chapters
from training.wikipage import RAW_DIR, article_url, cached_pages, parse_article, slugify

log = logging.getLogger(__name__)

DEFAULT_ARTICLES = (
    "Ho Chi Minh",
    "Việt Minh",
    "August Revolution",
    "Proclamation of Independence of the Democratic Republic of Vietnam",
    "Ho Chi Minh Mausoleum",
    "Ho Chi Minh Museum",
    "First Indochina War",
    "Ho Chi Minh City",
)
RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass
class ScrapeConfig:
    """How to fetch; the defaults follow Wikimedia's etiquette for bots."""

    articles: tuple[str, ...] = DEFAULT_ARTICLES
    base_url: str = "https://en.wikipedia.org/wiki/"
    user_agent: str = "HCMMuseumKioskBot/0.1 (offline museum kiosk knowledge base; https://github.com/hcm-kiosk)"
    timeout_s: float = 20.0
    retries: int = 4
    backoff_s: float = 1.0  # doubled after each failed try
    min_interval_s: float = 1.0  # at most one request a second
    raw_dir: Path = RAW_DIR
    refresh: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)


class FetchError(RuntimeError):
    """A page could not be fetched after every retry."""


class Fetcher:
    """An HTTP client with timeouts, retries with exponential back-off and a polite request rate."""

    def __init__(self, config: ScrapeConfig, sleep=time.sleep, clock=time.monotonic) -> None:
        self.config = config
        self._sleep = sleep
        self._clock = clock
        self._last: float | None = None
        headers = {"User-Agent": config.user_agent, **config.extra_headers}
        self.client = httpx.Client(timeout=config.timeout_s, headers=headers, follow_redirects=True)

    def _wait_turn(self) -> None:
        if self._last is not None:
            delay = self.config.min_interval_s - (self._clock() - self._last)
            if delay > 0:
                self._sleep(delay)
        self._last = self._clock()

    def get(self, url: str) -> str:
        delay = self.config.backoff_s
        last_error = "no attempt"
        for attempt in range(1, self.config.retries + 2):
            self._wait_turn()
            try:
                response = self.client.get(url)
            except httpx.TransportError as exc:  # timeouts, refused connections, resets
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return response.text
                last_error = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUSES:
                    break
                delay = max(delay, _retry_after(response))
            if attempt <= self.config.retries:
                log.warning("fetch %s failed (%s); retry %d in %.1fs", url, last_error, attempt, delay)
                self._sleep(delay)
                delay *= 2
        raise FetchError(f"{url}: {last_error}")

    def close(self) -> None:
        self.client.close()


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("Retry-After", "")
    if value.isdigit():
        return min(float(value), 120.0)
    parsed = email.utils.parsedate_to_datetime(value) if value else None
    return max(0.0, min(parsed.timestamp() - time.time(), 120.0)) if parsed else 0.0


def cache_page(raw_dir: Path, title: str, url: str, html: str) -> None:
    """Keep the raw page; parsing it first means a page that cannot be parsed is never cached."""
    parse_article(html, title, url)
    stem = slugify(title)
    atomic_write_text(raw_dir / f"{stem}.html", html)
    atomic_write_json(raw_dir / f"{stem}.json", {"title": title, "url": url})


def scrape_web(config: ScrapeConfig, fetcher: Fetcher) -> list[str]:
    """Fetch every article not yet cached; returns the failures as messages."""
    failures = []
    for title in tqdm(config.articles, desc="articles", unit="page"):
        stem = slugify(title)
        if not config.refresh and (config.raw_dir / f"{stem}.json").exists():
            log.info("cached: %s", title)
            continue
        url = article_url(title, config.base_url)
        try:
            cache_page(config.raw_dir, title, url, fetcher.get(url))
        except (FetchError, ValueError) as exc:
            log.error("skipped %r: %s", title, exc)
            failures.append(f"{title}: {exc}")
    return failures


def scrape_folder(html_dir: Path, config: ScrapeConfig) -> list[str]:
    """Take saved pages from a folder instead of the web (`<Title>.html`; the page's own h1 wins)."""
    failures = []
    pages = sorted(html_dir.glob("*.html")) + sorted(html_dir.glob("*.htm"))
    if not pages:
        return [f"{html_dir}: no .html file"]
    for path in tqdm(pages, desc="pages", unit="page"):
        title = path.stem.replace("_", " ")
        try:
            html = path.read_text(encoding="utf-8", errors="replace")
            doc = parse_article(html, title, article_url(title, config.base_url))
            cache_page(config.raw_dir, doc.title, doc.url, html)
        except (OSError, ValueError) as exc:
            log.error("skipped %s: %s", path, exc)
            failures.append(f"{path}: {exc}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--article", action="append", help="an article title (repeatable; default: the list)")
    parser.add_argument("--html-dir", type=Path, help="read saved pages from this folder instead of the web")
    parser.add_argument("--raw-dir", type=Path, default=RAW_DIR)
    parser.add_argument("--knowledge-dir", type=Path, default=KNOWLEDGE_DIR)
    parser.add_argument("--out", type=Path, default=CORPUS)
    parser.add_argument("--base-url", default=ScrapeConfig.base_url)
    parser.add_argument("--refresh", action="store_true", help="fetch again pages already cached")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = ScrapeConfig(raw_dir=args.raw_dir, base_url=args.base_url, refresh=args.refresh)
    if args.article:
        config.articles = tuple(args.article)
    if args.html_dir:
        failures = scrape_folder(args.html_dir, config)
    else:
        fetcher = Fetcher(config)
        try:
            failures = scrape_web(config, fetcher)
        finally:
            fetcher.close()
    docs = chapters(args.knowledge_dir) + cached_pages(args.raw_dir)
    built = build_corpus(docs, args.out)
    log.info("corpus: %d passages from %d documents -> %s", len(built), len(docs), args.out)
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
