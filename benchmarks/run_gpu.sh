#!/usr/bin/env bash
# Everything the device machine runs, in one call (see benchmarks/README.md):
#   bash benchmarks/run_gpu.sh serving|training|tests|int4|nf4
# Expects the wheels in .whl/ and SmolLM2's tokenizer in .bench/tokenizer (both carried).
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --target "$HOME/site" .whl/*.whl
export PYTHONPATH="$HOME/site:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT="${OUT:-benchmarks/results}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers, peft, bitsandbytes; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'bitsandbytes', bitsandbytes.__version__)"
case "${1:-serving}" in
  tests)
    python3 -m pytest -q -p no:cacheprovider -m gpu tests/gpu ;;
  nf4)
    python3 -m benchmarks.diagnostics.nf4_matmul ${2:-} 2>&1 | tee "$OUT/nf4_matmul.log" ;;
  int4)
    python3 -m benchmarks.diagnostics.int4_matmul 2>&1 | tee "$OUT/int4_matmul.log" ;;
  serving)
    python3 -m benchmarks.gpu_serving --tokenizer .bench/tokenizer --workdir /tmp/falcon-bench --out "$OUT" ${2:-} 2>&1 \
      | tee "$OUT/serving.log" ;;
  training)
    python3 -m benchmarks.falcon_shape --tokenizer .bench/tokenizer --workdir /tmp/falcon-bench
    python3 -m training.finetune --config training/configs/falcon-7b-qlora.yaml --base-model /tmp/falcon-bench/model \
        --max-steps 5 --out-dir /tmp/falcon-adapter 2>&1 | grep -E "INFO|Error|error" || true
    python3 -m benchmarks.gpu_training --model-dir /tmp/falcon-bench/model --steps 30 --out "$OUT" 2>&1 \
      | grep -v "it/s\]\|s/it\]" | tee "$OUT/training.log" ;;
esac
