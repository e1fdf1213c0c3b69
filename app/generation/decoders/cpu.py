"""Greedy decoding of Llama-family models on the CPU without `generate`'s per-step overhead.

On the kiosk's two cores SmolLM2-135M spends more of each token in Python than in arithmetic: profiled,
transformers' `generate` runs ~60 small tensor operations per layer per token (masks, cache bookkeeping,
position ids) around 7 int8 matmuls. This loop does the same arithmetic as transformers' Llama (RMSNorm,
rotary embeddings, grouped-query attention, SwiGLU) with:

- q/k/v fused into one matmul and gate/up into another (7 matmuls per layer become 4);
- int8 matmuls with one scale per output row (so the fused matrices quantise exactly as the separate
  ones would) for decoding steps, float32 for prompts (see `_Linear`);
- rotary embeddings as one complex multiplication for queries and keys together (their rows are
  reordered once so that each rotated pair is adjacent; attention scores do not change);
- a key/value cache allocated once per batch, and the attention mask built once per token, not per layer;
- for one question at a time, prompt-lookup decoding (`_drafted`): the next tokens of the source sentence
  the answer is copying are checked in the same pass as the picked token (~1.8x sooner answers).

Only what it can reproduce is accepted (`supports`); anything else stays with `generate`. A test checks
that it picks the same tokens as transformers on a random model.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from app.generation.decoders.common import Drafter, LogitsProcessor, Stop, prompt_positions_and_mask
from app.generation.stopping import ended


def supports(config: Any) -> bool:
    """Plain Llama arithmetic only: default rotary embedding, no biases, SiLU, no tensor-parallel split."""
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    return (
        getattr(config, "model_type", None) == "llama"
        and rope.get("rope_type", rope.get("type", "default")) == "default"
        and not getattr(config, "attention_bias", False)
        and not getattr(config, "mlp_bias", False)
        and getattr(config, "hidden_act", None) == "silu"
        and getattr(config, "pretraining_tp", 1) == 1
    )


class _Linear:
    """y = x·Wᵀ in float32; with `int8`, decoding steps use int8 weights (one symmetric scale per output row).

    fbgemm quantises the whole input with one scale. For the tokens of one decoding step that is fine; for
    a prompt, a few positions with very large activations (the first token's, typically) set that scale,
    every other position loses its precision, and the damage stays in the key/value cache. Measured on 48
    test questions: key-fact accuracy 0.685 in float32, 0.549 with int8 prompts, 0.679 with float32 prompts
    and int8 decoding steps. So prompts (compute-bound anyway) run in float32 and decoding steps, which are
    bound by reading the weights, in int8.
    """

    def __init__(self, weight: torch.Tensor, int8: bool) -> None:
        self.weight = weight.detach().float()  # no copy: the loaded model is read, never written
        self.packed = None
        if int8:
            scales = (self.weight.abs().amax(dim=1) / 127.5).clamp(min=torch.finfo(torch.float32).eps)
            zero_points = torch.zeros(self.weight.shape[0], dtype=torch.long)
            quantized = torch.quantize_per_channel(self.weight, scales.double(), zero_points, 0, torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(quantized, None)

    def __call__(self, x: torch.Tensor, decoding: bool) -> torch.Tensor:
        if decoding and self.packed is not None:
            # reduce_range: activations in 7 bits, as torch's dynamic int8 Linear does, so fbgemm cannot overflow
            return torch.ops.quantized.linear_dynamic(x, self.packed, True)
        return F.linear(x, self.weight)


@dataclass
class _Layer:
    attn_norm: torch.Tensor
    qkv: _Linear
    out: _Linear
    mlp_norm: torch.Tensor
    gate_up: _Linear
    down: _Linear


class CpuDecoder:
    """The weights of a (merged) `LlamaForCausalLM`, rearranged for fast greedy decoding on the CPU."""

    applies_processor = True
    drafts = True

    def __init__(self, model: Any, int8: bool = True) -> None:
        config = model.config
        if not supports(config):
            raise ValueError(f"CpuDecoder does not reproduce this model ({config.model_type})")
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.eps = config.rms_norm_eps
        rope = getattr(config, "rope_parameters", None) or {}
        theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
        self.inv_freq = 1.0 / theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim)
        inner = model.model
        self.embed = inner.embed_tokens.weight.detach().float()
        # Quantising and packing ~120 matrices takes seconds at start-up; torch does it outside the GIL.
        with ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads())) as pool:
            self.layers = list(pool.map(lambda layer: self._layer(layer, int8), inner.layers))
            self.lm_head = _Linear(model.lm_head.weight, int8)
        self.norm = inner.norm.weight.detach().float()
        self.rotated = (self.heads + self.kv_heads) * self.head_dim  # q and k lead the fused output

    def _layer(self, layer: Any, int8: bool) -> _Layer:
        attn, mlp = layer.self_attn, layer.mlp
        q, k = self._pairs_adjacent(attn.q_proj.weight), self._pairs_adjacent(attn.k_proj.weight)
        return _Layer(
            attn_norm=layer.input_layernorm.weight.detach().float(),
            qkv=_Linear(torch.cat([q, k, attn.v_proj.weight]), int8),
            out=_Linear(attn.o_proj.weight, int8),
            mlp_norm=layer.post_attention_layernorm.weight.detach().float(),
            gate_up=_Linear(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]), int8),
            down=_Linear(mlp.down_proj.weight, int8),
        )

    def _pairs_adjacent(self, weight: torch.Tensor) -> torch.Tensor:
        """Rows of a q or k projection reordered per head: transformers rotates dims (i, i + d/2) together,
        a complex multiplication rotates (2i, 2i + 1)."""
        half = self.head_dim // 2
        order = torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).flatten()
        return weight.detach().view(-1, self.head_dim, weight.shape[1])[:, order].reshape(weight.shape)

    def _rms(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * weight

    def _rotary(self, positions: torch.Tensor) -> torch.Tensor:
        """e^(i·position·frequency), shaped [B, S, 1, d/2] to rotate every head at once."""
        return torch.polar(torch.ones(()), positions.float()[..., None, None] * self.inv_freq)

    def _forward(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        cache: list[tuple[torch.Tensor, torch.Tensor]],
        start: int,
        mask: torch.Tensor,
        decoding: bool = False,
        every: bool = False,
    ) -> torch.Tensor:
        """Logits of the last position ([B, V]; of every position, [B, T, V], with `every`); keys and values of
        `ids` are written to the cache at `start`.

        `decoding`: a decoding step (int8 matmuls, see `_Linear`), not a prompt (float32, even of one token).
        """
        batch, width = ids.shape
        end = start + width
        x = F.embedding(ids, self.embed)
        rotation = self._rotary(positions)
        mask = torch.zeros(mask.shape).masked_fill_(~mask, float("-inf"))  # once, not in every layer
        for layer, (keys, values) in zip(self.layers, cache, strict=True):
            qkv = layer.qkv(self._rms(x, layer.attn_norm), decoding)
            pairs = torch.view_as_complex(qkv[..., : self.rotated].reshape(batch, width, -1, self.head_dim // 2, 2))
            qk = torch.view_as_real(pairs * rotation).reshape(batch, width, -1, self.head_dim).transpose(1, 2)
            q = qk[:, : self.heads]
            keys[:, :, start:end] = qk[:, self.heads :]
            values[:, :, start:end] = qkv[..., self.rotated :].view(batch, width, self.kv_heads, -1).transpose(1, 2)
            attended = F.scaled_dot_product_attention(
                q, keys[:, :, :end], values[:, :, :end], attn_mask=mask, enable_gqa=self.kv_heads != self.heads
            )
            x = x + layer.out(attended.transpose(1, 2).reshape(batch, width, -1), decoding)
            gate, up = layer.gate_up(self._rms(x, layer.mlp_norm), decoding).chunk(2, dim=-1)
            x = x + layer.down(F.silu(gate) * up, decoding)
        return self.lm_head(self._rms(x if every else x[:, -1], self.norm), decoding)

    def fits(self, width: int, max_new_tokens: int, rows: int) -> bool:
        return True  # the cache is allocated for each batch

    def warmup(self, pad_token_id: int) -> None:
        pass

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
        """Greedy continuation of left-padded prompts, `generate`-style: prompt + new ids, pad after a row ends.

        `stop(ids)` is called after every token with all ids so far and returns one bool per row;
        `process(ids, logits)`, a logits processor, may change the logits before each token is picked.
        `draft(new ids)` may propose the tokens that follow a single row's answer so far (see `_drafted`).
        """
        batch, width = input_ids.shape
        total = width + max_new_tokens
        shape = (batch, self.kv_heads, total, self.head_dim)
        cache = [(torch.zeros(shape), torch.zeros(shape)) for _ in self.layers]
        real = torch.zeros(batch, total, dtype=torch.bool)
        real[:, :width] = attention_mask.bool()
        positions, prefill_mask = prompt_positions_and_mask(attention_mask)
        logits = self._forward(input_ids, positions, cache, 0, prefill_mask[:, None])
        if draft is not None and batch == 1:
            return self._drafted(
                input_ids, logits, cache, real, positions[:, -1:], max_new_tokens, stop, eos_token_id, process, draft
            )
        ids, finished = input_ids, torch.zeros(batch, dtype=torch.bool)
        position = positions[:, -1:]
        for step in range(max_new_tokens):
            if process is not None:
                logits = process(ids, logits)
            token = logits.argmax(dim=-1).masked_fill(finished, pad_token_id)
            ids = torch.cat([ids, token[:, None]], dim=1)
            finished |= ended(ids, stop, eos_token_id)
            if bool(finished.all()) or step == max_new_tokens - 1:
                break
            real[:, width + step] = True
            position = position + 1
            keys_seen = real[:, None, None, : width + step + 1]
            logits = self._forward(token[:, None], position, cache, width + step, keys_seen, decoding=True)
        return ids

    def _drafted(
        self,
        ids: torch.Tensor,
        logits: torch.Tensor,
        cache: list[tuple[torch.Tensor, torch.Tensor]],
        real: torch.Tensor,
        position: torch.Tensor,
        max_new_tokens: int,
        stop: Stop,
        eos_token_id: int,
        process: LogitsProcessor | None,
        draft: Drafter,
    ) -> torch.Tensor:
        """Greedy decoding of one row that checks several proposed tokens per forward pass (prompt lookup).

        A decoding step reads every weight to compute one token; reading them once for the chosen token and
        a few proposed after it costs little more. The proposal (`draft`, e.g. the continuation of a source
        sentence the answer is copying) is kept up to the first token that greedy decoding would not have
        picked, and that token comes from the same pass: the answer is the one picked token by token, only
        sooner when it copies. (With int8 steps the activations of the tokens checked together share one
        quantisation scale, so a near-tie may fall the other way than in one-token steps.)
        """
        width = ids.shape[1]
        length = width  # tokens whose keys and values are in the cache
        if process is not None:
            logits = process(ids, logits)
        token = int(logits.argmax(dim=-1))  # picked, not yet cached: each pass starts from it
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
        done = bool(ended(ids, stop, eos_token_id).all()) or ids.shape[1] - width >= max_new_tokens
        while not done:
            proposed = list(draft(ids[0, width:].tolist()))[: max_new_tokens - (ids.shape[1] - width)]
            feed = torch.tensor([[token, *proposed]])
            n = feed.shape[1]
            keys_seen = torch.cat([real[:, :length].expand(n, -1), torch.ones(n, n, dtype=torch.bool).tril()], -1)
            every = self._forward(
                feed, position + 1 + torch.arange(n), cache, length, keys_seen[None, None], decoding=True, every=True
            )
            for j in range(n):  # every[:, j]: the logits after feed[j]
                real[:, length] = True  # feed[j] is in the answer: its cached keys count
                length, position = length + 1, position + 1
                logits = every[:, j] if process is None else process(ids, every[:, j])
                token = int(logits.argmax(dim=-1))
                ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
                done = bool(ended(ids, stop, eos_token_id).all()) or ids.shape[1] - width >= max_new_tokens
                if done or j == n - 1 or token != proposed[j]:
                    break  # keys of proposals after j are stale: the next pass overwrites them
        return ids
