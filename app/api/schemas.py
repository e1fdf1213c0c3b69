"""Request and response bodies of the API (validated at the edge; documented in OpenAPI with examples)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.kiosk.language import Language

# Control characters other than tab, newline and carriage return. The rule is stated in the schema as a
# pattern (so that clients and schemathesis know it) and checked in Python with the same character classes.
_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f"
# What str.strip() removes, less the control characters above (re's \s differs between regex engines).
_SPACE = r"\t\n\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT_PATTERN = rf"^[^{_CONTROL}]*$"
QUESTION_PATTERN = rf"^[^{_CONTROL}]*[^{_CONTROL}{_SPACE}][^{_CONTROL}]*$"
_HAS_CONTROL = re.compile(rf"[{_CONTROL}]")


def _no_control(value: str) -> str:
    if _HAS_CONTROL.search(value):
        raise ValueError("the text contains control characters")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("the question must contain more than spaces")
    return value.strip()


def _has_lone_surrogate(value: object) -> bool:
    """JSON may escape half a surrogate pair ("\\ud800"): Python reads it, but it is not text (UTF-8 cannot
    encode it) and would fail wherever it goes next."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


class RequestBody(BaseModel):
    """A request's body: no lone surrogate anywhere in it, keys included (a 422, like any bad input)."""

    @model_validator(mode="before")
    @classmethod
    def _unicode_text(cls, data: Any) -> Any:
        if _has_lone_surrogate(data):
            raise ValueError("the body contains a lone surrogate (\\ud800-\\udfff), which is not text")
        return data


# Lengths count the text as sent (the schema's maxLength); surrounding spaces are stripped after the checks.
Question = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500),
    AfterValidator(_no_control),
    AfterValidator(_not_blank),
    Field(
        description="1–500 characters, not only spaces, no control characters but tab and newlines.",
        json_schema_extra={"pattern": QUESTION_PATTERN},
    ),
]
Text = Annotated[str, AfterValidator(_no_control), Field(json_schema_extra={"pattern": TEXT_PATTERN})]
SessionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]


class AskRequest(RequestBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"question": "When was Ho Chi Minh born?"},
                {"question": "and his father?", "session_id": "3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c1e"},
            ]
        },
    )

    question: Question
    session_id: SessionId | None = Field(None, description="Keeps the conversation's last turns for follow-ups.")
    language: Language | None = Field(
        None, description="The visitor's chosen language (`en`, `vi`, `fr`); absent: detected from the question."
    )


class Source(BaseModel):
    id: str
    title: str
    section: str
    url: str


class AskResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "answer": "Ho Chi Minh was born on 19 May 1890 in Kim Liên, in Nghệ An province.",
                    "related": True,
                    "relevance": 0.98,
                    "route": "curated",
                    "sources": [
                        {
                            "id": "kb-early-life-01",
                            "title": "Early life and family",
                            "section": "Birth",
                            "url": "https://en.wikipedia.org/wiki/Ho_Chi_Minh",
                        }
                    ],
                    "session_id": "3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c1e",
                    "request_id": "9b1d…",
                    "latency_ms": 4.2,
                }
            ]
        }
    )

    answer: str
    related: bool
    relevance: float = Field(description="Gate score (0–1); for FAQ answers, the FAQ match score.")
    route: Literal["faq", "curated", "generated", "off_topic", "clarify", "neutral"] = Field(
        description="`clarify`: not sure which verified answer is meant (see `suggestions`); `neutral`: a value "
        "judgement or insinuation, answered with what the sources document and no verdict."
    )
    sources: list[Source]
    suggestions: list[str] = Field(
        default_factory=list, description="Offered after an off-topic question, or the closest verified questions."
    )
    session_id: str
    request_id: str
    latency_ms: float
    language: Language = Field("en", description="The language the answer is in (`en`, `vi`, `fr`).")


class ClassifyRequest(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"question": "best pho in saigon?"}]})
    question: Question


class ClassifyResponse(BaseModel):
    related: bool
    relevance: float


class FeedbackRequest(RequestBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"request_id": "9b1d0c6e3f1a4b2c8d7e6f5a4b3c2d1e", "helpful": True}]},
    )
    request_id: Annotated[str, StringConstraints(pattern=r"^[a-f0-9]{32}$")]
    helpful: StrictBool
    comment: Annotated[Text, StringConstraints(max_length=1000), AfterValidator(str.strip)] | None = None


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
    content: Annotated[Text, StringConstraints(max_length=2000)] = Field(
        description='A string, or a list of text parts (`[{"type": "text", "text": "..."}]`), joined by newlines.'
    )

    _parts = field_validator("content", mode="before")(_joined_text_parts)


class StreamOptions(BaseModel):
    include_usage: StrictBool = Field(False, description="End the stream with a chunk that carries the usage.")


class ChatCompletionRequest(RequestBody):
    """The OpenAI form; `temperature` and the like are accepted and ignored (the kiosk decides)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"model": "hcm-kiosk", "messages": [{"role": "user", "content": "Who was Uncle Ho?"}]}]
        },
    )
    model: str = Field(MODEL_ID, description="`hcm-kiosk`, the one model there is (`GET /v1/models`).")
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=20)]
    stream: StrictBool = False
    user: str | None = None
    max_tokens: int | None = Field(None, ge=1, description="Answer length limit; the server's own cap still holds.")
    max_completion_tokens: int | None = Field(None, ge=1, description="OpenAI's newer name for `max_tokens`.")
    n: int = Field(1, description="Answers per request: only 1 (any other value: 400).")
    stream_options: StreamOptions | None = None


class ValidationIssue(BaseModel):
    """One reason a request was refused, in the form of FastAPI's validation errors."""

    loc: list[str | int] = Field(description='Where: e.g. `["body", "question"]`.')
    msg: str
    type: str


class ValidationErrorResponse(BaseModel):
    """Every 422: a list of issues (the input itself is never echoed)."""

    detail: list[ValidationIssue]


class ErrorResponse(BaseModel):
    """Every other error outside /v1 (401, 404, 408, 413, 429, 500, 503)."""

    detail: str


class OpenAIError(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorResponse(BaseModel):
    """Every error under `/v1` (400, 404, 408, 413, 422, 429, 500, 503), in the form OpenAI clients read."""

    error: OpenAIError
