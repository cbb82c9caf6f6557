"""Prompts: weighted-caption parsing (``custom_train_functions.parse_prompt_attention``) and
``max_token_length`` chunking (``BaseDataset.get_input_ids`` / ``strategy_base._get_input_ids``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_ATTENTION = re.compile(r"""
\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:([+-]?[.\d]+)\)|\)|]|[^\\()\[\]:]+|:
""", re.X)


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """Split a weighted caption into ``(text, weight)`` pieces (``--weighted_captions``).

    ``(x)`` multiplies by 1.1, ``[x]`` divides by 1.1, ``(x:w)`` multiplies by ``w``; ``\\(``, ``\\)``,
    ``\\[``, ``\\]``, ``\\\\`` are literals; unclosed brackets apply to the rest; neighbouring pieces with
    equal weight are merged; an empty text gives ``[("", 1.0)]``.
    """
    pieces: list[list[Any]] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def scale(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            piece[1] *= factor

    for m in _ATTENTION.finditer(text):
        token, weight = m.group(0), m.group(1)
        if token.startswith("\\"):
            pieces.append([token[1:], 1.0])
        elif token == "(":
            round_open.append(len(pieces))
        elif token == "[":
            square_open.append(len(pieces))
        elif weight is not None and round_open:
            scale(round_open.pop(), float(weight))
        elif token == ")" and round_open:
            scale(round_open.pop(), 1.1)
        elif token == "]" and square_open:
            scale(square_open.pop(), 1 / 1.1)
        else:
            pieces.append([token, 1.0])
    for start in round_open:
        scale(start, 1.1)
    for start in square_open:
        scale(start, 1 / 1.1)
    if not pieces:
        return [("", 1.0)]
    merged: list[list[Any]] = [pieces[0]]
    for piece in pieces[1:]:
        if piece[1] == merged[-1][1]:
            merged[-1][0] += piece[0]
        else:
            merged.append(piece)
    return [(t, w) for t, w in merged]


def chunk_token_ids(ids: Sequence[int], *, eos_id: int, pad_id: int, model_max_length: int = 77) -> list[list[int]]:
    """Cut a padded id sequence of length ``max_token_length + 2`` (152 or 227) into 77-id chunks.

    Chunk k is ``[ids[0]] + ids[1+75k : 76+75k] + [ids[-1]]`` (BOS, 75 ids, the last id of the whole
    sequence). When ``pad_id != eos_id`` (SD2, SDXL tokenizer 2) each chunk is fixed: a chunk whose
    second-to-last id is neither EOS nor PAD ends with EOS, and ``BOS PAD ...`` becomes ``BOS EOS PAD ...``.
    A sequence of ``model_max_length`` ids or fewer is returned as one chunk.
    """
    ids = list(ids)
    if len(ids) <= model_max_length:
        return [ids]
    inner = model_max_length - 2
    chunks = []
    for start in range(1, len(ids) - model_max_length + 2, inner):
        chunk = [ids[0], *ids[start:start + inner], ids[-1]]
        if pad_id != eos_id:
            if chunk[-2] != eos_id and chunk[-2] != pad_id:
                chunk[-1] = eos_id
            if chunk[1] == pad_id:
                chunk[1] = eos_id
        chunks.append(chunk)
    return chunks
