from __future__ import annotations

import pytest

from switchboard.errors import InputError
from switchboard.text import clean_text
from switchboard.tokenization import Encoder
from tests.conftest import packaged_tokenizer


def test_clean_text_normalises_unicode_whitespace_and_controls() -> None:
    cleaned = clean_text("  \uff34he\u200b app\tcrashed\n\n again\x07 ")
    assert cleaned.text == "The app crashed again"
    assert not cleaned.truncated


@pytest.mark.parametrize("raw", ["", "   ", "\n\t", "\u200b\u200b"])
def test_empty_text_is_an_input_error(raw: str) -> None:
    with pytest.raises(InputError, match="empty"):
        clean_text(raw)


def test_non_string_is_an_input_error() -> None:
    with pytest.raises(InputError, match="must be a string"):
        clean_text(42)  # type: ignore[arg-type]


def test_over_long_text_is_cut_and_flagged() -> None:
    cleaned = clean_text("word " * 100, max_chars=50)
    assert len(cleaned.text) <= 50
    assert cleaned.truncated


def test_encoder_pads_truncates_and_matches_single_encoding() -> None:
    enc = Encoder.from_file(packaged_tokenizer(), max_length=8)
    batch = enc.encode(["short one", "this sentence is much longer than eight word pieces for sure"])
    assert batch.input_ids.shape == (2, 8)
    assert batch.truncated == [False, True]
    assert batch.input_ids[1, -1] == enc._tok.token_to_id("[SEP]")
    assert batch.attention_mask[0].sum() == 4  # [CLS] short one [SEP]
    single = enc.encode(["short one"])
    assert single.input_ids[0].tolist() == batch.input_ids[0, :4].tolist()
    assert (batch.input_ids[0, 4:] == enc.pad_id).all()
