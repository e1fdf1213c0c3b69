"""Request and response bodies of the API (validated at the edge; documented in OpenAPI with examples)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Question = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
SessionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]


def _printable(value: str) -> str:
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
        raise ValueError("the question contains control characters")
    return value


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"question": "When was Ho Chi Minh born?"},
        {"question": "and his father?", "session_id": "3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c1e"},
    ]})  # fmt: skip

    question: Question = Field(description="The visitor's question, 1–500 characters.")
    session_id: SessionId | None = Field(None, description="Keeps the conversation's last turns for follow-ups.")

    _check = field_validator("question")(_printable)


class Source(BaseModel):
    id: str
    title: str
    section: str
    url: str


class AskResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "answer": "Ho Chi Minh was born on 19 May 1890 in Kim Liên, in Nghệ An province.",
        "related": True, "relevance": 0.98, "route": "curated",
        "sources": [{"id": "kb-early-life-01", "title": "Early life and family", "section": "Birth",
                     "url": "https://en.wikipedia.org/wiki/Ho_Chi_Minh"}],
        "session_id": "3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c1e", "request_id": "9b1d…", "latency_ms": 4.2,
    }]})  # fmt: skip

    answer: str
    related: bool
    relevance: float = Field(description="Gate score (0–1); for FAQ answers, the FAQ match score.")
    route: Literal["faq", "curated", "generated", "off_topic"]
    sources: list[Source]
    suggestions: list[str] = Field(default_factory=list, description="Offered after an off-topic question.")
    session_id: str
    request_id: str
    latency_ms: float


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"question": "best pho in saigon?"}]})
    question: Question
    _check = field_validator("question")(_printable)


class ClassifyResponse(BaseModel):
    related: bool
    relevance: float


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"request_id": "9b1d0c6e3f1a4b2c8d7e6f5a4b3c2d1e", "helpful": True}]})  # fmt: skip
    request_id: Annotated[str, StringConstraints(pattern=r"^[a-f0-9]{32}$")]
    helpful: bool
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None = None


MODEL_ID = "hcm-kiosk"  # the one model `/v1/models` lists


def _joined_text_parts(value: object) -> object:
    """OpenAI clients may send `content` as a list of parts; text parts are joined, any other part is refused."""
    if not isinstance(value, list):
        return value
    if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in value):
        raise ValueError('content parts must be text parts: {"type": "text", "text": "..."}')
    return "\n".join(p["text"] for p in value)


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: Annotated[str, StringConstraints(max_length=2000)] = Field(
        description='A string, or a list of text parts (`[{"type": "text", "text": "..."}]`), joined by newlines.'
    )

    _parts = field_validator("content", mode="before")(_joined_text_parts)


class StreamOptions(BaseModel):
    include_usage: bool = Field(False, description="End the stream with a chunk that carries the usage.")


class ChatCompletionRequest(BaseModel):
    """The OpenAI form; `temperature` and the like are accepted and ignored (the kiosk decides)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "hcm-kiosk", "messages": [{"role": "user", "content": "Who was Uncle Ho?"}]}]})  # fmt: skip
    model: str = Field(MODEL_ID, description="`hcm-kiosk`, the one model there is (`GET /v1/models`).")
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=20)]
    stream: bool = False
    user: str | None = None
    max_tokens: int | None = Field(None, ge=1, description="Answer length limit; the server's own cap still holds.")
    max_completion_tokens: int | None = Field(None, ge=1, description="OpenAI's newer name for `max_tokens`.")
    n: int = Field(1, description="Answers per request: only 1 (any other value: 400).")
    stream_options: StreamOptions | None = None
