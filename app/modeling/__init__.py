"""Base models, quantisation, LoRA adapters and int4 weights: the loading code shared by serving and training."""
