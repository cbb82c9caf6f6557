"""Convert FLUX.1 / Chroma LoRAs between kohya, ComfyUI, diffusers, PEFT and ai-toolkit layouts, exactly (no torch).

kohya and ComfyUI name the fused BFL modules (``img_attn.qkv``: q, k, v stacked by output rows; ``linear1``: q, k, v,
MLP); diffusers, PEFT and ai-toolkit name the parts (``attn.to_q`` ...). The math (modern-archs.md §9):

* fused -> split: every part gets the fused down (shared) and its row range of the up: exact, rank kept. When the
  up is block-diagonal (exact zeros off the diagonal, rank divisible by the part count: what ``split_qkv`` saves)
  the down is chunked instead; a down is never split only because the rank divides.
* split -> fused: parts whose downs are bit-identical (and whose scales agree) are re-fused at the original rank,
  so kohya -> diffusers -> kohya gives the original tensors byte for byte; otherwise block-diagonal at rank
  sum(r_j) (exact), missing parts (``proj_mlp`` of a diffusers-trained LoRA) as zero rows. Equal part scales keep
  an alpha (``alpha = s * R``); unequal ones are baked into the part downs (``alpha = R``).
* ``split_qkv`` files (``ss_network_args`` ``split_qkv=True``, block-diagonal up): sd-scripts saved alpha for rank
  r but every consumer divides by n*r, so they apply at 1/n strength (sd-scripts #2204): the alpha is multiplied by
  n and the conversion says so.
* alphas stay unbaked (kohya/ComfyUI ``.alpha``, PEFT ``rank_pattern``/``alpha_pattern``, diffusers
  ``lora_adapter_metadata``) unless ``--bake-scale``; ai-toolkit ignores alpha, so its output is always baked.
  Baking uses sd-scripts' / diffusers' own split of the scale between down and up (powers of two move to the up),
  in float32 like torch, so our ai-toolkit output equals ``convert_flux_lora.py``'s bit for bit.

Row ranges of a fused up are contiguous in the file, so renames and splits copy bytes at header level; only
zero-filling, block-diagonal assembly, diagonal-block extraction, casts and bakes pass bytes through Python, a chunk
of rows at a time (constant memory).
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from lora_compat.arch import flux as fa
from lora_compat.arch import sd3
from lora_compat.errors import UserError
from lora_compat.weights.conversion import (
    DTYPES,
    FLOAT_DTYPES,
    ConvertOptions,
    ConvertReport,
    check_dst,
    count_bytes,
    fmt_alpha,
    path_metadata,
    provenance,
    source_metadata,
    verifier,
    write_file,
)
from lora_compat.weights.flux_layouts import BFL_ROW_LAYOUTS, FluxLoraFile, FluxSlice
from lora_compat.weights.flux_tensor_bytes import block_diagonal, identical_downs
from lora_compat.weights.layouts import AdapterModule
from lora_compat.weights.safetensors_io import (
    COPY_CHUNK,
    DTYPE_SIZES,
    ByteRange,
    OutTensor,
    Pieces,
    TensorEntry,
    Zeros,
    _pread,
    encode_values,
    optional_numpy,
    sd_scripts_hashes,
    write_safetensors,
)

FLUX_TARGETS = ("kohya", "comfyui", "diffusers", "peft", "ai-toolkit")
FUSED_TARGETS = ("kohya", "comfyui")
ALPHA_DTYPES_KEY = "lora_compat.kohya_alpha_dtypes"
PEFT_DIRS = {"transformer": "transformer", "te1": "text_encoder", "te3": "text_encoder_2"}  # FLUX's (lf.components)


# --- sources that pass bytes through Python --------------------------------------------------------------------------

class RowBlock(NamedTuple):
    """Rows of a 2-D tensor in a file, optionally a column range of each, cast/scaled, with zero padding per row.

    Covers every byte transform the FLUX converter needs: a diagonal block of a block-diagonal up (columns), a
    block-diagonal row (padding), ``--dtype`` casts and bakes (``factor``: float32 product like torch's
    ``tensor * scalar``, then one rounding to ``dst``).
    """

    path: Path
    offset: int        # file offset of row 0
    rows: int
    stride: int        # source bytes per row
    col: int           # byte offset of the taken columns inside a source row
    width: int         # source bytes taken per row
    src: str
    dst: str
    factor: float = 1.0
    pad_before: int = 0  # output zero bytes before each row
    pad_after: int = 0

    @property
    def out_width(self) -> int:
        return self.width // DTYPE_SIZES[self.src] * DTYPE_SIZES[self.dst]

    @property
    def length(self) -> int:
        return self.rows * (self.pad_before + self.out_width + self.pad_after)

    def chunks(self, fd_of) -> Iterator[bytes]:
        fd = fd_of(self.path)
        per = max(1, COPY_CHUNK // max(self.stride, 1))
        pre, post = bytes(self.pad_before), bytes(self.pad_after)
        contiguous = self.col == 0 and self.width == self.stride
        done = 0
        while done < self.rows:
            n = min(per, self.rows - done)
            data = _pread(fd, n * self.stride, self.offset + done * self.stride)
            if len(data) != n * self.stride:
                raise OSError("source file ended early")
            if contiguous:
                taken = data
            else:
                mv = memoryview(data)
                taken = b"".join(mv[i * self.stride + self.col: i * self.stride + self.col + self.width]
                                 for i in range(n))
            out = torch_mul_cast(taken, self.src, self.dst, self.factor)
            if pre or post:
                w = self.out_width
                mv = memoryview(out)
                out = b"".join(pre + mv[i * w:(i + 1) * w] + post for i in range(n))
            yield out
            done += n


def torch_mul_cast(data: bytes, src: str, dst: str, factor: float = 1.0) -> bytes:
    """``(tensor.float() * float32(factor))`` rounded to float32, then cast to ``dst`` (round to nearest even): what
    torch computes for ``tensor * python_scalar`` in F32/F16/BF16 (opmath float32), i.e. sd-scripts' bake."""
    if src == dst and factor == 1.0:
        return data
    np = optional_numpy()
    n = len(data) // DTYPE_SIZES[src]
    if np is not None:
        if src == "BF16":
            x = (np.frombuffer(data, dtype="<u2").astype("<u4") << 16).view("<f4")
        else:
            x = np.frombuffer(data, dtype={"F32": "<f4", "F16": "<f2"}[src]).astype("<f4")
        with np.errstate(over="ignore", invalid="ignore"):
            if factor != 1.0:
                x = x * np.float32(factor)
            if dst == "F32":
                return x.astype("<f4").tobytes()
            if dst == "F16":
                return x.astype("<f2").tobytes()
            bits = x.astype("<f4").view("<u4")
            nan = (bits & 0x7FFFFFFF) > 0x7F800000
            rounded = ((bits.astype("<u8") + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")
            return np.where(nan, ((bits >> 16) | 0x40).astype("<u2"), rounded).astype("<u2").tobytes()
    from lora_compat.weights.safetensors_io import decode_values

    vals = decode_values(data, src)
    f32 = struct.unpack(f"<{n}f", struct.pack(f"<{n}f", *(v * factor for v in vals)))
    return encode_values(list(f32), dst)


# --- tensor plans ----------------------------------------------------------------------------------------------------

@dataclass
class TPlan:
    """An output tensor as pieces of source bytes (in the source dtype), before casts and bakes."""

    dtype: str
    shape: tuple[int, ...]
    pieces: list   # ByteRange | RowBlock (src == dst, factor 1) | Zeros

    def source(self, dst: str, factor: float = 1.0):
        """The writer source for this tensor cast to ``dst`` and multiplied by ``factor``."""
        out: list[Zeros | ByteRange | RowBlock] = []
        for p in self.pieces:
            if isinstance(p, Zeros):
                out.append(Zeros(p.length // DTYPE_SIZES[self.dtype] * DTYPE_SIZES[dst]))
            elif isinstance(p, ByteRange):
                if dst == self.dtype and factor == 1.0:
                    out.append(p)
                else:
                    out.append(RowBlock(p.path, p.offset, 1, p.length, 0, p.length, self.dtype, dst, factor))
            else:
                # a RowBlock may carry its own factor (a part's scale baked into a block-diagonal down): keep it
                size = DTYPE_SIZES[self.dtype]
                out.append(p._replace(dst=dst, factor=p.factor * factor,
                                      pad_before=p.pad_before // size * DTYPE_SIZES[dst],
                                      pad_after=p.pad_after // size * DTYPE_SIZES[dst]))
        return out[0] if len(out) == 1 and not isinstance(out[0], Zeros) else Pieces(tuple(out))


@dataclass
class OutAdapter:
    """One adapter of the output: what it adapts, its tensors, rank and kohya-convention alpha."""

    target: FluxSlice
    down: TPlan
    up: TPlan
    rank: int
    alpha: float                   # kohya alpha (scale = alpha / rank)
    alpha_entry: TensorEntry | None = None   # the source alpha tensor, copied when the value is unchanged
    alpha_source: Path | None = None
    alpha_dtype: str | None = None  # dtype to write a new kohya alpha in (None: decide from the weights)
    bake: tuple[float, float] | None = None  # (down factor, up factor) when the scale is baked
    cat: bool = False               # came from a fused source module (sd-scripts' _cat bake rule)

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


@dataclass
class _Stats:
    shared_split: int = 0
    chunk_split: int = 0
    refused: int = 0
    blockdiag: int = 0
    zero_filled: list[str] = field(default_factory=list)
    split_qkv_fixed: int = 0
    baked_parts: int = 0


def _range(m: AdapterModule, role: str) -> ByteRange:
    e = m.tensors[role]
    return ByteRange(m.source.path, e.start, e.nbytes)


def _rows(m: AdapterModule, role: str, first_row: int, rows: int) -> ByteRange:
    e = m.tensors[role]
    row = e.nbytes // e.shape[0]
    return ByteRange(m.source.path, e.start + first_row * row, rows * row)


# --- sd-scripts' bake ------------------------------------------------------------------------------------------------

def _round_to(value: float, dtype: str | None) -> float:
    if dtype in ("F32", "I64", None):
        return struct.unpack("<f", struct.pack("<f", value))[0] if dtype != None else value  # noqa: E711
    from lora_compat.weights.safetensors_io import decode_values

    return decode_values(encode_values([value], dtype), dtype)[0]


def sd_scripts_bake_factors(alpha: float, alpha_dtype: str | None, rank: int, fused: bool) -> tuple[float, float]:
    """(down factor, up factor) sd-scripts' ``convert_flux_lora.py`` (and diffusers' kohya-FLUX loader) multiply the
    weights by to bake ``alpha / rank``: powers of two move from the down to the up while ``down * 2 < up``.

    ``fused`` modules (qkv, linear1) go through ``convert_to_ai_toolkit_cat``, which keeps the alpha a tensor, so
    ``alpha / rank`` is rounded to the alpha's dtype (float32 for an int64 alpha); the others use the Python float.
    The down factor is returned as torch uses it: rounded to float32.
    """
    if fused and alpha_dtype is not None:
        scale = _round_to(alpha / rank, "F32" if alpha_dtype in ("I64", "F32") else alpha_dtype)
    else:
        scale = alpha / rank
    down, up = scale, 1.0
    while down * 2 < up:
        down *= 2
        up /= 2
    return struct.unpack("<f", struct.pack("<f", down))[0], up


# --- planning --------------------------------------------------------------------------------------------------------

def _whole(module: fa.FluxModule) -> FluxSlice:
    return FluxSlice(module, 0, len(module.parts))


def _alpha_of(m: AdapterModule) -> float:
    return m.alpha if m.alpha is not None else float(m.lora_rank)


def _swap_up(m: AdapterModule) -> TPlan:
    """The up with its two row halves swapped (BFL final_layer.adaLN_modulation.1 <-> diffusers norm_out.linear)."""
    e = m.tensors["up"]
    half = e.shape[0] // 2
    return TPlan(e.dtype, e.shape, [_rows(m, "up", half, e.shape[0] - half), _rows(m, "up", 0, half)])


def _plain(m: AdapterModule, target: FluxSlice, swap: bool = False, **kw) -> OutAdapter:
    d, u = m.tensors["down"], m.tensors["up"]
    keep = len(u.shape) if target.kernel > 1 else 2   # a Conv2d (SD3's patch embedding) keeps its 4-D shapes
    up = _swap_up(m) if swap else TPlan(u.dtype, tuple(u.shape[:keep]), [_range(m, "up")])
    keep = len(d.shape) if target.kernel > 1 else 2
    return OutAdapter(target, TPlan(d.dtype, tuple(d.shape[:keep]), [_range(m, "down")]), up, m.lora_rank, _alpha_of(m),
                      **kw)


def _needs_swap(lf: FluxLoraFile, sl: FluxSlice, to_bfl: bool) -> bool:
    """The final adaLN's rows are swapped between BFL and diffusers order: swap when the naming changes."""
    if not any(p.swap for p in sl.parts):
        return False
    return (lf.layout in BFL_ROW_LAYOUTS) != to_bfl


def plan_fused(lf: FluxLoraFile, stats: _Stats, notes: list[str]) -> list[OutAdapter]:
    """Output adapters on whole BFL modules (kohya, ComfyUI)."""
    groups: dict[str, list[AdapterModule]] = {}
    for m in lf.modules:
        groups.setdefault(m.info.kohya_name, []).append(m)
    out = []
    for mods in groups.values():
        module = mods[0].info.module
        if len(mods) == 1 and mods[0].info.whole:
            m = mods[0]
            oa = _plain(m, _whole(module), swap=_needs_swap(lf, m.info, True), alpha_entry=m.tensors.get("alpha"),
                        alpha_source=m.source.path, alpha_dtype=lf.alpha_dtypes.get(module.kohya_name))
            if m.alpha_key:
                oa.alpha_entry = m.source.tensors[m.alpha_key]
            n = len(module.parts)
            if _split_qkv_file(lf) and module.fused and block_diagonal(m, module.split_rows()):
                oa.alpha = _alpha_of(m) * n
                oa.alpha_entry = None
                stats.split_qkv_fixed += 1
            out.append(oa)
            continue
        out.append(_fuse(lf, module, sorted(mods, key=lambda m: m.info.first), stats))
    return out


def _split_qkv_file(lf: FluxLoraFile) -> bool:
    """A split_qkv training output whose alpha was never corrected (files lora-compat wrote are corrected)."""
    return lf.split_qkv and "lora_compat.converted_from" not in lf.metadata


def _fuse(lf: FluxLoraFile, module: fa.FluxModule, mods: list[AdapterModule], stats: _Stats) -> OutAdapter:
    """Fuse the adapters of a BFL module's parts into one LoRA on the whole module."""
    dtypes = {t.dtype for m in mods for t in m.tensors.values() if t is not m.source.tensors.get(m.alpha_key or "")}
    dtype = next(iter(dtypes)) if len(dtypes) == 1 else "F32"
    es = DTYPE_SIZES[dtype]
    covered = {}
    for m in mods:
        for p in m.info.parts:
            covered[p.position] = m
    scales = {m.scale for m in mods}
    ranks = {m.lora_rank for m in mods}
    missing = [p for p in module.parts if p.position not in covered]
    if missing:
        names = ", ".join(p.diffusers_path.rsplit(".", 1)[-1] for p in missing)
        stats.zero_filled.append(f"{module.kohya_name} ({names})")
    alpha_dtype = lf.alpha_dtypes.get(module.kohya_name)
    if len(ranks) == 1 and len(scales) == 1 and len(dtypes) == 1 and (len(mods) == 1 or identical_downs(mods)):
        r = mods[0].lora_rank
        pieces: list[Zeros | ByteRange] = []
        for p in module.parts:
            owner = covered.get(p.position)
            if owner is None:
                pieces.append(Zeros(p.out_features * r * es))
            elif owner.info.first == p.position:
                pieces.append(_range(owner, "up"))
        down = TPlan(dtype, (r, module.in_features), [_range(mods[0], "down")])
        up = TPlan(dtype, (module.out_features, r), pieces)
        stats.shared_split += 1
        return OutAdapter(_whole(module), down, up, r, mods[0].scale * r, alpha_dtype=alpha_dtype)
    # independent downs: block-diagonal at rank sum(r_j)
    total_rank = sum(m.lora_rank for m in mods)
    equal = len(scales) == 1
    down_pieces: list[ByteRange | RowBlock] = []
    up_pieces: list[Zeros | RowBlock] = []
    col = 0
    cols = {}
    for m in mods:
        cols[id(m)] = col
        e = m.tensors["down"]
        if equal and e.dtype == dtype:
            down_pieces.append(_range(m, "down"))
        else:
            down_pieces.append(RowBlock(m.source.path, e.start, e.shape[0], e.nbytes // e.shape[0], 0,
                                        e.nbytes // e.shape[0], e.dtype, dtype, 1.0 if equal else m.scale))
        col += m.lora_rank
    for p in module.parts:
        owner = covered.get(p.position)
        if owner is None:
            up_pieces.append(Zeros(p.out_features * total_rank * es))
            continue
        if owner.info.first != p.position:
            continue
        u = owner.tensors["up"]
        row = u.nbytes // u.shape[0]
        c = cols[id(owner)]
        up_pieces.append(RowBlock(owner.source.path, u.start, u.shape[0], row, 0, row, u.dtype, dtype, 1.0,
                                  c * es, (total_rank - c - owner.lora_rank) * es))
    stats.blockdiag += 1
    if not equal:
        stats.baked_parts += 1
    alpha = next(iter(scales)) * total_rank if equal else float(total_rank)
    return OutAdapter(_whole(module), TPlan(dtype, (total_rank, module.in_features), down_pieces),
                      TPlan(dtype, (module.out_features, total_rank), up_pieces), total_rank, alpha,
                      alpha_dtype=alpha_dtype)


def plan_split(lf: FluxLoraFile, stats: _Stats) -> list[OutAdapter]:
    """Output adapters on single diffusers modules (diffusers, PEFT, ai-toolkit)."""
    out = []
    for m in lf.modules:
        sl: FluxSlice = m.info
        if sl.n_parts == 1:
            oa = _plain(m, sl, swap=_needs_swap(lf, sl, False))
            oa.cat = False
            out.append(oa)
            continue
        rows = tuple(p.out_features for p in sl.parts)
        n = sl.n_parts
        alpha = _alpha_of(m)
        adt = m.source.tensors[m.alpha_key].dtype if m.alpha_key else None
        fixed = _split_qkv_file(lf) and sl.whole and n == len(sl.module.parts)
        if block_diagonal(m, rows):
            if fixed:
                alpha *= n
                stats.split_qkv_fixed += 1
            rp = m.lora_rank // n
            d, u = m.tensors["down"], m.tensors["up"]
            drow = d.nbytes // d.shape[0]
            es = DTYPE_SIZES[u.dtype]
            row = m.lora_rank * es
            off = 0
            for j, p in enumerate(sl.parts):
                down = TPlan(d.dtype, (rp, sl.in_features), [ByteRange(m.source.path, d.start + j * rp * drow,
                                                                       rp * drow)])
                up = TPlan(u.dtype, (p.out_features, rp), [RowBlock(m.source.path, u.start + off * row,
                                                                   p.out_features, row, j * rp * es, rp * es,
                                                                   u.dtype, u.dtype)])
                oa = OutAdapter(FluxSlice(sl.module, p.position, 1), down, up, rp, alpha / m.lora_rank * rp, cat=True)
                oa.bake = sd_scripts_bake_factors(alpha, adt, m.lora_rank, True)
                out.append(oa)
                off += p.out_features
            stats.chunk_split += 1
            continue
        off = 0
        for p in sl.parts:
            d, u = m.tensors["down"], m.tensors["up"]
            down = TPlan(d.dtype, (m.lora_rank, sl.in_features), [_range(m, "down")])
            up = TPlan(u.dtype, (p.out_features, m.lora_rank), [_rows(m, "up", off, p.out_features)])
            oa = OutAdapter(FluxSlice(sl.module, p.position, 1), down, up, m.lora_rank, alpha, cat=True)
            oa.bake = sd_scripts_bake_factors(alpha, adt, m.lora_rank, True)
            out.append(oa)
            off += p.out_features
        stats.shared_split += 1
    return out


# --- writing ---------------------------------------------------------------------------------------------------------

def _out_dtype(dtype: str, opts: ConvertOptions) -> str:
    want = DTYPES[opts.dtype]
    if want is None or dtype == want:
        return dtype
    if dtype not in FLOAT_DTYPES:
        raise UserError(f"cannot cast {dtype} to {opts.dtype}")
    return want


def _exact_in(value: float, dtype: str) -> bool:
    if dtype == "I64":
        return float(value).is_integer()
    try:
        return _round_to(value, dtype) == value
    except (OverflowError, struct.error):
        return False


def _alpha_tensor(oa: OutAdapter, name: str, out_dtype: str) -> OutTensor:
    """The kohya ``.alpha`` tensor: the source's bytes when unchanged, else the value in the recorded dtype, else in
    the weights' dtype (as sd-scripts' converter writes it) when exact there, else float32."""
    e = oa.alpha_entry
    if e is not None and oa.alpha_source is not None and oa.bake is None:
        return OutTensor(name, e.dtype, e.shape, ByteRange(oa.alpha_source, e.start, e.nbytes))
    value = oa.alpha
    for dt in (oa.alpha_dtype, out_dtype, "F32"):
        if dt is not None and dt in DTYPE_SIZES and _exact_in(value, dt):
            v = int(value) if dt == "I64" else value
            return OutTensor(name, dt, (), encode_values([v], dt))
    return OutTensor(name, "F64", (), encode_values([value], "F64"))  # pragma: no cover - F32 overflow only


def _bake_all(outs: list[OutAdapter], lf: FluxLoraFile) -> None:
    """Give every adapter sd-scripts' bake factors (alpha becomes the rank)."""
    for oa in outs:
        if oa.bake is None:
            adt = oa.alpha_entry.dtype if oa.alpha_entry is not None else None
            oa.bake = sd_scripts_bake_factors(oa.alpha, adt, oa.rank, False)
        else:  # split parts: the factors were computed on the fused module with its alpha
            pass


def _tensors_for(oa: OutAdapter, opts: ConvertOptions, down_key: str, up_key: str) -> list[OutTensor]:
    fd, fu = oa.bake if oa.bake is not None else (1.0, 1.0)
    ddt, udt = _out_dtype(oa.down.dtype, opts), _out_dtype(oa.up.dtype, opts)
    return [OutTensor(down_key, ddt, oa.down.shape, oa.down.source(ddt, fd)),
            OutTensor(up_key, udt, oa.up.shape, oa.up.source(udt, fu))]


def _component_path(sl: FluxSlice, te_naming: int | None) -> str:
    p = sl.parts[0]
    return p.te_path(te_naming) if te_naming is not None else p.diffusers_path


def _config_path(sl: FluxSlice) -> str:
    """PEFT ``target_modules`` / pattern key: the full path; the top-level ``proj_out`` anchored (single blocks also
    have a ``proj_out`` that a plain suffix would match)."""
    path = _component_path(sl, 5 if sl.part in ("te1", "te2") else None)
    return "^proj_out" if path == "proj_out" else path


def flux_peft_config(outs: list[OutAdapter]) -> dict:
    """A PEFT LoraConfig reproducing every adapter's rank and scale exactly (full paths in target_modules)."""
    ranks = {_config_path(oa.target): oa.rank for oa in outs}
    alphas = {_config_path(oa.target): (float(oa.rank) if oa.bake is not None else oa.alpha) for oa in outs}
    r_common = Counter(ranks.values()).most_common(1)[0][0]
    a_common = Counter(alphas.values()).most_common(1)[0][0]
    targets: list[str] | str = sorted(ranks)
    if "^proj_out" in ranks:  # a regex string is fully matched by PEFT: anchors every module exactly
        targets = "^(?:" + "|".join(p.replace(".", r"\.").lstrip("^") for p in sorted(ranks)) + ")$"
    return {"peft_type": "LORA", "r": r_common, "lora_alpha": fmt_alpha(a_common), "target_modules": targets,
            "rank_pattern": {p: r for p, r in ranks.items() if r != r_common},
            "alpha_pattern": {p: fmt_alpha(a) for p, a in alphas.items() if a != a_common},
            "use_rslora": False, "use_dora": False, "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False,
            "init_lora_weights": True, "lora_bias": False, "inference_mode": True, "task_type": None,
            "base_model_name_or_path": None, "revision": None, "modules_to_save": None, "layers_to_transform": None,
            "layers_pattern": None, "exclude_modules": None}


def _alpha_dtypes_meta(lf: FluxLoraFile, outs: list[OutAdapter]) -> str | None:
    """Our private record of the kohya alpha dtypes, so that converting back restores them byte for byte."""
    src = dict(lf.alpha_dtypes)
    if not src:
        return None
    common = Counter(src.values()).most_common(1)[0][0]
    rec = {"*": common}
    rec.update({k: v for k, v in src.items() if v != common})
    return json.dumps(rec, sort_keys=True)


def _kohya_meta(lf: FluxLoraFile, opts: ConvertOptions, outs: list[OutAdapter]) -> tuple[dict[str, str], bool]:
    src = source_metadata(lf)
    src.pop(ALPHA_DTYPES_KEY, None)
    had_hashes = any(k.startswith("sshs_") for k in src)
    from lora_compat.config.secrets import is_secret_key

    meta = {k: v for k, v in src.items() if not k.startswith(("sshs_", "lora_compat.")) and k != "modelspec.hash_sha256"
            and k != "lora_adapter_metadata" and not is_secret_key(k)}
    if meta.get("ss_network_module") in (None, "networks.lora", "lycoris.kohya"):
        meta["ss_network_module"] = "networks.lora_sd3" if lf.arch == "sd3" else "networks.lora_flux"
    ranks = Counter(oa.rank for oa in outs)
    alphas = Counter(float(oa.rank) if oa.bake is not None else oa.alpha for oa in outs)
    if ranks and ("ss_network_dim" not in meta or lf.layout != "kohya" or opts.bake_scale):
        meta["ss_network_dim"] = str(ranks.most_common(1)[0][0])
    if alphas and ("ss_network_alpha" not in meta or lf.layout != "kohya" or opts.bake_scale):
        meta["ss_network_alpha"] = str(fmt_alpha(alphas.most_common(1)[0][0]))
    if lf.arch == "sd3":
        if meta.get("ss_base_model_version") in (None, "sd_3") and lf.variant in sd3.BASE_MODEL_VERSION:
            meta["ss_base_model_version"] = sd3.BASE_MODEL_VERSION[lf.variant]  # what sd-scripts writes
    elif meta.get("ss_base_model_version") in (None, "flux.1"):
        meta["ss_base_model_version"] = "chroma" if lf.arch == "chroma" else "flux1"
    meta["format"] = "pt"
    meta.update(provenance(lf, opts))
    return meta, had_hashes


def _flux_provenance(meta: dict[str, str], opts: ConvertOptions) -> dict[str, str]:
    """Record ``--drop-t5`` in the conversion record (``--verify`` then ignores the dropped modules)."""
    if getattr(opts, "drop_t5", False) and "lora_compat.conversion" in meta:
        rec = json.loads(meta["lora_compat.conversion"])
        rec["drop_t5"] = True
        meta["lora_compat.conversion"] = json.dumps(rec, sort_keys=True)
    return meta


def convert_flux(lf: FluxLoraFile, dst: Path, opts: ConvertOptions) -> ConvertReport:
    """Write the FLUX LoRA ``lf`` to ``dst`` in layout ``opts.to`` (atomically)."""
    to = opts.to
    if to not in FLUX_TARGETS:
        raise UserError(f"unknown target layout {to!r}; expected one of {', '.join(FLUX_TARGETS)}")
    if opts.dtype not in DTYPES:
        raise UserError(f"unknown --dtype {opts.dtype!r}; expected one of {', '.join(DTYPES)}")
    dst = Path(dst)
    check_dst(lf, dst, opts)
    notes: list[str] = []
    modules = list(lf.modules)
    t5 = [m for m in modules if m.part == "te3"]
    if t5:
        if getattr(opts, "drop_t5", False):
            modules = [m for m in modules if m.part != "te3"]
            notes.append(f"left out {len(t5)} T5-XXL modules (--drop-t5)")
        elif to == "ai-toolkit":
            raise UserError(f"{len(t5)} T5-XXL modules (lora_te3_): an ai-toolkit-style file has no T5 adapter that "
                            f"any loader applies (diffusers and ComfyUI ignore {lf.components['te3']} keys); "
                            "convert --to kohya/comfyui/peft to keep them, or pass --drop-t5", file=str(lf.path))
        elif to == "diffusers":
            comp = lf.components["te3"]
            pipe = "StableDiffusion3Pipeline" if lf.arch == "sd3" else "FluxPipeline"
            notes.append(f"kept {len(t5)} T5-XXL modules as {comp}.*: {pipe}.load_lora_weights ignores "
                         f"them (load them into pipe.{comp} with PEFT, or use --to peft); --drop-t5 leaves "
                         "them out")
    work = FluxLoraFile(lf.path, lf.layout, lf.arch, modules, lf.metadata, lf.files, lf.peft_configs, lf.naming,
                        lf.custom_widths, lf.warnings, lf.variant, lf.table, lf.split_qkv, lf.alpha_dtypes)
    stats = _Stats()
    if to in FUSED_TARGETS:
        outs = plan_fused(work, stats, notes)
    else:
        outs = plan_split(work, stats)
        if to != "ai-toolkit" and not opts.bake_scale:
            for oa in outs:
                oa.bake = None
    bake = opts.bake_scale or to == "ai-toolkit"
    if bake:
        _bake_all(outs, work)
    elif to in FUSED_TARGETS:
        for oa in outs:
            oa.bake = None
    report = ConvertReport(lf.path, dst, lf.layout, lf.arch, lf.algo, to, len(modules),
                           dict(Counter(m.part for m in modules)))
    _notes(stats, notes, to, bake, "qkv" if lf.arch == "sd3" else "qkv, linear1")
    check = verifier(lf, report) if opts.verify else None
    if to in FUSED_TARGETS:
        tensors = []
        for oa in outs:
            stem = oa.target.kohya_name if to == "kohya" else oa.target.module.comfy_path
            tensors += _tensors_for(oa, opts, f"{stem}.lora_down.weight", f"{stem}.lora_up.weight")
            alpha = oa.alpha if oa.bake is None else float(oa.rank)
            oa_alpha = OutAdapter(oa.target, oa.down, oa.up, oa.rank, alpha, oa.alpha_entry, oa.alpha_source,
                                  oa.alpha_dtype, oa.bake)
            tensors.append(_alpha_tensor(oa_alpha, f"{stem}.alpha", tensors[-2].dtype))
        meta, had_hashes = _kohya_meta(work, opts, outs)
        _flux_provenance(meta, opts)
        count_bytes(tensors, report)
        if had_hashes and to == "kohya":
            model_hash, legacy_hash = sd_scripts_hashes(tensors, meta)
            meta = dict(meta, sshs_model_hash=model_hash, sshs_legacy_hash=legacy_hash)
            report.notes.append("recomputed sshs_model_hash / sshs_legacy_hash")
        write_file(dst, tensors, meta, check)
        report.outputs.append(dst)
    elif to in ("diffusers", "ai-toolkit"):
        tensors = []
        for oa in outs:
            stem = f"{work.components[oa.target.part]}.{_component_path(oa.target, None)}"
            tensors += _tensors_for(oa, opts, f"{stem}.lora_A.weight", f"{stem}.lora_B.weight")
        meta = _flux_provenance(path_metadata(work, opts), opts)
        rec = _alpha_dtypes_meta(work, outs)
        if rec:
            meta[ALPHA_DTYPES_KEY] = rec
        if to == "diffusers":
            meta["lora_adapter_metadata"] = json.dumps(_adapter_metadata(outs, work), sort_keys=True)
        count_bytes(tensors, report)
        write_file(dst, tensors, meta, check)
        report.outputs.append(dst)
    else:
        from lora_compat.atomic import atomic_dir

        meta = _flux_provenance(path_metadata(work, opts), opts)
        rec = _alpha_dtypes_meta(work, outs)
        if rec:
            meta[ALPHA_DTYPES_KEY] = rec
        with atomic_dir(dst, replace=opts.force) as tmp:
            for part in work.parts:
                group = [oa for oa in outs if oa.target.part == part]
                if not group:
                    continue
                tensors = []
                # --te-naming follows CLIPTextModel (flattened in transformers 5); SD3's CLIP-L and CLIP-G are
                # CLIPTextModelWithProjection, which kept text_model. in every version
                naming = opts.te_naming if part == "te1" and work.arch != "sd3" else None
                for oa in group:
                    stem = f"base_model.model.{_component_path(oa.target, naming)}"
                    tensors += _tensors_for(oa, opts, f"{stem}.lora_A.weight", f"{stem}.lora_B.weight")
                count_bytes(tensors, report)
                sub = tmp / work.components[part]
                sub.mkdir()
                write_safetensors(sub / "adapter_model.safetensors", tensors, meta, order="source", atomic=False)
                with open(sub / "adapter_config.json", "w", encoding="utf-8") as fh:
                    json.dump(flux_peft_config(group), fh, indent=2, sort_keys=True)
                    fh.write("\n")
                report.outputs.append(dst / work.components[part])
            if check is not None:
                check(tmp)
    report.written = True
    report.notes += notes
    return report


def _adapter_metadata(outs: list[OutAdapter], lf: FluxLoraFile) -> dict:
    """``lora_adapter_metadata``: component-prefixed LoraConfig fields (diffusers >= 0.34 reads them)."""
    out: dict = {}
    for part in lf.parts:
        group = [oa for oa in outs if oa.target.part == part]
        if not group:
            continue
        cfg = flux_peft_config(group)
        for k in ("r", "lora_alpha", "target_modules", "rank_pattern", "alpha_pattern", "use_dora", "use_rslora",
                  "lora_dropout", "bias", "init_lora_weights", "lora_bias"):
            out[f"{lf.components[part]}.{k}"] = cfg[k]
    return out


def _notes(stats: _Stats, notes: list[str], to: str, bake: bool, fused: str) -> None:
    if stats.shared_split and to not in FUSED_TARGETS:
        notes.append(f"split {stats.shared_split} fused modules ({fused}) into their parts with the shared down")
    if stats.shared_split and to in FUSED_TARGETS:
        notes.append(f"re-fused {stats.shared_split} modules from parts with identical downs at their own rank")
    if stats.chunk_split:
        notes.append(f"split {stats.chunk_split} block-diagonal fused modules by chunking the down (split_qkv layout)")
    if stats.blockdiag:
        notes.append(f"fused {stats.blockdiag} modules block-diagonally at rank sum(r_j) (independent part downs)")
    if stats.baked_parts:
        notes.append(f"{stats.baked_parts} fused modules had parts with different scales: baked into the part downs "
                     "(alpha = rank)")
    if stats.zero_filled:
        notes.append(f"zero-filled missing parts in {len(stats.zero_filled)} modules, e.g. {stats.zero_filled[0]}")
    if stats.split_qkv_fixed:
        notes.append(f"split_qkv file: alpha multiplied by the part count in {stats.split_qkv_fixed} modules "
                     "(sd-scripts #2204 saved it for rank r while every loader divides by n*r: 1/3 or 1/4 strength)")
    if bake:
        why = "ai-toolkit ignores alpha" if to == "ai-toolkit" else "--bake-scale"
        notes.append(f"scales baked into the weights, sd-scripts' split between down and up ({why})")
