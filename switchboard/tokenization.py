"""Tokenization shared by training and serving (``tokenizers`` only: no torch, no transformers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from switchboard.errors import BundleError

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class EncodedBatch:
    """Padded int64 model inputs for a batch, plus which items lost tokens to truncation."""

    input_ids: NDArray[np.int64]
    attention_mask: NDArray[np.int64]
    token_type_ids: NDArray[np.int64]
    truncated: list[bool]

    def as_feed(self) -> dict[str, NDArray[np.int64]]:
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "token_type_ids": self.token_type_ids,
        }


class Encoder:
    """Wraps a ``tokenizer.json``: truncates to ``max_length`` tokens and pads to the longest item."""

    def __init__(self, tokenizer: Tokenizer, max_length: int) -> None:
        if max_length < 4:
            raise ValueError("max_length must be at least 4 tokens")
        self.max_length = max_length
        self._tok = tokenizer
        self._tok.no_padding()
        self._tok.no_truncation()
        pad_id = self._tok.token_to_id("[PAD]")
        self.pad_id = 0 if pad_id is None else pad_id

    @classmethod
    def from_file(cls, path: str | Path, max_length: int) -> Encoder:
        path = Path(path)
        if not path.is_file():
            raise BundleError(f"tokenizer file not found: {path}")
        try:
            return cls(Tokenizer.from_file(str(path)), max_length)
        except Exception as exc:  # tokenizers raises a bare Exception on a malformed file
            raise BundleError(f"cannot read tokenizer {path}: {exc}") from exc

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size())

    def encode(self, texts: list[str]) -> EncodedBatch:
        """Encode cleaned texts; special tokens included, truncation keeps the first tokens."""
        encodings = self._tok.encode_batch(texts, add_special_tokens=True)
        truncated: list[bool] = []
        rows: list[list[int]] = []
        types: list[list[int]] = []
        for enc in encodings:
            ids, tt = list(enc.ids), list(enc.type_ids)
            cut = len(ids) > self.max_length
            if cut:  # keep [CLS] ... and the final [SEP]
                ids = [*ids[: self.max_length - 1], ids[-1]]
                tt = tt[: self.max_length]
            truncated.append(cut)
            rows.append(ids)
            types.append(tt)
        width = max((len(r) for r in rows), default=1)
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        token_types = np.zeros((len(rows), width), dtype=np.int64)
        for i, (r, t) in enumerate(zip(rows, types, strict=True)):
            input_ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
            token_types[i, : len(t)] = t
        return EncodedBatch(input_ids, mask, token_types, truncated)
