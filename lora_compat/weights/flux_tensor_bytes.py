"""Facts a FLUX converter and checker read from an adapter's tensor bytes (streamed, no torch, no numpy): whether
the downs of a fused module's parts are identical, whether an up is block-diagonal over its parts (``split_qkv``).
"""

from __future__ import annotations

import os
from collections.abc import Generator

from lora_compat.weights.layouts import AdapterModule
from lora_compat.weights.safetensors_io import COPY_CHUNK, DTYPE_SIZES, _pread


def read_tensor_bytes(m: AdapterModule, role: str, start: int = 0,
                      length: int | None = None) -> Generator[bytes, None, None]:
    """The bytes of one of ``m``'s tensors (``length`` bytes from ``start``), in chunks of at most COPY_CHUNK."""
    e = m.tensors[role]
    fd = os.open(m.source.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        off, rem = e.start + start, (e.nbytes - start if length is None else length)
        while rem:
            data = _pread(fd, min(rem, COPY_CHUNK), off)
            if not data:
                raise OSError("source file ended early")
            yield data
            off += len(data)
            rem -= len(data)
    finally:
        os.close(fd)


def identical_downs(mods: list[AdapterModule]) -> bool:
    """Whether every module's down is bit-identical (same dtype, shape and bytes): the shared down of a fused LoRA."""
    first = mods[0].tensors["down"]
    if any(m.tensors["down"].dtype != first.dtype or m.tensors["down"].shape != first.shape for m in mods[1:]):
        return False
    readers = [read_tensor_bytes(m, "down") for m in mods]
    try:  # same shapes and dtypes: the readers yield equal-sized chunks
        return all(all(c == chunks[0] for c in chunks[1:]) for chunks in zip(*readers, strict=True))
    finally:
        for r in readers:
            r.close()


_SIGN_MASK = {2: 0x7FFF, 4: 0x7FFFFFFF}


def block_diagonal(m: AdapterModule, rows: tuple[int, ...]) -> bool:
    """Whether ``m``'s up is block-diagonal over its parts (``rows`` each, rank split evenly), exact zeros (either
    sign) elsewhere: how ``split_qkv`` saves; sd-scripts and diffusers chunk the down only then."""
    n = len(rows)
    r = m.lora_rank
    if n < 2 or r % n:
        return False
    up = m.tensors["up"]
    es = DTYPE_SIZES[up.dtype]
    if es not in _SIGN_MASK:
        return False
    rp = r // n
    row_bytes = r * es
    lane = _SIGN_MASK[es].to_bytes(es, "little")
    # A dense up (the common case) shows non-zero off-diagonal values in its first rows: one small read decides.
    probe = min(rows[0], 8)
    head = b"".join(read_tensor_bytes(m, "up", 0, probe * row_bytes))
    if int.from_bytes(head, "little") & int.from_bytes((bytes(rp * es) + lane * ((n - 1) * rp)) * probe, "little"):
        return False
    off = 0
    for j, count in enumerate(rows):
        # mask of one row: the sign-less bits of every off-diagonal element
        row_mask = lane * (j * rp) + bytes(rp * es) + lane * ((n - j - 1) * rp)
        per = max(1, COPY_CHUNK // row_bytes)
        done = 0
        while done < count:
            k = min(per, count - done)
            data = b"".join(read_tensor_bytes(m, "up", (off + done) * row_bytes, k * row_bytes))
            if int.from_bytes(data, "little") & int.from_bytes(row_mask * k, "little"):
                return False
            done += k
        off += count
    return True
