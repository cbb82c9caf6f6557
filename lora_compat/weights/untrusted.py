"""The one validation layer for what a weights artefact says about itself.

LoRA files and PEFT folders come from anywhere, so everything they declare passes through here before a layout
uses it, and every problem is a one-line :class:`~lora_compat.errors.UserError` naming the file and the key:

* :func:`open_input` — an input must be a regular file: a FIFO, socket or device named ``x.safetensors`` would
  block the reader or stream without end. Checked without blocking (``O_NONBLOCK`` open, then ``fstat``).
* :func:`what_is` — names a file that is not safetensors (JSON, PNG, pickle, zip, GGUF, text...) from its first
  bytes, instead of decoding its first 8 bytes as a header length.
* :func:`parse_json` — strict JSON with bounds: size, nesting depth, digits of an integer; ``NaN``/``Infinity``
  and duplicate keys refused; syntax errors with line and column.
* :func:`config_int`, :func:`config_number`, :func:`config_bool`, ... — typed fields with numeric bounds.
* :func:`peft_config` — a PEFT adapter config (``adapter_config.json``, or one component of diffusers'
  ``lora_adapter_metadata``) checked field by field: :class:`PeftConfig`.

The safetensors header itself is validated structurally by :func:`lora_compat.weights.safetensors_io.read_header`
(every entry exactly ``{dtype, shape, data_offsets}`` with bounded integers, metadata ``str -> str``), which uses
:func:`open_input`, :func:`what_is` and :func:`parse_json` from here. New layouts (FLUX, SD3, ...) should read their
metadata and configs through these functions rather than ``json.loads`` / ``dict.get``.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_compat.errors import UserError

#: Bounds on untrusted JSON (a real adapter_config.json is ~1 KB, lora_adapter_metadata a few KB).
MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_JSON_DEPTH = 32
#: Python itself refuses to parse integers longer than this (``sys.get_int_max_str_digits``); say so clearly.
MAX_INT_DIGITS = 4300
#: Largest finite float32: an alpha is written as a float32 ``.alpha`` tensor.
FLOAT32_MAX = 3.4028234663852886e38
#: Largest rank accepted from a config (real ranks are <= a few thousand).
MAX_RANK = 1 << 20

O_BINARY = getattr(os, "O_BINARY", 0)
O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


# --- opening inputs -----------------------------------------------------------------------------------------------

def open_input(path: Path | str) -> int:
    """Open ``path`` for reading and return the descriptor; UserError unless it is a regular file.

    A FIFO is opened with ``O_NONBLOCK`` (so ``open`` does not wait for a writer) and refused after ``fstat``.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | O_BINARY | O_NONBLOCK)
    except IsADirectoryError:
        raise UserError("is a folder, expected a file", file=str(path)) from None
    except FileNotFoundError:
        if os.path.lexists(path):
            raise UserError("broken symbolic link (its target is missing or it loops)", file=str(path)) from None
        raise UserError("file not found", file=str(path)) from None
    except PermissionError:
        raise UserError("permission denied", file=str(path)) from None
    except OSError as exc:
        raise UserError(f"cannot open: {exc.strerror or exc}", file=str(path)) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise UserError("is a folder, expected a file", file=str(path))
        if not stat.S_ISREG(st.st_mode):
            raise UserError("not a regular file (a pipe, socket or device?); refusing to read it", file=str(path))
        if O_NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def require_regular_file(path: Path | str) -> None:
    """UserError unless ``path`` is a regular file (see :func:`open_input`); nothing stays open."""
    os.close(open_input(path))


def read_small_file(path: Path | str, *, max_bytes: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of a small regular file (a config), refusing pipes, devices and files over ``max_bytes``."""
    fd = open_input(path)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise UserError(f"is {size / 2**20:.1f} MiB; larger than the {max_bytes / 2**20:g} MiB a config may be",
                            file=str(path))
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise UserError(f"larger than the {max_bytes / 2**20:g} MiB a config may be", file=str(path))
    return data


# --- naming what a file is ----------------------------------------------------------------------------------------

_MAGIC: list[tuple[bytes, str]] = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"),
    (b"PK\x03\x04", "a zip archive (a PyTorch .pt/.ckpt checkpoint is one: pass it with a .pt name and "
                    "--allow-pickle)"),
    (b"GGUF", "a GGUF model file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"%PDF", "a PDF document"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x89HDF", "an HDF5 file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-zip archive"),
    (b"Rar!", "a RAR archive"),
]


def what_is(prefix: bytes) -> str | None:
    """A short description of a file that is *not* safetensors, from its first bytes (None when unsure).

    A safetensors file starts with an 8-byte little-endian header length followed by ``{``.
    """
    for magic, what in _MAGIC:
        if prefix.startswith(magic):
            return what
    if prefix[:4] == b"RIFF" and prefix[8:12] == b"WEBP":
        return "a WebP image"
    if len(prefix) >= 2 and prefix[0] == 0x80 and 2 <= prefix[1] <= 5:
        return ("a Python pickle (a PyTorch .ckpt/.pt checkpoint?): pass it with a .ckpt/.pt name and "
                "--allow-pickle")
    body = prefix[3:] if prefix.startswith(b"\xef\xbb\xbf") else prefix
    if body and all(b in b"\t\n\r" or b >= 32 for b in body[:8]):  # a header length has zero bytes: text has not
        if body.lstrip(b" \t\r\n")[:1] in (b"{", b"["):
            return ("a JSON file (for a PEFT adapter pass its folder; a training config goes to lora-compat show "
                    "or lint)")
        return "a text file"
    return None


# --- strict, bounded JSON -----------------------------------------------------------------------------------------

class _DuplicateKeyError(Exception):
    pass


class _BadConstantError(Exception):
    pass


def _pairs_no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _DuplicateKeyError(k)
            seen.add(k)
    return out


def _refuse_constant(name: str) -> Any:
    raise _BadConstantError(name)


def parse_json(data: bytes | str, *, file: str | None, key: str | None = None, what: str = "the text",
               max_bytes: int = MAX_CONFIG_BYTES, max_depth: int | None = MAX_JSON_DEPTH,
               duplicates: bool = False) -> Any:
    """Parse untrusted JSON or raise UserError naming ``file`` (and ``key`` when the JSON is a metadata value).

    Refuses: more than ``max_bytes``; text that is not UTF-8; syntax errors (with line and column); ``NaN``,
    ``Infinity``; integers over :data:`MAX_INT_DIGITS` digits; nesting deeper than ``max_depth`` (``None``: the
    caller validates the structure itself); duplicate object keys unless ``duplicates``.
    """
    if len(data) > max_bytes:
        raise UserError(f"{what} of {len(data)} bytes exceeds the {max_bytes} byte limit", file=file, key=key)
    if isinstance(data, bytes):
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"{what} is not valid UTF-8 (byte {exc.start})", file=file, key=key) from None
    try:
        obj = json.loads(data, parse_constant=_refuse_constant,
                         object_pairs_hook=None if duplicates else _pairs_no_duplicates)
    except _DuplicateKeyError as exc:
        raise UserError(f"duplicate key {str(exc.args[0])[:100]!r} in the {what}", file=file, key=key) from None
    except _BadConstantError as exc:
        raise UserError(f"{what} holds {exc.args[0]}, which is not a JSON number", file=file, key=key) from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} is not valid JSON: {exc.msg}", file=file, line=exc.lineno, col=exc.colno,
                        key=key) from None
    except RecursionError:
        raise UserError(f"{what} is nested too deeply", file=file, key=key) from None
    except ValueError:  # Python's own limit on integer digits
        raise UserError(f"{what} holds a number with more than {MAX_INT_DIGITS} digits", file=file,
                        key=key) from None
    if max_depth is not None:
        _check_depth(obj, max_depth, file=file, key=key, what=what)
    if _SURROGATE_ESCAPE.search(data):
        _check_strings(obj, file=file, key=key, what=what)
    return obj


# "\ud800".."\udfff": json decodes a lone one into a str no UTF-8 output can hold (the safetensors library
# refuses such headers); a valid pair becomes one character and passes.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_strings(obj: Any, *, file: str | None, key: str | None, what: str) -> None:
    stack = [obj]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else (((None, v) for v in node)
                                                             if isinstance(node, list) else ())
        for k, v in items:
            for text in (k, v):
                if isinstance(text, str):
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError:
                        code = ord(text[_bad_at(text)])
                        raise UserError(f"{what} holds a lone UTF-16 surrogate escape (\\u{code:04x}), which is "
                                        "not text", file=file, key=key) from None
            if isinstance(v, (dict, list)):
                stack.append(v)
    if isinstance(obj, str):
        _check_strings([obj], file=file, key=key, what=what)


def _bad_at(text: str) -> int:
    return next(i for i, c in enumerate(text) if 0xD800 <= ord(c) <= 0xDFFF)


def _check_depth(obj: Any, max_depth: int, *, file: str | None, key: str | None, what: str) -> None:
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > max_depth:
                raise UserError(f"{what} is nested more than {max_depth} levels deep", file=file, key=key)
            stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, dict) else node))


# --- typed fields with bounds -------------------------------------------------------------------------------------

def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def config_int(value: Any, *, file: str | None, key: str, lo: int = 1, hi: int = MAX_RANK) -> int:
    """An integer in ``[lo, hi]`` (JSON ``2.0`` accepted as 2; booleans refused)."""
    if isinstance(value, float) and value.is_integer() and lo <= value <= hi:
        value = int(value)
    if type(value) is not int or not lo <= value <= hi:
        raise UserError(f"must be an integer from {lo} to {hi}, got {_show(value)}", file=file, key=key)
    return value


def config_number(value: Any, *, file: str | None, key: str, nonzero: bool = False,
                  limit: float = FLOAT32_MAX) -> float:
    """A finite number with ``|value| <= limit`` (float32 range by default: alphas are written as float32)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"must be a number, got {_show(value)}", file=file, key=key)
    try:
        f = float(value)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f) or abs(f) > limit:
        raise UserError(f"{_show(value)} is out of range (|value| <= {limit:.4g})", file=file, key=key)
    if nonzero and f == 0:
        raise UserError("must not be 0", file=file, key=key)
    return f


def config_bool(value: Any, *, file: str | None, key: str, default: bool = False) -> bool:
    """A JSON boolean (``null``/missing: ``default``)."""
    if value is None:
        return default
    if not isinstance(value, bool):
        raise UserError(f"must be true or false, got {_show(value)}", file=file, key=key)
    return value


# --- PEFT adapter configs -----------------------------------------------------------------------------------------

#: PEFT adapter types lora-compat converts, and the kohya algorithm each is.
PEFT_TYPES = {"LORA": "lora", "LOHA": "loha", "LOKR": "lokr"}
# Fields that make an adapter something else than a plain delta on the base weights (refused by the layouts).
_NOT_A_DELTA = {
    "lora_bias": lambda v: bool(v), "bias": lambda v: v not in (None, "none"),
    "modules_to_save": lambda v: bool(v), "trainable_token_indices": lambda v: bool(v),
    "target_parameters": lambda v: bool(v), "layer_replication": lambda v: bool(v),
    "fan_in_fan_out": lambda v: bool(v),
    "init_lora_weights": lambda v: isinstance(v, str) and v.lower().startswith(
        ("pissa", "olora", "corda", "loftq", "orthogonal", "eva")),
    "alora_invocation_tokens": lambda v: bool(v),
}


@dataclass
class PeftConfig:
    """The fields of a PEFT adapter config that decide ranks and scales, validated (see :func:`peft_config`)."""

    peft_type: str | None               # LORA / LOHA / LOKR; None in diffusers' lora_adapter_metadata
    r: int                              # default rank (PEFT default 8)
    alpha: float                        # lora_alpha (LoRA) or alpha (LoHa/LoKr); PEFT default 8
    rank_pattern: dict[str, int] = field(default_factory=dict)
    alpha_pattern: dict[str, float] = field(default_factory=dict)
    use_rslora: bool = False
    use_dora: bool = False
    raw: dict[str, Any] = field(default_factory=dict)  # the object as read (other fields, for refusals)

    def summary(self) -> dict[str, Any]:
        """The validated fields shown by ``inspect`` (numbers only where the config gave valid ones)."""
        num = int(self.alpha) if float(self.alpha).is_integer() else self.alpha
        alpha_field = "lora_alpha" if self.peft_type in (None, "LORA") else "alpha"
        return {"peft_type": self.peft_type, "r": self.r, "lora_alpha": num if alpha_field == "lora_alpha" else None,
                "alpha": num if alpha_field == "alpha" else None, "use_rslora": self.use_rslora,
                "use_dora": self.use_dora}


def peft_config(cfg: Any, *, file: str | None, key: str | None = None, prefix: str = "",
                require_type: bool = True) -> PeftConfig:
    """Validate a PEFT adapter config object (already parsed with :func:`parse_json`).

    ``key`` names where the config sits (``lora_adapter_metadata``), ``prefix`` goes before field names in
    messages (its component, ``unet.``). Checks: an object;
    ``peft_type`` one of :data:`PEFT_TYPES` (required unless ``require_type``); ``r`` and ``rank_pattern`` values
    integers 1..2^20; ``lora_alpha``/``alpha`` and ``alpha_pattern`` values finite, non-zero and within float32;
    pattern maps are objects with string keys; ``use_rslora``/``use_dora`` booleans; fields that make the adapter
    more than a delta on the base weights (``lora_bias``, ``modules_to_save``, PiSSA/LoftQ init, ...) refused.
    """
    def where(name: str) -> str:
        return f"{key}: {prefix}{name}" if key else f"{prefix}{name}"

    if not isinstance(cfg, dict):
        raise UserError(f"must be a JSON object, got {type(cfg).__name__}", file=file, key=key)
    ptype = cfg.get("peft_type")
    if ptype is None and not require_type:
        algo_type = None
    else:
        if not isinstance(ptype, str) or ptype not in PEFT_TYPES:
            raise UserError(f"peft_type {_show(ptype)} is not convertible ({', '.join(PEFT_TYPES)} are)", file=file,
                            key=where("peft_type"))
        algo_type = ptype
    for name, is_bad in _NOT_A_DELTA.items():
        if name in cfg:
            try:
                bad = is_bad(cfg[name])
            except TypeError:
                bad = True
            if bad:
                raise UserError(f"{_show(cfg[name])} cannot be expressed as a kohya LoRA (it is not a plain delta on "
                                "the base weights); refusing", file=file, key=where(name))
    r = config_int(cfg.get("r", 8), file=file, key=where("r"))
    alpha_field = "lora_alpha" if algo_type in (None, "LORA") else "alpha"
    raw_alpha = cfg.get(alpha_field, cfg.get("lora_alpha", 8))
    alpha = config_number(8 if raw_alpha is None and alpha_field == "alpha" else raw_alpha, file=file,
                          key=where(alpha_field), nonzero=True)
    patterns: dict[str, dict] = {}
    for name in ("rank_pattern", "alpha_pattern"):
        pats = cfg.get(name)
        if pats is None:
            patterns[name] = {}
            continue
        if not isinstance(pats, dict):
            raise UserError(f"must be an object mapping module patterns to values, got {_show(pats)}", file=file,
                            key=where(name))
        checked: dict = {}
        for pk, pv in pats.items():
            fk = where(f"{name}[{pk[:80]!r}]")
            checked[pk] = (config_int(pv, file=file, key=fk) if name == "rank_pattern"
                           else config_number(pv, file=file, key=fk, nonzero=True))
        patterns[name] = checked
    return PeftConfig(algo_type, r, alpha, patterns["rank_pattern"], patterns["alpha_pattern"],
                      config_bool(cfg.get("use_rslora"), file=file, key=where("use_rslora")),
                      config_bool(cfg.get("use_dora"), file=file, key=where("use_dora")), raw=cfg)
