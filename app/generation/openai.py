"""The `openai` generator: an OpenAI-compatible completions server (e.g. vLLM with the LoRA adapter)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx

from app.generation.base import GenerationRequest, GenerationResult
from app.generation.stopping import TextStream, interrupted
from app.prompt import STOP_STRINGS, clean_answer


class OpenAIGenerator:
    """Sends the same prompt the local generator would build; the server does its own batching."""

    name = "openai"

    def __init__(
        self, base_url: str, model: str, api_key: str = "", concurrency: int = 8, client: httpx.Client | None = None
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.client = client or httpx.Client(headers=headers, timeout=httpx.Timeout(60.0, connect=5.0))
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="openai")

    def generate_batch(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        return list(self._pool.map(self._one, requests))

    def _one(self, request: GenerationRequest) -> GenerationResult:
        body = {
            "model": self.model,
            "prompt": request.prompt,
            "max_tokens": request.max_new_tokens,
            "temperature": 0,
            "stop": list(STOP_STRINGS),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        stream = TextStream(request)
        raw, tokens, finish = "", 0, None
        usage: dict[str, int] = {}
        with self.client.stream("POST", f"{self.base_url}/completions", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if interrupted(request):
                    break
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                usage = chunk.get("usage") or usage  # the server's own count, in a last chunk without choices
                if not chunk.get("choices"):
                    continue
                choice = chunk["choices"][0]
                raw += choice.get("text", "")
                tokens += 1
                finish = choice.get("finish_reason") or finish
                if stream.update(raw):
                    break
        stream.flush(raw)
        reason = stream.finish_reason(tokens, finish == "stop")
        tokens = usage.get("completion_tokens", tokens)
        return GenerationResult(clean_answer(raw), tokens, reason, usage.get("prompt_tokens", 0))

    def warmup(self) -> None:
        """Fail at start-up if the server cannot be reached."""
        self.client.get(f"{self.base_url}/models").raise_for_status()
