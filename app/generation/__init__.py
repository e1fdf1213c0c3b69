"""Turning prompts into answers: the generator interface, the worker, the local and OpenAI generators."""
