"""Decoding loops of our own for the local generator (CPU: Llama family; GPU: Falcon)."""
