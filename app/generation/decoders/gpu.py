"""Greedy decoding of Falcon on a GPU: one CUDA graph per decoding step, the device synced every few steps.

transformers' `generate` with a static cache and compiled ("reduce-overhead") decoding replays a CUDA
graph for the model, but around it every step runs logits processors, stopping criteria and cache
bookkeeping in Python and waits for the device (benchmarks/README.md: at 32 requests a 27 ms compiled step
became 42 ms). This loop captures the whole step — embedding, 32 layers, final norm, head, argmax, the
end-of-answer check and the writes into the key/value cache and the token buffer — into one graph per
batch size (1, 2, 4, ... rows), replays it `chunk` times, then reads the new tokens once and checks stop
strings, deadlines and cancellation on the host.

The arithmetic is transformers' Falcon (parallel attention and MLP from one layer norm, multi-query
attention, rotary embeddings, GELU), with the attention written for one key/value head: scores are one
batched matmul of all query heads against the shared keys, no head is copied 71 times. The linear layers
are the model's own modules (bitsandbytes 4-bit with the adapter merged, or plain ones), so what was
checked at load time is what runs. `supports` accepts only the Falcon variant it reproduces; a test checks
that it picks the same tokens as `generate` on a random model, with left padding.

On a CPU (tests) the same code runs eagerly, without graphs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from app.generation.decoders.common import Drafter, LogitsProcessor, Stop, prompt_positions_and_mask
from app.generation.stopping import ended

log = logging.getLogger(__name__)
# A prompt's float32 attention scores are computed a few rows at a time, this size each (with the softmax
# beside them, about three times that at the peak).
ATTENTION_BYTES = 256 * 1024**2
PREFILL_TOKENS = 4096  # prompt tokens run through the model at once (more rows are run in turn)


def supports(config: Any) -> bool:
    """Falcon-7B's variant: parallel attention, one key/value head, rotary embeddings, no alibi."""
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    return (
        getattr(config, "model_type", None) == "falcon"
        and getattr(config, "parallel_attn", False)
        and getattr(config, "multi_query", False)
        and not getattr(config, "new_decoder_architecture", True)
        and not getattr(config, "alibi", True)
        and rope.get("rope_type", rope.get("type", "default")) == "default"
        and getattr(config, "activation", "gelu") == "gelu"
    )


@dataclass
class _Layer:
    norm: torch.nn.LayerNorm
    qkv: Callable[[torch.Tensor], torch.Tensor]
    dense: Callable[[torch.Tensor], torch.Tensor]
    up: Callable[[torch.Tensor], torch.Tensor]
    down: Callable[[torch.Tensor], torch.Tensor]


@dataclass
class _Step:
    """The static buffers of one batch size and the graph that reads and writes them."""

    rows: int
    token: torch.Tensor  # [rows] the newest token of each row
    position: torch.Tensor  # [rows] its rotary position (left padding is not counted)
    slot: torch.Tensor  # [1] the cache column it is written to
    done: torch.Tensor  # [rows] finished rows emit padding
    graph: Any = None


class GpuDecoder:
    """Falcon's weights and a static key/value cache, for greedy decoding of up to `max_batch` rows.

    It applies no logits processor: the copy bias matches each row's tokens against its sources on the host,
    which would read the device after every step, where this loop reads it every `chunk` steps.
    """

    applies_processor = False
    drafts = False

    def __init__(self, model: Any, max_batch: int, max_length: int, chunk: int = 4, graphs: bool | None = None) -> None:
        config = model.config
        if not supports(config):
            raise ValueError(f"GpuDecoder does not reproduce this model ({config.model_type})")
        body = model.transformer
        self.device = body.word_embeddings.weight.device
        self.dtype = body.word_embeddings.weight.dtype
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // self.heads
        self.max_batch = max_batch
        self.max_length = max_length
        self.chunk = chunk
        self.graphs = self.device.type == "cuda" if graphs is None else graphs
        self.embed = body.word_embeddings.weight
        self.layers = [self._layer(layer) for layer in body.h]
        self.final_norm = body.ln_f
        self.head = model.lm_head
        rope = getattr(config, "rope_parameters", None) or {}
        theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
        inv_freq = 1.0 / theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim)
        angles = torch.arange(max_length, dtype=torch.float32)[:, None] * inv_freq
        angles = torch.cat([angles, angles], dim=-1).to(self.device)
        # as transformers: cos and sin in float32, then in the model's dtype
        self.cos, self.sin = angles.cos().to(self.dtype), angles.sin().to(self.dtype)
        shape = (len(self.layers), max_batch, max_length, self.head_dim)
        self.keys = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.values = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.real = torch.zeros(max_batch, max_length, dtype=torch.bool, device=self.device)  # keys to attend
        self.ids = torch.zeros(max_batch, max_length, dtype=torch.long, device=self.device)  # prompt + answer
        self.eos = torch.tensor(-1, device=self.device)
        self.pad = torch.tensor(0, device=self.device)
        self._steps: dict[int, _Step] = {}
        self._pool: Any = None

    @staticmethod
    def _layer(layer: Any) -> _Layer:
        attention, mlp = layer.self_attention, layer.mlp
        return _Layer(
            layer.input_layernorm, attention.query_key_value, attention.dense, mlp.dense_h_to_4h, mlp.dense_4h_to_h
        )

    # --- the model ---------------------------------------------------------------------------------------

    def _rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin

    def _attend(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """q [B, T, H, D] against one key/value head [B, S, D]; mask [B, T, S] (True: attend)."""
        batch, width = q.shape[:2]
        rows = max(1, ATTENTION_BYTES // (width * self.heads * keys.shape[1] * 4))
        if batch > rows:  # long prompts in a full batch: float32 scores a few rows at a time
            return torch.cat(
                [
                    self._attend(q[i : i + rows], keys[i : i + rows], values[i : i + rows], mask[i : i + rows])
                    for i in range(0, batch, rows)
                ]
            )
        scores = torch.matmul(q.reshape(batch, width * self.heads, self.head_dim), keys.transpose(1, 2))
        scores = scores.view(batch, width, self.heads, -1).float() / self.head_dim**0.5
        scores = scores.masked_fill(~mask[:, :, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1).to(self.dtype).view(batch, width * self.heads, -1)
        return torch.matmul(weights, values).view(batch, width, self.heads * self.head_dim)

    def _forward(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        start: torch.Tensor | int,
        width_seen: int,
        mask: torch.Tensor,
        row: int = 0,
    ) -> torch.Tensor:
        """Logits of the last position of `ids` [B, T]; their keys and values go to cache columns start.. of
        cache rows row.. .

        `mask` [B, T, width_seen]: which of the first `width_seen` cache columns each position attends to.
        """
        batch, width = ids.shape
        x = F.embedding(ids, self.embed)
        cos, sin = self.cos[positions][:, :, None], self.sin[positions][:, :, None]
        columns = start + torch.arange(width, device=ids.device) if isinstance(start, int) else start
        for i, layer in enumerate(self.layers):
            normed = layer.norm(x)
            fused = layer.qkv(normed).view(batch, width, self.heads + 2, self.head_dim)
            q = self._rotate(fused[:, :, : self.heads], cos, sin)
            k = self._rotate(fused[:, :, self.heads], cos[:, :, 0], sin[:, :, 0])
            keys, values = self.keys[i, row : row + batch], self.values[i, row : row + batch]
            keys.index_copy_(1, columns, k)
            values.index_copy_(1, columns, fused[:, :, self.heads + 1])
            attended = self._attend(q, keys[:, :width_seen], values[:, :width_seen], mask)
            mlp = layer.down(F.gelu(layer.up(normed)))
            mlp += layer.dense(attended)  # transformers' order: (mlp + attention) + residual
            x = x + mlp
        return self.head(self.final_norm(x[:, -1]))

    # --- one decoding step, in a graph --------------------------------------------------------------------

    def _step(self, step: _Step) -> None:
        """Feed each row's newest token, append the next one to `ids` (padding once a row is done)."""
        rows = step.rows
        self.real[:rows].index_fill_(1, step.slot, True)
        mask = self.real[:rows, None, :]
        logits = self._forward(step.token[:, None], step.position[:, None], step.slot, self.max_length, mask)
        token = torch.where(step.done, self.pad, logits.argmax(dim=-1))
        step.done |= token == self.eos
        step.slot += 1
        self.ids[:rows].index_copy_(1, step.slot, token[:, None])
        step.token.copy_(token)
        step.position += 1

    def _get_step(self, rows: int) -> _Step:
        bucket = 1
        while bucket < rows:
            bucket *= 2
        bucket = min(bucket, self.max_batch)
        if bucket not in self._steps:
            long = {"dtype": torch.long, "device": self.device}
            step = _Step(
                bucket,
                torch.zeros(bucket, **long),
                torch.zeros(bucket, **long),
                torch.zeros(1, **long),
                torch.ones(bucket, dtype=torch.bool, device=self.device),
            )
            if self.graphs:
                step.graph = self._capture(step)
            self._steps[bucket] = step
        return self._steps[bucket]

    def _capture(self, step: _Step) -> Any:
        """Record one step; its buffers are the graph's inputs and outputs. Warm-up runs on a side stream."""
        saved = self.real[: step.rows].clone(), self.ids[: step.rows].clone()
        step.slot.fill_(0)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._step(step)
                step.slot.fill_(0)
        torch.cuda.current_stream().wait_stream(stream)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            self._step(step)
        self.real[: step.rows], self.ids[: step.rows] = saved
        return graph

    def warmup(self, pad_token_id: int) -> None:
        """Capture the graph of every batch size, then run the largest request the cache allows (`max_batch`
        prompts filling it but for 8 new tokens), so that a memory problem shows at start-up."""
        with torch.inference_mode():
            rows = 1
            while True:
                self._get_step(rows)
                if rows >= self.max_batch:
                    break
                rows *= 2
        width = self.max_length - 8
        ids = torch.full((self.max_batch, width), pad_token_id + 1, dtype=torch.long, device=self.device)
        never = lambda seen: torch.zeros(seen.shape[0], dtype=torch.bool)  # noqa: E731
        self.generate(ids, torch.ones_like(ids), 8, never, eos_token_id=-1, pad_token_id=pad_token_id)

    # --- generation ----------------------------------------------------------------------------------------

    def fits(self, width: int, max_new_tokens: int, rows: int) -> bool:
        return 0 < rows <= self.max_batch and max_new_tokens > 0 and width + max_new_tokens <= self.max_length

    @torch.inference_mode()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        max_new_tokens: int,
        stop: Stop,
        eos_token_id: int,
        pad_token_id: int,
        process: LogitsProcessor | None = None,
        draft: Drafter | None = None,
    ) -> torch.Tensor:
        """Greedy continuation of left-padded prompts, `generate`-style: prompt + new ids, padding after a row ends.

        `stop(ids)` is called with all ids so far after every token and returns one bool per row.
        """
        if process is not None or draft is not None:
            raise ValueError("the GPU decoding loop applies no logits processor and checks no drafts")
        batch, width = input_ids.shape
        if not self.fits(width, max_new_tokens, batch):
            raise ValueError(f"{batch} rows of {width} + {max_new_tokens} tokens do not fit the decoder's cache")
        step = self._get_step(batch)
        rows = step.rows
        self.eos.fill_(eos_token_id)
        self.pad.fill_(pad_token_id)
        self.real[:rows] = False
        self.real[:batch, :width] = attention_mask.bool()
        self.real[batch:rows, 0] = True  # unused rows attend to something: no NaN
        self.ids[:rows] = pad_token_id
        self.ids[:batch, :width] = input_ids
        positions, mask = prompt_positions_and_mask(attention_mask.to(self.device))
        # The prompts a few rows at a time: 32 prompts that fill the cache at once peaked at 8.2 GiB on the
        # H100 (the MLP's activations), in pieces of PREFILL_TOKENS they stay near the decoding footprint.
        rows_at_once = max(1, PREFILL_TOKENS // width)
        first = torch.cat(
            [
                self._forward(
                    input_ids[i : i + rows_at_once],
                    positions[i : i + rows_at_once],
                    0,
                    width,
                    mask[i : i + rows_at_once],
                    row=i,
                ).argmax(dim=-1)
                for i in range(0, batch, rows_at_once)
            ]
        )
        # the first new token, then the graph from there
        step.token.fill_(pad_token_id)
        step.token[:batch] = first
        step.position.zero_()
        step.position[:batch] = positions[:, -1] + 1
        step.slot.fill_(width)
        step.done.fill_(True)
        step.done[:batch] = first == eos_token_id
        self.ids[:batch, width] = first
        prompt = input_ids.cpu()
        host = torch.zeros(batch, max_new_tokens, dtype=torch.long)
        finished = torch.zeros(batch, dtype=torch.bool)
        made = 0
        while True:
            new = self.ids[:batch, width + made : width + min(made + self.chunk, max_new_tokens)].cpu()
            if made == 0:
                new = new[:, :1]  # the first token was made by the prompt: check it before any step
            for column in new.T:
                host[:, made] = column.masked_fill(finished, pad_token_id)
                made += 1
                finished |= ended(torch.cat([prompt, host[:, :made]], dim=1), stop, eos_token_id)
                if bool(finished.all()) or made == max_new_tokens:
                    return torch.cat([prompt, host[:, :made]], dim=1).to(input_ids.device)
            step.done[:batch] |= finished.to(self.device)
            for _ in range(min(self.chunk, max_new_tokens - made)):
                if step.graph is not None:
                    step.graph.replay()
                else:
                    self._step(step)
