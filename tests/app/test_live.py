"""A real uvicorn server on 127.0.0.1 with a slow fake generator: load, disconnects, bounded time."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from app.kiosk.services import load_services
from app.main import create_app
from tests.app.conftest import make_settings
from tests.conftest import FakeGenerator

QUESTION = "what did uncle ho think about the sea and fishermen in his youth?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, tmp_path: Path, fake: FakeGenerator, **overrides: object) -> None:
        self.port = _free_port()
        settings = make_settings(tmp_path, port=self.port, **overrides)
        self.app = create_app(settings, loader=lambda s: load_services(s, generator_factory=lambda _: fake))
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture()
def slow_server(tmp_path: Path) -> Iterator[tuple[LiveServer, FakeGenerator]]:
    fake = FakeGenerator("Ho Chi Minh was born in 1890 . He left Vietnam in 1911 as a kitchen helper .", delay_s=0.03)
    with LiveServer(tmp_path, fake, queue_size=4, max_batch_size=2, request_timeout_s=20) as server:
        yield server, fake


def test_load_many_clients_get_200_or_503_and_nothing_hangs(slow_server):
    server, fake = slow_server

    async def client_run(n: int) -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:

            async def one(i: int) -> int:
                question = QUESTION if i % 3 else "best pho in district 1 saigon?"
                r = await client.post("/api/v1/ask", json={"question": f"{question} {i}"})
                if r.status_code == 503:
                    assert int(r.headers["Retry-After"]) >= 1 and "detail" in r.json()
                return r.status_code

            return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), timeout=60)

    start = time.monotonic()
    codes = asyncio.run(client_run(50))
    assert set(codes) <= {200, 503}, codes
    assert codes.count(200) >= 17  # every off-topic question and the generated ones that fit in the queue
    assert codes.count(503) >= 1  # the queue bound was reached
    assert time.monotonic() - start < 60
    assert max(fake.batches) == 2  # requests that arrived together shared a batch
    services = server.app.state.services
    assert services.worker.depth == 0


def test_client_disconnect_stops_generation(slow_server):
    server, fake = slow_server
    fake.text = " ".join(["word"] * 400) + "."
    with (
        httpx.Client(base_url=server.url, timeout=30) as client,
        client.stream("POST", "/api/v1/ask/stream", json={"question": QUESTION}) as r,
    ):
        for chunk in r.iter_text():
            if "delta" in chunk:
                break  # the visitor walks away mid-answer
    deadline = time.monotonic() + 10
    worker = server.app.state.services.worker
    while time.monotonic() < deadline and (worker.depth or not fake.cancelled):
        time.sleep(0.05)
    assert fake.cancelled == 1 and worker.depth == 0
    assert httpx.get(server.url + "/readyz").status_code == 200
