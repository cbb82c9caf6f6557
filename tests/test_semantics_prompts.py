"""Weighted-caption parsing and long-prompt chunking (no golden file: sd-scripts' docstring examples and
the chunk layout of reference §4.5.2)."""

from __future__ import annotations

import pytest

from lora_compat.semantics import chunk_token_ids, parse_prompt_attention

# the examples in the docstring of sd-scripts' custom_train_functions.parse_prompt_attention
DOC_EXAMPLES = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    ("\\(literal\\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
     [("a ", 1.0), ("house", 1.5730000000000004), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55),
      (", sun, ", 1.1), ("sky", 1.4641000000000006), (".", 1.1)]),
]


@pytest.mark.parametrize("text,expected", DOC_EXAMPLES)
def test_parse_prompt_attention_doc_examples(text: str, expected: list) -> None:
    assert parse_prompt_attention(text) == expected


def test_parse_prompt_attention_edge_cases() -> None:
    assert parse_prompt_attention("") == [("", 1.0)]
    assert parse_prompt_attention("[weak]") == [("weak", 1 / 1.1)]
    assert parse_prompt_attention("a\\\\b") == [("a\\b", 1.0)]
    assert parse_prompt_attention("x:y") == [("x:y", 1.0)]        # a bare colon is text


BOS, EOS, PAD2 = 49406, 49407, 0


def _padded(n_tokens: int, length: int, pad: int) -> list[int]:
    ids = [BOS, *list(range(1, n_tokens + 1)), EOS]
    return (ids + [pad] * (length - len(ids)))[:length]


def test_chunks_pad_equals_eos_sd1() -> None:
    ids = _padded(80, 227, EOS)
    chunks = chunk_token_ids(ids, eos_id=EOS, pad_id=EOS)
    assert [len(c) for c in chunks] == [77, 77, 77]
    assert chunks[0] == [BOS, *list(range(1, 76)), EOS]
    assert chunks[1][:7] == [BOS, 76, 77, 78, 79, 80, EOS] and chunks[1][-1] == EOS
    assert chunks[2] == [BOS] + [EOS] * 76


def test_chunks_pad_differs_from_eos_sd2_sdxl() -> None:
    ids = _padded(80, 227, PAD2)
    chunks = chunk_token_ids(ids, eos_id=EOS, pad_id=PAD2)
    assert chunks[0][-2] == 75 and chunks[0][-1] == EOS          # text runs to the end: close with EOS
    assert chunks[1][5] == 80 and chunks[1][6] == EOS and chunks[1][-1] == PAD2
    assert chunks[2][:3] == [BOS, EOS, PAD2]                     # BOS PAD ... -> BOS EOS PAD ...


def test_short_sequence_is_one_chunk() -> None:
    ids = _padded(5, 77, EOS)
    assert chunk_token_ids(ids, eos_id=EOS, pad_id=EOS) == [ids]
