"""The `local` generator: transformers + peft in this process (SmolLM2 on the CPU, Falcon 4-bit on a GPU)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from app import gpu_decoder
from app.artifacts import ArtifactError, read_manifest, verify_file
from app.copying import CopyBias, proposal, source_tokens
from app.cpu_decoder import CpuDecoder, supports
from app.generation import GenerationRequest, GenerationResult, TextStream
from app.gpu_decoder import GpuDecoder
from app.modeling import load_base, prepare_for_serving
from app.prompt import STOP_STRINGS, clean_answer

log = logging.getLogger(__name__)
ADAPTER_MANIFEST = "adapter_manifest.json"


def verify_adapter(path: Path) -> dict[str, Any]:
    """An adapter folder must match its manifest file by file (a truncated or swapped file is refused)."""
    manifest = read_manifest(path / ADAPTER_MANIFEST)
    files = manifest.get("files")
    if not isinstance(files, dict) or "adapter_model.safetensors" not in files:
        raise ArtifactError(f"{path / ADAPTER_MANIFEST} lists no adapter weights")
    for name, digest in files.items():
        verify_file(path / name, digest)
    return manifest


def marker_token_ids(tokenizer: Any) -> frozenset[int]:
    """Ids whose text could begin a stop string (all start with "<" or a newline).

    Special tokens (end of answer, padding) are left out: rows are decoded without them, so they add no text.
    """
    ids = range(len(tokenizer))
    special = set(getattr(tokenizer, "all_special_ids", ()))
    backend = getattr(tokenizer, "backend_tokenizer", None)  # fast tokenizers decode in Rust, ~10x sooner
    texts = (backend.decode_batch([[i] for i in ids], skip_special_tokens=False) if backend is not None
             else tokenizer.batch_decode([[i] for i in ids]))  # fmt: skip
    return frozenset(
        i for i, text in zip(ids, texts, strict=True) if ("<" in text or "\n" in text) and i not in special
    )


class _RowStopper:
    """A StoppingCriteria that decides per row: stop strings, cancellation, deadline, per-request budget.

    Decoding a row's text every step costs milliseconds at batch 32, so a row is decoded only when it
    streams to a visitor, or while a stop string could be under way: from a token that could begin one
    until as many tokens later as the longest stop string has characters (every token adds at least one).
    """

    def __init__(self, requests: list[GenerationRequest], tokenizer: Any, prompt_width: int,
                 markers: frozenset[int]) -> None:  # fmt: skip
        self.requests = requests
        self.tokenizer = tokenizer
        self.prompt_width = prompt_width
        self.markers = markers
        self.streams = [TextStream(r) for r in requests]
        self._window = max(len(s) for s in STOP_STRINGS)
        self._suspect_until = [-1] * len(requests)  # the last step at which the row must still be decoded
        self._done = [False] * len(requests)  # a finished row is only padded from then on: no more decoding

    def __call__(self, input_ids: torch.Tensor, scores: Any = None, **kwargs: Any) -> torch.Tensor:
        now = time.monotonic()
        n_new = input_ids.shape[1] - self.prompt_width
        last = input_ids[:, -1].tolist()
        for i, (request, stream) in enumerate(zip(self.requests, self.streams, strict=True)):
            if self._done[i]:
                continue
            if last[i] in self.markers:
                self._suspect_until[i] = n_new + self._window
            stopped = False
            if request.on_text is not None or n_new <= self._suspect_until[i]:
                raw = self.tokenizer.decode(input_ids[i, self.prompt_width :], skip_special_tokens=True)
                stopped = stream.update(raw)
            self._done[i] = (
                stopped or request.cancelled.is_set() or now >= request.deadline or n_new >= request.max_new_tokens
            )
        return torch.tensor(self._done, dtype=torch.bool, device=input_ids.device)


class LocalGenerator:
    """Base model (+ LoRA adapter) in this process; `generate_batch` runs requests that arrived together."""

    name = "local"

    def __init__(self, model: Any, tokenizer: Any, decoder: CpuDecoder | GpuDecoder | None = None,
                 copy_bias: float = 0.0, draft_tokens: int = 0) -> None:  # fmt: skip
        self.model = model
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        self.device = next(model.parameters()).device
        self.markers = marker_token_ids(tokenizer)
        self.decoder = decoder
        self.copy_bias = copy_bias
        self.draft_tokens = draft_tokens
        # Prompts are counted on request threads while the worker pads batches: transformers switches a fast
        # tokenizer's padding on and off per call, so a shared one could leave a batch unpadded (measured: 1
        # batch in 300 failed to stack). Counting gets its own copy, padding and truncation off.
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self._counter = type(backend).from_str(backend.to_str()) if backend is not None else None
        if self._counter is not None:
            self._counter.no_padding()
            self._counter.no_truncation()
        if copy_bias and isinstance(decoder, GpuDecoder):
            log.warning("the GPU decoding loop does not apply the copy bias (KIOSK_COPY_BIAS=%s)", copy_bias)

    @classmethod
    def load(cls, base_model: str, adapter_dir: Path | None, *, quantize_4bit: bool, cpu_int8: bool,
             cache_dir: Path, merge: bool = True, compile_decoding: bool = True, int4_kernel: bool = False,
             gpu_loop: bool = True, max_batch: int = 8, max_length: int = 1024,
             copy_bias: float = 0.0, draft_tokens: int = 0) -> LocalGenerator:  # fmt: skip
        manifest = verify_adapter(adapter_dir) if adapter_dir else None
        targets = manifest["config"]["lora_targets"] if manifest else ()
        model, tokenizer = load_base(base_model, quantize_4bit=quantize_4bit, targets=targets, cache_dir=cache_dir)
        if adapter_dir:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter_dir))
        generator = cls.serving(model, tokenizer, merge=merge, compile_decoding=compile_decoding, cpu_int8=cpu_int8,
                                int4_kernel=int4_kernel, gpu_loop=gpu_loop, max_batch=max_batch,
                                max_length=max_length, copy_bias=copy_bias, draft_tokens=draft_tokens)  # fmt: skip
        log.info("local generator ready: %s%s (%s)", base_model, f" + {adapter_dir}" if adapter_dir else "",
                 type(generator.decoder).__name__ if generator.decoder else "transformers' generate")  # fmt: skip
        return generator

    @classmethod
    def serving(cls, model: Any, tokenizer: Any, *, merge: bool = True, compile_decoding: bool = True,
                cpu_int8: bool = True, int4_kernel: bool = False, gpu_loop: bool = True, max_batch: int = 8,
                max_length: int = 1024, copy_bias: float = 0.0, draft_tokens: int = 0) -> LocalGenerator:  # fmt: skip
        """A loaded model (+ unmerged adapter) prepared as the kiosk serves it, with the fastest decoding loop.

        On a GPU, Falcon gets `GpuDecoder` (one CUDA graph per step; `max_batch` rows of `max_length` tokens);
        other models get `generate` with a static cache and compiled decoding. On the CPU, Llama-family
        models get `CpuDecoder`; others `generate` in float32.
        """
        cuda = torch.cuda.is_available()
        fast_gpu = cuda and gpu_loop and merge and gpu_decoder.supports(model.config)  # the loop needs merged weights
        # Merged, the adapter costs nothing per token (one matmul per layer instead of three).
        model = prepare_for_serving(model, merge=merge, compile_decoding=compile_decoding and cuda and not fast_gpu,
                                    int4_kernel=int4_kernel and cuda)  # fmt: skip
        merged = not any(hasattr(m, "lora_A") for m in model.modules())
        decoder: CpuDecoder | GpuDecoder | None = None
        if fast_gpu and merged:
            decoder = GpuDecoder(model, max_batch=max_batch, max_length=max_length)
        elif not cuda and supports(model.config) and merged:
            # Decoding on the CPU is bound by Python overhead and by reading the weights: a lean loop, and
            # int8 weights read 4x fewer bytes than float32 (benchmarks/README.md, CPU). It needs the plain
            # model: an unmerged adapter (merge=False) stays with `generate`.
            decoder = CpuDecoder(model, int8=cpu_int8)
        # Other models stay in float32 with `generate` on the CPU: torch's dynamic int8 would quantise whole
        # prompts with one scale, which damaged answers (see app.cpu_decoder._Linear).
        model.eval()
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        return cls(model, tokenizer, decoder, copy_bias, draft_tokens)

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as this model reads it in a prompt; safe to call from any thread."""
        if self._counter is not None:
            return len(self._counter.encode(text, add_special_tokens=False).ids)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @torch.inference_mode()
    def generate_batch(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        batch = self.tokenizer(
            [r.prompt for r in requests], return_tensors="pt", padding=True, add_special_tokens=False
        )
        batch = {k: v.to(self.device) for k, v in batch.items()}
        width = batch["input_ids"].shape[1]
        stopper = _RowStopper(requests, self.tokenizer, width, self.markers)
        longest = max(r.max_new_tokens for r in requests)
        copying = None
        if self.copy_bias and any(r.copy_from for r in requests):
            copying = CopyBias.for_texts(self.tokenizer, [r.copy_from for r in requests], width, self.copy_bias)
        if isinstance(self.decoder, CpuDecoder) or (self.decoder and self.decoder.fits(width, longest, len(requests))):
            extra: dict[str, Any] = {}
            if isinstance(self.decoder, CpuDecoder):  # the GPU loop has no hooks
                extra["process"] = copying
                if self.draft_tokens and len(requests) == 1 and requests[0].copy_from:
                    sources = copying.sources[0] if copying else source_tokens(self.tokenizer, requests[0].copy_from)
                    eos, k = self.tokenizer.eos_token_id, self.draft_tokens
                    extra["draft"] = lambda new: proposal(sources, new, eos, k)
            output = self.decoder.generate(
                batch["input_ids"], batch["attention_mask"], longest, stopper,
                eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.tokenizer.pad_token_id, **extra,
            )  # fmt: skip
        else:  # other models, and (rarely) a batch too large for the GPU loop's cache
            output = self.model.generate(
                **batch,
                max_new_tokens=longest,
                do_sample=False,
                stopping_criteria=[stopper],
                logits_processor=[copying] if copying else None,
                eos_token_id=self.tokenizer.eos_token_id,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        results = []
        eos = self.tokenizer.eos_token_id
        prompt_tokens = batch["attention_mask"].sum(dim=1).tolist()  # padding not counted
        for i, stream in enumerate(stopper.streams):
            new = output[i, width:].tolist()
            hit_eos = eos in new
            if hit_eos:
                new = new[: new.index(eos)]
            raw = self.tokenizer.decode(new, skip_special_tokens=True)
            stream.flush(raw)
            finish = stream.finish_reason(len(new), hit_eos)
            results.append(GenerationResult(clean_answer(raw), len(new), finish, int(prompt_tokens[i])))
        return results

    def warmup(self) -> None:
        """Run the largest allowed request once, so that memory problems show at start-up, not for a visitor."""
        if isinstance(self.decoder, GpuDecoder):
            self.decoder.warmup(self.tokenizer.pad_token_id)  # CUDA graphs, and the largest request
        prompt = "<sources>: " + "Ho Chi Minh " * 60 + "\n<human>: Who was he?\n<assistant>:"
        self.generate_batch([GenerationRequest(prompt, 8, time.monotonic() + 120)])
