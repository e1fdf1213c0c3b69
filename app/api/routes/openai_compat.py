"""`POST /v1/chat/completions`: the OpenAI form, so chat clients can use the kiosk. The same gate applies."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from app.api.answering import EventStream, answer_question, stream_answer
from app.api.deps import KioskDep, RecordsDep, rate_limited
from app.api.schemas import ChatCompletionRequest
from app.kiosk.pipeline import Answer
from app.prompt import Turn

router = APIRouter(prefix="/v1", tags=["openai-compatible"])


def _question_and_history(body: ChatCompletionRequest) -> tuple[str, list[Turn]]:
    messages = [m for m in body.messages if m.role != "system"]  # the kiosk keeps its own instructions
    if not messages or messages[-1].role != "user" or not messages[-1].content.strip():
        raise HTTPException(422, "the last message must be a non-empty user message")
    question = messages[-1].content.strip()
    if len(question) > 500:
        raise HTTPException(422, "the question must be at most 500 characters")
    history = [Turn(q.content, a.content) for q, a in zip(messages[:-1:2], messages[1:-1:2], strict=False)
               if q.role == "user" and a.role == "assistant"]  # fmt: skip
    return question, history


def _completion(answer: Answer, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{answer.request_id}", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": answer.tokens, "total_tokens": answer.tokens},
        "kiosk": {"route": answer.route, "related": answer.related, "relevance": round(answer.relevance, 4),
                  "sources": [p.id for p in answer.sources]},
    }  # fmt: skip


def _chunk(request_id: str, model: str, delta: dict[str, str], finish: str | None = None) -> str:
    body = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


@router.post("/chat/completions", response_model=None)
async def chat_completions(request: Request, body: ChatCompletionRequest, kiosk: KioskDep, records: RecordsDep) -> Any:
    question, history = _question_and_history(body)
    rate_limited(request)  # after every check of the input: a malformed request gets its 422, not a 429
    if not body.stream:
        return _completion(await answer_question(kiosk, records, question, None, None, history), body.model)

    async def events() -> AsyncIterator[str]:
        run = lambda on_text: answer_question(kiosk, records, question, None, on_text, history)  # noqa: E731
        rid = "stream"
        yield _chunk(rid, body.model, {"role": "assistant"})
        async with aclosing(stream_answer(run)) as stream:  # closed at once if the client goes away
            async for kind, payload in stream:
                if kind == "delta":
                    yield _chunk(rid, body.model, {"content": payload})
                elif kind == "done":
                    yield _chunk(payload.request_id, body.model, {}, "stop")
                else:
                    error = {"error": {"code": payload.status_code, "message": payload.detail}}
                    yield f"data: {json.dumps(error)}\n\n"
        yield "data: [DONE]\n\n"

    return EventStream(events(), headers={"Cache-Control": "no-store"})
