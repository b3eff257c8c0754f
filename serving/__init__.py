"""Serving: the FastAPI app over a model bundle (onnxruntime + tokenizers; never imports torch)."""
