"""The obvious alternative a user would write, for the load-test comparison: FastAPI + the same fine-tuned
network in torch, a transformers fast tokenizer, one forward pass per request (no ONNX, no batching across
requests). Launched by evaluation/loadtest.py as

    SWITCHBOARD_CHECKPOINT=<run>/checkpoint uvicorn evaluation.torch_server:create_app --factory
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import PreTrainedTokenizerFast

from training.network import load_checkpoint


class Item(BaseModel):
    text: str


class Batch(BaseModel):
    items: list[Item]


def create_app() -> FastAPI:
    checkpoint = load_checkpoint(Path(os.environ["SWITCHBOARD_CHECKPOINT"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(checkpoint.tokenizer_file), pad_token="[PAD]")
    model, labels, taxonomy = checkpoint.model.eval(), checkpoint.labels, checkpoint.taxonomy

    @torch.no_grad()
    def predict(texts: list[str]) -> list[dict[str, Any]]:
        inputs = tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=checkpoint.max_length,
            return_tensors="pt",
            return_token_type_ids=True,
        )
        probs = torch.softmax(model(**inputs), dim=-1)
        best = probs.argmax(dim=-1).tolist()
        return [
            {"category": labels[b], "owner": taxonomy.leaf_owner[labels[b]], "confidence": float(probs[i, b])}
            for i, b in enumerate(best)
        ]

    app = FastAPI(title="torch baseline")

    @app.post("/v1/classify")
    def classify(body: Item | Batch) -> Any:
        if isinstance(body, Item):
            return predict([body.text])[0]
        return {"results": predict([i.text for i in body.items])}

    @app.get("/readyz")
    def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app
