"""The `local` generator: transformers + peft in this process (SmolLM2 on the CPU, Falcon 4-bit on a GPU)."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from app.generation.base import GenerationRequest, GenerationResult
from app.generation.config import GeneratorConfig
from app.generation.copying import CopyBias, proposal, source_tokens
from app.generation.decoders import cpu, gpu
from app.generation.decoders.common import Decoder, TransformersDecoder
from app.generation.stopping import RowStopper, TextStream, marker_token_ids
from app.modeling.base import load_base, prepare_for_serving
from app.modeling.lora import verify_adapter
from app.prompt import clean_answer

log = logging.getLogger(__name__)


class LocalGenerator:
    """Base model (+ LoRA adapter) in this process; `generate_batch` runs requests that arrived together."""

    name = "local"

    def __init__(
        self, model: Any, tokenizer: Any, decoder: Decoder | None = None, copy_bias: float = 0.0, draft_tokens: int = 0
    ) -> None:
        """`decoder`: the loop for batches it fits; transformers' `generate` takes the others (and all, if None)."""
        self.model = model
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        self.device = next(model.parameters()).device
        self.markers = marker_token_ids(tokenizer)
        self.fallback = TransformersDecoder(model)
        self.decoder: Decoder = decoder or self.fallback
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
        if copy_bias and not self.decoder.applies_processor:
            loop = type(self.decoder).__name__
            log.warning(
                "KIOSK_COPY_BIAS=%s is NOT applied to the answers that %s decodes (only to batches too "
                "large for it, left to transformers' generate)",
                copy_bias,
                loop,
            )

    @classmethod
    def load(cls, config: GeneratorConfig) -> LocalGenerator:
        manifest = verify_adapter(config.adapter_dir) if config.adapter_dir else None
        targets = manifest["config"]["lora_targets"] if manifest else ()
        model, tokenizer = load_base(
            config.base_model, quantize_4bit=config.quantize_4bit, targets=targets, cache_dir=config.base_cache_dir
        )
        if config.adapter_dir:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(config.adapter_dir))
        generator = cls.serving(model, tokenizer, config)
        adapter = f" + {config.adapter_dir}" if config.adapter_dir else ""
        log.info("local generator ready: %s%s (%s)", config.base_model, adapter, type(generator.decoder).__name__)
        return generator

    @classmethod
    def serving(cls, model: Any, tokenizer: Any, config: GeneratorConfig) -> LocalGenerator:
        """A loaded model (+ unmerged adapter) prepared as the kiosk serves it, with the fastest decoding loop.

        On a GPU, Falcon gets the GPU loop (one CUDA graph per step; `max_batch_size` rows of `gpu_max_length`
        tokens); other models get `generate` with a static cache and compiled decoding. On the CPU,
        Llama-family models get the CPU loop; others `generate` in float32.
        """
        cuda = torch.cuda.is_available()
        # the GPU loop needs merged weights
        gpu_loop = cuda and config.gpu_decoding_loop and config.merge and gpu.supports(model.config)
        # Merged, the adapter costs nothing per token (one matmul per layer instead of three).
        model = prepare_for_serving(
            model,
            merge=config.merge,
            compile_decoding=config.compile_decoding and cuda and not gpu_loop,
            int4_kernel=config.gpu_int4_kernel and cuda,
        )
        model.eval()
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        return cls(model, tokenizer, _decoder(model, config, cuda, gpu_loop), config.copy_bias, config.draft_tokens)

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
        ids, mask = batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
        width = ids.shape[1]
        stopper = RowStopper(requests, self.tokenizer, width, self.markers)
        longest = max(r.max_new_tokens for r in requests)
        decoder = self.decoder if self.decoder.fits(width, longest, len(requests)) else self.fallback
        output = decoder.generate(
            ids,
            mask,
            longest,
            stopper,
            eos_token_id=self.tokenizer.eos_token_id,
            pad_token_id=self.tokenizer.pad_token_id,
            **self._hooks(decoder, requests, width),
        )
        prompt_tokens = batch["attention_mask"].sum(dim=1).tolist()  # padding not counted
        return [
            self._result(stream, output[i, width:].tolist(), int(prompt_tokens[i]))
            for i, stream in enumerate(stopper.streams)
        ]

    def _hooks(self, decoder: Decoder, requests: list[GenerationRequest], width: int) -> dict[str, Any]:
        """The copy bias (a logits processor) and prompt-lookup drafts, for a decoder that takes them."""
        hooks: dict[str, Any] = {}
        copying = None
        if self.copy_bias and decoder.applies_processor and any(r.copy_from for r in requests):
            copying = CopyBias.for_texts(self.tokenizer, [r.copy_from for r in requests], width, self.copy_bias)
            hooks["process"] = copying
        if self.draft_tokens and decoder.drafts and len(requests) == 1 and requests[0].copy_from:
            sources = copying.sources[0] if copying else source_tokens(self.tokenizer, requests[0].copy_from)
            eos, k = self.tokenizer.eos_token_id, self.draft_tokens
            hooks["draft"] = lambda new: proposal(sources, new, eos, k)
        return hooks

    def _result(self, stream: TextStream, new: list[int], prompt_tokens: int) -> GenerationResult:
        """A row's new ids up to its end token, as the visitor reads them; what was held back is streamed."""
        eos = self.tokenizer.eos_token_id
        hit_eos = eos in new
        if hit_eos:
            new = new[: new.index(eos)]
        raw = self.tokenizer.decode(new, skip_special_tokens=True)
        stream.flush(raw)
        finish = stream.finish_reason(len(new), hit_eos)
        return GenerationResult(clean_answer(raw), len(new), finish, prompt_tokens)

    def warmup(self) -> None:
        """Run the largest allowed request once, so that memory problems show at start-up, not for a visitor."""
        self.decoder.warmup(self.tokenizer.pad_token_id)  # the GPU loop: CUDA graphs, and the largest request
        prompt = "<sources>: " + "Ho Chi Minh " * 60 + "\n<human>: Who was he?\n<assistant>:"
        self.generate_batch([GenerationRequest(prompt, 8, time.monotonic() + 120)])


def _decoder(model: Any, config: GeneratorConfig, cuda: bool, gpu_loop: bool) -> Decoder | None:
    """The fastest loop that reproduces this model; None: transformers' `generate`.

    A loop of our own needs the plain model: an unmerged adapter (merge=False) stays with `generate`.
    """
    if any(hasattr(m, "lora_A") for m in model.modules()):
        return None
    if gpu_loop:
        return gpu.GpuDecoder(model, config.max_batch_size, config.gpu_max_length)
    if not cuda and cpu.supports(model.config):
        # Decoding on the CPU is bound by Python overhead and by reading the weights: a lean loop, and int8
        # weights read 4x fewer bytes than float32 (benchmarks/README.md, CPU).
        return cpu.CpuDecoder(model, int8=config.cpu_int8)
    # Other models stay in float32 with `generate` on the CPU: torch's dynamic int8 would quantise whole
    # prompts with one scale, which damaged answers (see app.generation.decoders.cpu._Linear).
    return None
