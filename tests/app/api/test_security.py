"""Protection at the edge that needs no app: the per-client rate limit and the staff key comparison."""

from __future__ import annotations

from app.api.security import RateLimiter, api_key_matches


def test_rate_limiter_window():
    now = [0.0]
    limiter = RateLimiter(per_minute=2, clock=lambda: now[0])
    assert [limiter.retry_after("x") for _ in range(3)][:2] == [0, 0]
    assert limiter.retry_after("x") > 0 and limiter.retry_after("y") == 0
    now[0] = 61
    assert limiter.retry_after("x") == 0


def test_api_key_comparison():
    assert api_key_matches("secret", "secret")
    assert not api_key_matches("secret ", "secret") and not api_key_matches(None, "secret")
    assert not api_key_matches("", "")  # no configured key: closed
