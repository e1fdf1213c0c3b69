"""Request and response bodies of the API (validated at the edge; documented in OpenAPI with examples)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.kiosk.language import Language

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
    language: Language | None = Field(
        None, description="The visitor's chosen language (`en`, `vi`, `fr`); absent: detected from the question."
    )

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


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: Annotated[str, StringConstraints(max_length=2000)]


class ChatCompletionRequest(BaseModel):
    """The OpenAI form; `model`, `temperature` and the like are accepted and ignored (the kiosk decides)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "hcm-kiosk", "messages": [{"role": "user", "content": "Who was Uncle Ho?"}]}]})  # fmt: skip
    model: str = "hcm-kiosk"
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=20)]
    stream: bool = False
    user: str | None = None
