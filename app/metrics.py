"""Prometheus metrics, in a registry of the app's own (so that tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kiosk_requests_total",
            "Questions answered, by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.gate = Counter(
            "kiosk_gate_decisions_total", "Relevance gate decisions", ["decision"], registry=self.registry
        )
        self.latency = Histogram(
            "kiosk_request_latency_seconds",
            "Time to a complete answer, by route",
            ["route"],
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
            registry=self.registry,
        )
        self.queue_depth = Gauge("kiosk_queue_depth", "Generation requests waiting or running", registry=self.registry)
        self.tokens = Counter("kiosk_tokens_generated_total", "Tokens generated", registry=self.registry)
        self.fallbacks = Counter(
            "kiosk_generation_fallbacks_total",
            "Generated answers replaced by a retrieved sentence (unfinished)",
            registry=self.registry,
        )
        self.unverified_faq = Counter(
            "kiosk_unverified_faq_answers_total",
            "FAQ answers given from entries staff have not confirmed (verified: false)",
            registry=self.registry,
        )
        self.batches = Histogram(
            "kiosk_generation_batch_size",
            "Requests per generation batch",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
