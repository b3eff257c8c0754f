"""The one text-preprocessing path, shared by training, evaluation and serving.

``clean_text`` normalises a raw feedback string; ``Encoder`` (switchboard.tokenization) turns
cleaned text into model inputs. Training and serving both call exactly these two, so the model
never sees text prepared differently from how it was trained.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from switchboard.errors import InputError

DEFAULT_MAX_CHARS = 5_000
_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200d\ufeff]")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class CleanText:
    """A normalised feedback text and whether it was cut to the character limit."""

    text: str
    truncated: bool


def clean_text(raw: str, max_chars: int = DEFAULT_MAX_CHARS) -> CleanText:
    """Normalise unicode (NFKC), drop control/zero-width characters, collapse whitespace, cap length.

    Raises ``InputError`` for text that is empty once cleaned.
    """
    if not isinstance(raw, str):
        raise InputError(f"text must be a string, got {type(raw).__name__}")
    text = unicodedata.normalize("NFKC", raw)
    text = _CONTROL.sub("", text)
    text = _SPACE.sub(" ", text).strip()
    if not text:
        raise InputError("text is empty or only whitespace")
    truncated = len(text) > max_chars
    if truncated:
        text = text[:max_chars].rstrip()
    return CleanText(text=text, truncated=truncated)
