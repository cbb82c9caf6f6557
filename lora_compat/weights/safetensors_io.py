"""Streaming safetensors I/O without torch: strict header parsing, and writing by copying byte ranges.

Format: 8-byte little-endian header length N, N bytes of JSON (``{"__metadata__": {str: str}, name: {"dtype",
"shape", "data_offsets": [begin, end]}, ...}``), then the data buffer that the offsets index. The reader checks
everything a hostile or broken file can get wrong and raises :class:`~lora_compat.errors.UserError` naming the
file and the tensor. The writer lays tensors out exactly like the ``safetensors`` library (sorted by dtype, then
name; header padded with spaces to 8 bytes), copies unchanged tensors kernel-side with ``splice`` through a pipe
(constant memory; see :class:`_Appender`) and writes atomically (temp file in the destination folder, then
``os.replace``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import struct
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from lora_compat.atomic import staged_file
from lora_compat.errors import UserError
from lora_compat.weights.untrusted import open_input, parse_json, what_is

#: Bytes per element of every dtype we read or write.
DTYPE_SIZES: dict[str, int] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8,
}
# The safetensors library sorts tensors by its Dtype enum (descending), then by name: we do the same so that our
# files are laid out byte for byte like safetensors.torch.save_file's (and sd-scripts' hashes can be reproduced).
_DTYPE_ORDER = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16",
                "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"]
DTYPE_RANK = {d: i for i, d in enumerate(_DTYPE_ORDER)}

MAX_HEADER_BYTES = 100 * 1024 * 1024
COPY_CHUNK = 8 * 1024 * 1024
#: Windows opens raw descriptors in text mode (CRLF translation) unless asked for binary.
O_BINARY = getattr(os, "O_BINARY", 0)


def _pread_seek(fd: int, n: int, offset: int) -> bytes:
    """``os.pread`` for platforms without it (Windows): seek, then read (descriptors here are not shared)."""
    os.lseek(fd, offset, os.SEEK_SET)
    out = b""
    while len(out) < n:
        chunk = os.read(fd, n - len(out))
        if not chunk:
            break
        out += chunk
    return out


_pread = getattr(os, "pread", _pread_seek)


class TensorEntry(NamedTuple):
    """One tensor of a safetensors file: absolute byte range ``[start, end)`` in the file.

    A named tuple rather than a frozen dataclass: an SDXL LoRA header has ~3000 of them and a frozen dataclass is
    ~4x slower to build (6 ms of an SDXL header parse).
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass
class SafetensorsFile:
    """A parsed, validated header. ``tensors`` keeps the header's key order."""

    path: Path
    header_len: int
    metadata: dict[str, str]
    tensors: dict[str, TensorEntry]
    data_start: int
    file_size: int

    def read_bytes(self, name: str) -> bytes:
        """The raw bytes of one tensor (small tensors only: alphas, DoRA scales, verification)."""
        e = self.tensors[name]
        fd = self.__dict__.get("_fd")
        if fd is None:  # one descriptor per file, closed when the object goes away
            fd = self.__dict__["_fd"] = os.open(self.path, os.O_RDONLY | O_BINARY)
            weakref.finalize(self, os.close, fd)
        data = _pread(fd, e.nbytes, e.start)
        if len(data) != e.nbytes:
            raise shrank(self.path, name)
        return data

    def read_scalar(self, name: str) -> float:
        """The value of a 1-element tensor (an alpha), as a Python float."""
        e = self.tensors[name]
        if e.numel != 1:
            raise UserError(f"expected a single value, got shape {list(e.shape)}", file=str(self.path), key=name)
        return decode_values(self.read_bytes(name), e.dtype)[0]


def _err(path: Path | str, msg: str, key: str | None = None) -> UserError:
    return UserError(msg, file=str(path), key=key)


def shrank(path: Path | str, key: str | None = None) -> UserError:
    """The error for an input that is shorter than its header said when its bytes are read (changed meanwhile)."""
    return UserError("file shrank while being read (changed by another program?)", file=str(path), key=key)


def _check_entry(path: Path, name: str, info: object, data_len: int) -> None:
    """Raise the UserError that says what is wrong with one tensor entry of a header."""
    sizes = DTYPE_SIZES
    if type(info) is not dict:
        raise _err(path, "tensor entry must be an object", key=name)
    if len(info) != 3 or "dtype" not in info or "shape" not in info or "data_offsets" not in info:
        extra = sorted(set(info) - {"dtype", "shape", "data_offsets"})
        missing = sorted({"dtype", "shape", "data_offsets"} - set(info))
        raise _err(path, f"tensor entry has unexpected field(s) {extra} / lacks {missing}", key=name)
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if type(dtype) is not str or dtype not in sizes:
        raise _err(path, f"unknown or unsupported dtype {dtype!r}", key=name)
    if type(shape) is not list or len(shape) > 8:
        raise _err(path, f"shape must be a list of non-negative integers, got {shape!r}", key=name)
    numel = 1
    for d in shape:
        if type(d) is not int or d < 0 or d >= 2**53:
            raise _err(path, f"shape must be a list of non-negative integers, got {shape!r}", key=name)
        numel *= d
    if type(offsets) is not list or len(offsets) != 2 or type(offsets[0]) is not int \
            or type(offsets[1]) is not int:
        raise _err(path, f"data_offsets must be [begin, end] integers, got {offsets!r}", key=name)
    begin, end = offsets
    if not 0 <= begin <= end:
        raise _err(path, f"data_offsets {offsets} are not ordered", key=name)
    if end > data_len:
        raise _err(path, f"data_offsets {offsets} point past the end of the data ({data_len} bytes): "
                         "truncated file or corrupt header", key=name)
    if numel * sizes[dtype] != end - begin:
        raise _err(path, f"shape {shape} x {dtype} needs {numel * sizes[dtype]} bytes but data_offsets "
                         f"span {end - begin}", key=name)


def read_header(path: Path | str) -> SafetensorsFile:
    """Parse and validate the header of a safetensors file; raise UserError on anything malformed.

    Checks: not a regular file (FIFO, device: refused without blocking), file shorter than 8 bytes, header length
    past the end of the file or over 100 MB, a file of another kind (JSON, PNG, pickle...: named), header not
    UTF-8 / not JSON / not an object, ``NaN``/``Infinity``, integers of thousands of digits, duplicate keys,
    ``__metadata__`` not a str->str map, unknown dtype, bad shape or offsets, shape x dtype size != byte length,
    offsets overlapping, leaving gaps, not covering the data buffer. (The JSON parse is
    :func:`lora_compat.weights.untrusted.parse_json`; the structure check below bounds every number and the depth.)
    """
    path = Path(path)
    fd = open_input(path)
    try:
        size = os.fstat(fd).st_size
        prefix = _pread(fd, 64, 0)
        if len(prefix) < 8:
            what = what_is(prefix) if prefix else None
            raise _err(path, f"{what}, not a safetensors file" if what else
                       f"not a safetensors file: truncated ({size} bytes, the 8-byte header length is missing)")
        (n,) = struct.unpack("<Q", prefix[:8])
        if n > MAX_HEADER_BYTES or 8 + n > size or (n and prefix[8:9] != b"{"):
            what = what_is(prefix)
            if what:
                raise _err(path, f"{what}, not a safetensors file")
        if n > MAX_HEADER_BYTES:
            raise _err(path, f"safetensors header length {n} exceeds the 100 MB limit (corrupt or hostile file)")
        if 8 + n > size:
            raise _err(path, f"truncated safetensors file: header length {n} runs past the end of the file "
                             f"({size} bytes)")
        raw = _pread(fd, n, 8)
        if len(raw) != n:
            raise _err(path, "file shrank while being read")
    except OSError as exc:
        raise _err(path, f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    header = parse_json(raw, file=str(path), what="safetensors header", max_bytes=MAX_HEADER_BYTES, max_depth=None)
    if not isinstance(header, dict):
        raise _err(path, f"safetensors header must be a JSON object, got {type(header).__name__}")
    metadata: dict[str, str] = {}
    meta = header.pop("__metadata__", None)
    if meta is not None:
        if not isinstance(meta, dict):
            raise _err(path, "must be an object of strings", key="__metadata__")
        for k, v in meta.items():
            if not isinstance(v, str):
                raise _err(path, f"metadata values must be strings, got {type(v).__name__}", key=f"__metadata__.{k}")
        metadata = dict(meta)
    data_start = 8 + n
    data_len = size - data_start
    entries: list[TensorEntry] = []
    sizes = DTYPE_SIZES
    for name, info in header.items():
        # Fast path for a well-formed entry; anything else goes through _check_entry, which names the problem.
        # type(...) is int: JSON gives exact ints, and bools (a subclass of int) must not pass as sizes.
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            ok = (type(info) is dict and len(info) == 3 and type(dtype) is str and type(shape) is list
                  and len(shape) <= 8 and type(begin) is int and type(end) is int and 0 <= begin <= end <= data_len)
            if ok:
                numel = sizes[dtype]
                for d in shape:
                    if type(d) is not int or not 0 <= d < 2**53:
                        ok = False
                        break
                    numel *= d
                ok = ok and numel == end - begin
        except (TypeError, KeyError, ValueError, IndexError):
            ok = False
        if not ok:
            _check_entry(path, name, info, data_len)
            raise _err(path, "malformed tensor entry", key=name)  # pragma: no cover - _check_entry raised
        entries.append(TensorEntry(name, dtype, tuple(shape), data_start + begin, data_start + end))
    # The data buffer must be tiled exactly: no overlaps, no gaps, nothing left over (as safetensors requires).
    pos = data_start
    for e in sorted(entries, key=lambda e: (e.start, e.end)):
        if e.start < pos:
            raise _err(path, "data_offsets overlap another tensor's bytes", key=e.name)
        if e.start > pos:
            raise _err(path, f"gap of {e.start - pos} bytes before this tensor's data_offsets", key=e.name)
        pos = e.end
    if pos != size:
        raise _err(path, f"{size - pos} bytes after the last tensor are not covered by any data_offsets")
    return SafetensorsFile(path, n, metadata, {e.name: e for e in entries}, data_start, size)


# --- value encoding (pure Python; numpy only if already importable, for speed) ---------------------------------

_STRUCT = {"F32": "f", "F64": "d", "F16": "e", "I64": "q", "I32": "i", "I16": "h", "I8": "b", "U8": "B",
           "U16": "H", "U32": "I", "U64": "Q", "BOOL": "?"}


def _f8_table(exp_bits: int, man_bits: int, *, ieee_specials: bool) -> tuple[float, ...]:
    """All 256 values of an 8-bit float: sign, ``exp_bits`` exponent, ``man_bits`` mantissa, IEEE-style bias.

    ``ieee_specials``: an all-ones exponent is inf (mantissa 0) or NaN (E5M2). Otherwise only all-ones exponent
    *and* mantissa is NaN and there is no infinity (E4M3 "fn", the variant safetensors and torch call F8_E4M3).
    """
    bias = (1 << (exp_bits - 1)) - 1
    top = (1 << exp_bits) - 1
    out = []
    for byte in range(256):
        sign = -1.0 if byte & 0x80 else 1.0
        e = (byte >> man_bits) & top
        m = byte & ((1 << man_bits) - 1)
        if ieee_specials and e == top:
            out.append(sign * float("inf") if m == 0 else float("nan"))
        elif not ieee_specials and e == top and m == (1 << man_bits) - 1:
            out.append(float("nan"))
        elif e == 0:
            out.append(sign * m * 2.0 ** (1 - bias - man_bits))
        else:
            out.append(sign * (1 + m / (1 << man_bits)) * 2.0 ** (e - bias))
    return tuple(out)


_F8_TABLES: dict[str, tuple[float, ...]] = {}


def _f8_values(dtype: str) -> tuple[float, ...]:
    table = _F8_TABLES.get(dtype)
    if table is None:
        if dtype == "F8_E4M3":
            table = _f8_table(4, 3, ieee_specials=False)
        elif dtype == "F8_E5M2":
            table = _f8_table(5, 2, ieee_specials=True)
        else:  # F8_E8M0: unsigned power of two 2^(e-127), 0xFF is NaN (the OCP MX scale format)
            table = tuple(float("nan") if e == 255 else 2.0 ** (e - 127) for e in range(256))
        _F8_TABLES[dtype] = table
    return table


def decode_values(data: bytes, dtype: str) -> list[float]:
    """Decode little-endian tensor bytes into Python numbers: every dtype of :data:`DTYPE_SIZES` (BF16 and the
    8-bit floats included), so that anything the header check accepts can be read."""
    if dtype == "BF16":
        n = len(data) // 2
        halves = struct.unpack(f"<{n}H", data)
        return list(struct.unpack(f"<{n}f", struct.pack(f"<{n}I", *(h << 16 for h in halves))))
    if dtype.startswith("F8_"):
        table = _f8_values(dtype)
        return [table[b] for b in data]
    code = _STRUCT.get(dtype)
    if code is None:
        raise ValueError(f"cannot decode dtype {dtype}")
    n = len(data) // DTYPE_SIZES[dtype]
    return list(struct.unpack(f"<{n}{code}", data))


def encode_values(values: list[float], dtype: str) -> bytes:
    """Encode Python numbers as little-endian ``dtype`` bytes with round-to-nearest-even (like torch)."""
    if dtype == "BF16":
        return _f32_bits_to_bf16(struct.pack(f"<{len(values)}f", *values))
    if dtype == "F16":
        n = len(values)  # via float32 first, as before: values are float32 data in every caller
        return _f64_to_f16(struct.unpack(f"<{n}f", struct.pack(f"<{n}f", *values)))
    code = _STRUCT[dtype]
    return struct.pack(f"<{len(values)}{code}", *values)


def _f32_bits_to_bf16(f32: bytes) -> bytes:
    n = len(f32) // 4
    out = []
    for x in struct.unpack(f"<{n}I", f32):
        if (x & 0x7FFFFFFF) > 0x7F800000:          # NaN: keep it a (quiet) NaN, never round it into inf
            out.append((x >> 16) | 0x40)
        else:
            out.append((x + 0x7FFF + ((x >> 16) & 1)) >> 16)
    return struct.pack(f"<{n}H", *out)


def cast_bytes(data: bytes, src: str, dst: str, factor: float = 1.0) -> bytes:
    """Convert float tensor bytes between F32, F16 and BF16, optionally multiplied by ``factor``.

    Up-casts are exact; down-casts round to nearest even like torch. With a factor, the product is formed in
    float64 and rounded once to ``dst``.
    """
    if src == dst and factor == 1.0:
        return data
    for d in (src, dst):
        if d not in ("F32", "F16", "BF16"):
            raise ValueError(f"cannot cast {d}")
    np = optional_numpy()  # numpy is optional (not a base dependency); it only makes --dtype/--bake-scale faster.
    if np is not None:
        return _cast_numpy(np, data, src, dst, factor)
    n = len(data) // DTYPE_SIZES[src]
    vals: Sequence[float]
    if src == "F32":
        vals = struct.unpack(f"<{n}f", data)
    elif src == "F16":
        vals = struct.unpack(f"<{n}e", data)
    else:
        vals = struct.unpack(f"<{n}f", struct.pack(f"<{n}I", *(h << 16 for h in struct.unpack(f"<{n}H", data))))
    if factor != 1.0:
        vals = [v * factor for v in vals]
    return _encode_floats(vals, dst)


def _encode_floats(vals, dst: str) -> bytes:
    n = len(vals)
    if dst == "F32":
        try:
            return struct.pack(f"<{n}f", *vals)
        except OverflowError:
            return b"".join(_pack_f32_saturating(v) for v in vals)
    if dst == "F16":
        return _f64_to_f16(vals)
    # BF16: round the float64 value to float32 first would double-round; do it from the float32 bits when the value
    # is already a float32 (casts), which is the common path; products take one extra rounding (documented).
    return _f32_bits_to_bf16(_encode_floats(vals, "F32"))


def _pack_f32_saturating(v: float) -> bytes:
    try:
        return struct.pack("<f", v)
    except OverflowError:
        return struct.pack("<f", float("inf") if v > 0 else float("-inf"))


def _f64_to_f16(vals) -> bytes:
    try:
        return struct.pack(f"<{len(vals)}e", *vals)
    except OverflowError:
        parts = []
        for v in vals:
            try:
                parts.append(struct.pack("<e", v))
            except OverflowError:
                parts.append(struct.pack("<e", float("inf") if v > 0 else float("-inf")))
        return b"".join(parts)


def _cast_numpy(np, data: bytes, src: str, dst: str, factor: float = 1.0) -> bytes:
    if src == "BF16":
        vals = (np.frombuffer(data, dtype="<u2").astype("<u4") << 16).view("<f4")
    else:
        vals = np.frombuffer(data, dtype={"F32": "<f4", "F16": "<f2"}[src])
    with np.errstate(over="ignore", invalid="ignore"):
        if factor != 1.0:
            vals = vals.astype("<f8") * factor      # one rounding to the output dtype below, as in the pure path
        if dst == "F16":
            return vals.astype("<f2").tobytes()
        f32 = vals.astype("<f4")
    if dst == "F32":
        return f32.tobytes()
    bits = f32.view("<u4")
    nan = (bits & 0x7FFFFFFF) > 0x7F800000
    rounded = ((bits.astype("<u8") + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")
    rounded = np.where(nan, ((bits >> 16) | 0x40).astype("<u2"), rounded)
    return rounded.astype("<u2").tobytes()


# --- writing ------------------------------------------------------------------------------------------------------

class ByteRange(NamedTuple):
    """Copy ``length`` bytes at ``offset`` of ``path`` unchanged."""

    path: Path
    offset: int
    length: int


class CastRange(NamedTuple):
    """Read a tensor's bytes from ``path`` and cast them from ``src`` to ``dst`` dtype (chunked, constant memory)."""

    path: Path
    offset: int
    length: int
    src: str
    dst: str
    factor: float = 1.0


class Zeros(NamedTuple):
    """``length`` zero bytes (0.0 in every float dtype): missing parts of a fused LoRA, off-diagonal blocks."""

    length: int


class Pieces(NamedTuple):
    """A tensor written from several sources in order: ``ByteRange`` (copied like a whole tensor), ``CastRange``,
    ``bytes``, ``Zeros`` or a computed source (any object with ``path``, ``offset``, ``length`` and
    ``chunks(fd_of) -> Iterator[bytes]``, ``fd_of(path)`` giving an open descriptor)."""

    parts: tuple

    @property
    def length(self) -> int:
        return sum(_source_length(p) for p in self.parts)

    @property
    def anchor(self) -> tuple[str, int]:
        """(path, offset) of the first part that reads a file, for :func:`source_order`."""
        for p in self.parts:
            if hasattr(p, "path"):
                return str(p.path), p.offset
        return "", 0


def _source_length(src) -> int:
    if isinstance(src, (bytes, bytearray)):
        return len(src)
    return src.length


Source = ByteRange | CastRange | bytes | Zeros | Pieces


class OutTensor(NamedTuple):
    """A tensor to write: name, dtype, shape and where its bytes come from (named tuples, like TensorEntry: cheap
    to build by the thousand)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    source: Source

    @property
    def nbytes(self) -> int:
        n = DTYPE_SIZES[self.dtype]
        for d in self.shape:
            n *= d
        return n


def canonical_order(tensors: list[OutTensor]) -> list[OutTensor]:
    """The order the safetensors library writes tensors in: dtype (descending), then name."""
    return sorted(tensors, key=lambda t: (-DTYPE_RANK[t.dtype], t.name))


def build_header(tensors: list[OutTensor], metadata: dict[str, str] | None) -> bytes:
    """Header bytes (length prefix + JSON padded to 8) for ``tensors`` in the given order.

    Serialised like the safetensors library (compact JSON, metadata keys sorted, non-ASCII kept as UTF-8) so that
    header lengths, and therefore sd-scripts' legacy hash offsets, match files it writes.
    """
    # Assembled from pieces rather than json.dumps of one big dict: the same bytes, ~4x faster for the ~3000
    # entries of an SDXL LoRA. Names go through json's own string encoder (escapes, UTF-8 kept).
    enc = json.encoder.encode_basestring
    parts = []
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"metadata must be str -> str, got {k!r}: {type(v).__name__}")
        parts.append('"__metadata__":' + json.dumps(dict(sorted(metadata.items())), separators=(",", ":"),
                                                     ensure_ascii=False))
    pos = 0
    for name, dtype, shape, _ in tensors:
        nb = DTYPE_SIZES[dtype]
        for d in shape:
            nb *= d
        parts.append(f'{enc(name)}:{{"dtype":{enc(dtype)},"shape":[{",".join(map(str, shape))}],'
                     f'"data_offsets":[{pos},{pos + nb}]}}')
        pos += nb
    text = ("{" + ",".join(parts) + "}").encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


@dataclass
class WriteResult:
    """What :func:`write_safetensors` wrote."""

    nbytes: int


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


_NO_SPLICE = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV, errno.EBADF)


class _NoSpliceError(Exception):
    """The filesystem refused splice after ``moved`` bytes of the current range went into the pipe."""

    def __init__(self, moved: int) -> None:
        super().__init__(moved)
        self.moved = moved


class _Appender:
    """Appends byte ranges of source files, and new bytes, to an output descriptor, in order.

    On Linux the ranges travel through a 1 MiB pipe with ``splice(2)`` and never enter user space: file -> pipe
    moves page references (several source ranges gather in the pipe), pipe -> file writes them into the output's
    page cache in chunks that end on 512 KiB output offsets. Measured on a 144 MiB LoRA (ext4, kernel 6.18) this
    copies as fast as ``cp``'s single ``copy_file_range``, where one ``copy_file_range`` per range was 1.4-1.6x
    slower whenever a range started past the output's first page or at another offset within a page than in the
    source (most likely because the kernel's internal 64 KiB pipe then writes chunks that straddle the page
    cache's large folios; chunking the output on aligned offsets ourselves removes the difference).
    Elsewhere (no ``os.splice``, or a filesystem that refuses it) a 1 MiB window read with ``pread`` and written
    with ``write``: one read serves many nearby small tensors.
    """

    PIPE_BYTES = 1 << 20
    ALIGN = 1 << 19
    WINDOW = 1 << 20

    def __init__(self, out_fd: int, pos: int) -> None:
        self.out, self.pos = out_fd, pos
        self.fds: dict[Path, int] = {}
        self.pipe: tuple[int, int] | None = None
        self.in_pipe = 0
        self.splice = hasattr(os, "splice")
        self.window: tuple[Path, int, memoryview] | None = None  # (path, start offset, bytes) of the last read

    def source_fd(self, path: Path) -> int:
        fd = self.fds.get(path)
        if fd is None:
            fd = self.fds[path] = os.open(path, os.O_RDONLY | O_BINARY)
        return fd

    def write(self, data) -> None:
        """Append new bytes (after everything queued)."""
        self.flush()
        _write_all(self.out, data)
        self.pos += len(data)

    def copy(self, path: Path, offset: int, length: int) -> None:
        """Append ``length`` bytes at ``offset`` of ``path``."""
        fd = self.source_fd(path)
        if self.splice:
            try:
                self._splice_in(path, fd, offset, length)
                return
            except _NoSpliceError as exc:  # this filesystem does not splice: empty the pipe the slow way, go on without
                self.splice = False
                self._unload_pipe()
                offset, length = offset + exc.moved, length - exc.moved
        self._window_copy(path, fd, offset, length)

    # --- splice ---------------------------------------------------------------------------------------------------

    def _splice_in(self, path: Path, fd: int, offset: int, length: int) -> None:
        if self.pipe is None:
            r, w = os.pipe()
            self.pipe = (r, w)
            try:
                import fcntl
                fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), self.PIPE_BYTES)
            except (OSError, ImportError):
                pass  # a smaller pipe only means more system calls
            os.set_blocking(w, False)
        w = self.pipe[1]
        done = 0
        while done < length:
            # Gather at most up to the next aligned output offset, then write that chunk out whole.
            room = self.ALIGN - (self.pos + self.in_pipe) % self.ALIGN
            try:
                got = os.splice(fd, w, min(length - done, room), offset_src=offset + done)
            except BlockingIOError:  # pipe full before the boundary (many partial pages): write what it holds
                if not self.in_pipe:
                    raise
                self._drain()
                if not self.splice:
                    raise _NoSpliceError(done) from None
                continue
            except OSError as exc:
                if exc.errno in _NO_SPLICE:
                    raise _NoSpliceError(done) from exc
                raise
            if got == 0:
                raise shrank(path)
            done += got
            self.in_pipe += got
            if got == room:
                self._drain()
                if not self.splice:
                    raise _NoSpliceError(done)

    def _drain(self) -> None:
        """Write everything in the pipe to the output; without splice support, empty it the slow way."""
        assert self.pipe is not None  # only called after _splice_in opened it
        r = self.pipe[0]
        try:
            while self.in_pipe:
                n = os.splice(r, self.out, self.in_pipe)
                if n == 0:
                    raise OSError(errno.EIO, "pipe drained early")
                self.in_pipe -= n
                self.pos += n
        except OSError as exc:
            if exc.errno not in _NO_SPLICE:
                raise
            self.splice = False
            self._unload_pipe()

    def _unload_pipe(self) -> None:
        assert self.pipe is not None  # only called after _splice_in opened it
        while self.in_pipe:
            chunk = os.read(self.pipe[0], min(self.in_pipe, self.PIPE_BYTES))
            _write_all(self.out, chunk)
            self.in_pipe -= len(chunk)
            self.pos += len(chunk)

    def flush(self) -> None:
        if self.in_pipe:
            self._drain()

    # --- user-space fallback --------------------------------------------------------------------------------------

    def _window_copy(self, path: Path, fd: int, offset: int, length: int) -> None:
        while length:
            win = self.window
            if win is None or win[0] != path or not win[1] <= offset < win[1] + len(win[2]):
                data = _pread(fd, self.WINDOW, offset)
                if not data:
                    raise shrank(path)
                win = self.window = (path, offset, memoryview(data))
            start = offset - win[1]
            take = min(length, len(win[2]) - start)
            _write_all(self.out, win[2][start:start + take])
            self.pos += take
            offset += take
            length -= take

    def close(self) -> None:
        if self.pipe is not None:
            for fd in self.pipe:
                os.close(fd)
            self.pipe = None
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


def source_order(tensors: list[OutTensor]) -> list[OutTensor]:
    """New small tensors (alphas) first, then tensors in the order their bytes sit in the sources (fast copies)."""
    def key(t: OutTensor):
        src = t.source
        if isinstance(src, (bytes, bytearray, Zeros)):
            return (0, "", 0, t.name)
        if isinstance(src, Pieces):
            path, offset = src.anchor
            return (1, path, offset, t.name)
        return (1, str(src.path), src.offset, t.name)
    return sorted(tensors, key=key)


def write_safetensors(dst: Path | str, tensors: list[OutTensor], metadata: dict[str, str] | None = None, *,
                      order: str = "canonical", atomic: bool = True) -> WriteResult:
    """Write a safetensors file atomically, streaming every tensor's bytes from its source.

    ``order="canonical"`` lays tensors out like the safetensors library; ``"source"`` follows the byte order of
    the sources (fastest copy); ``"given"`` keeps the list order. ``atomic=False`` writes ``dst`` in place: for a
    caller that already staged it with :func:`lora_compat.atomic.staged_file`. Returns the number of bytes written.
    """
    dst = Path(dst)
    if order == "canonical":
        tensors = canonical_order(tensors)
    elif order == "source":
        tensors = source_order(tensors)
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"duplicate output tensor names: {dup[:5]}")
    header = build_header(tensors, metadata)
    if not atomic:
        return WriteResult(_write_tensors(dst, header, tensors))
    with staged_file(dst, durable=False) as tmp:  # no fsync: ~5x the copy itself for a 150 MB LoRA; cp skips it too
        return WriteResult(_write_tensors(tmp, header, tensors))


def _write_tensors(path: Path, header: bytes, tensors: list[OutTensor]) -> int:
    total = len(header)
    out_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | O_BINARY, 0o666)
    out = _Appender(out_fd, 0)
    try:
        out.write(header)
        for t in tensors:
            src, nbytes = t.source, t.nbytes
            if type(src) is ByteRange:
                if src.length != nbytes:
                    raise ValueError(f"{t.name}: byte range of {src.length} for {nbytes} bytes")
                out.copy(src.path, src.offset, src.length)
            elif isinstance(src, (bytes, bytearray)):
                if len(src) != nbytes:
                    raise ValueError(f"{t.name}: {len(src)} bytes for shape {t.shape} {t.dtype}")
                out.write(src)
            else:  # casts, composite and computed sources
                written = _emit(out, src)
                if written != nbytes:
                    raise ValueError(f"{t.name}: the source produced {written} bytes for {nbytes}")
            total += nbytes
        out.flush()
    finally:
        out.close()
        os.close(out_fd)
    return total


def _emit(out: _Appender, src) -> int:
    """Append one (possibly composite) source; returns the bytes written."""
    if type(src) is ByteRange:
        out.copy(src.path, src.offset, src.length)
        return src.length
    if isinstance(src, (bytes, bytearray)):
        out.write(src)
        return len(src)
    if isinstance(src, Pieces):
        return sum(_emit(out, p) for p in src.parts)
    written = 0
    for chunk in _source_chunks(src, out.source_fd):
        out.write(chunk)
        written += len(chunk)
    return written


def _source_chunks(src, fd_of) -> Iterator[bytes | bytearray]:
    """The bytes of any source, in chunks (``fd_of(path)`` opens source files)."""
    if isinstance(src, (bytes, bytearray)):
        yield src
    elif isinstance(src, Zeros):
        rem = src.length
        while rem:
            n = min(rem, COPY_CHUNK)
            yield bytes(n)
            rem -= n
    elif isinstance(src, Pieces):
        for p in src.parts:
            yield from _source_chunks(p, fd_of)
    elif isinstance(src, ByteRange):
        fd = fd_of(src.path)
        off, rem = src.offset, src.length
        while rem:
            data = _pread(fd, min(rem, COPY_CHUNK), off)
            if not data:
                raise shrank(src.path)
            yield data
            off += len(data)
            rem -= len(data)
    elif isinstance(src, CastRange):
        yield from _cast_chunks(fd_of(src.path), src)
    elif hasattr(src, "chunks"):
        yield from src.chunks(fd_of)
    else:  # pragma: no cover - programming error
        raise TypeError(f"unknown source {src!r}")


class _LegacyWindow:
    """Collects the 64 KiB at file offset 1 MiB while the data streams by (sd-webui-additional-networks hash)."""

    START, SIZE = 0x100000, 0x10000

    def __init__(self, header_len: int) -> None:
        self.pos = header_len
        self.buf = bytearray()

    def feed(self, chunk) -> None:
        lo, hi = self.pos, self.pos + len(chunk)
        a, b = max(lo, self.START), min(hi, self.START + self.SIZE)
        if a < b:
            self.buf += bytes(chunk[a - lo:b - lo])
        self.pos = hi

    def hexdigest(self) -> str:
        return hashlib.sha256(bytes(self.buf)).hexdigest()[:8]


def sd_scripts_hashes(tensors: list[OutTensor], metadata: dict[str, str]) -> tuple[str, str]:
    """sd-scripts' ``(sshs_model_hash, sshs_legacy_hash)`` for these tensors and metadata.

    sd-scripts serialises the tensors with only the ``ss_*`` metadata keys, then hashes the bytes after the header
    (model hash) and the 64 KiB at offset 1 MiB of the whole serialisation (legacy hash, first 8 hex digits).
    Computed by streaming the tensor sources; nothing is written.
    """
    ordered = canonical_order(tensors)
    header = build_header(ordered, {k: v for k, v in metadata.items() if k.startswith("ss_")})
    sha = hashlib.sha256()
    legacy = _LegacyWindow(0)
    legacy.feed(header)
    fds: dict[Path, int] = {}

    def feed(chunk) -> None:
        sha.update(chunk)
        legacy.feed(chunk)

    def fd_of(path: Path) -> int:
        fd = fds.get(path)
        if fd is None:
            fd = fds[path] = os.open(path, os.O_RDONLY | O_BINARY)
        return fd

    try:
        for t in ordered:
            for chunk in _source_chunks(t.source, fd_of):
                feed(chunk)
    finally:
        for fd in fds.values():
            os.close(fd)
    return sha.hexdigest(), legacy.hexdigest()


def _infinities(np, data: bytes, dtype: str) -> int:
    if dtype == "BF16":
        return int(np.count_nonzero((np.frombuffer(data, dtype="<u2") & 0x7FFF) == 0x7F80))
    return int(np.count_nonzero(np.isinf(np.frombuffer(data, dtype={"F32": "<f4", "F16": "<f2"}[dtype]))))


def optional_numpy() -> ModuleType | None:
    """numpy when installed (an optional speed-up and the overflow check of casts), else None."""
    try:
        import numpy
    except ImportError:  # pragma: no cover - exercised where numpy is absent
        return None
    return numpy


def _cast_chunks(fd: int, src: CastRange) -> Iterator[bytes]:
    """The cast bytes of ``src`` in chunks; UserError when the cast (or a baked scale) turns finite values into
    infinities (checked where numpy is installed: without it the cast saturates silently, like torch)."""
    np = optional_numpy()
    in_size = DTYPE_SIZES[src.src]
    step = (COPY_CHUNK // 4) * in_size
    off, rem = src.offset, src.length
    while rem:
        want = min(rem, step)
        data = _pread(fd, want, off)
        if len(data) != want:
            raise shrank(src.path)
        out = cast_bytes(data, src.src, src.dst, src.factor)
        if np is not None and _infinities(np, out, src.dst) > _infinities(np, data, src.src):
            what = f"baking the scale {src.factor:g} into" if src.factor != 1.0 else "casting"
            raise UserError(f"{what} {src.src} weights as {src.dst} overflows: values beyond {src.dst}'s range "
                            "would become inf; keep the dtype or choose a wider one", file=str(src.path))
        yield out
        off += want
        rem -= want
