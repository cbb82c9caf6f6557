"""Pinned module tables of FLUX.1 dev/schnell and Chroma: BFL (sd-scripts / ComfyUI) names, diffusers names, the
fused <-> split relations, CLIP-L and T5-XXL; and sd-scripts' own FLUX LoRA module set for given options.

Plain data written down once (widths, block counts, module names of the released models), like
:mod:`lora_compat.arch.topology` for SD: nothing is read from the installed diffusers/transformers. Light module (no
torch): plan, train and weights import it.

Naming, per module of the FLUX transformer (the BFL implementation sd-scripts trains on):

* kohya (sd-scripts ``networks.lora_flux``): ``lora_unet_`` + BFL path with ``.`` -> ``_``
  (``lora_unet_double_blocks_0_img_attn_qkv``); CLIP-L ``lora_te1_text_model_...``; T5-XXL ``lora_te3_encoder_...``
  (mixed case: ``SelfAttention``, ``DenseReluDense``; no ``lora_te2_``: sd-scripts picked te3 "for ComfyUI").
* ComfyUI native: ``diffusion_model.`` + BFL path; ``text_encoders.clip_l.transformer.`` / ``text_encoders.t5xxl.
  transformer.`` + HF path.
* diffusers ``FluxTransformer2DModel``: ``transformer_blocks.N.attn.to_q`` ... Two BFL modules are *fused*: a
  double block's ``img_attn.qkv`` (``txt_attn.qkv``) is ``attn.to_q``/``to_k``/``to_v`` (``add_q/k/v_proj``) stacked
  by output rows, a single block's ``linear1`` is ``attn.to_q``/``to_k``/``to_v``/``proj_mlp`` (rows 0 / h / 2h /
  3h..3h+mlp). :attr:`FluxModule.parts` gives every module's diffusers modules with their row ranges. The final
  layer's ``adaLN_modulation.1`` is diffusers' ``norm_out.linear`` with the two row halves swapped (scale/shift).

Typical use::

    from lora_compat.arch import flux
    t = flux.flux_table("flux1-dev")
    m = t.by_kohya["lora_unet_single_blocks_0_linear1"]
    [(p.diffusers_path, p.offset, p.out_features) for p in m.parts]   # to_q 0 3072, ..., proj_mlp 9216 12288
    net = flux.sd_scripts_flux_network(flux.FluxNetworkSpec(network_dim=16, network_alpha=8.0))
    len(net.modules)                                                   # 304 + 72 (CLIP-L is trained by default)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

# --- pinned facts -------------------------------------------------------------------------------------------------

#: Variants of the FLUX.1 family sd-scripts trains (``flux_train_network.py``; ``--model_type chroma``).
FLUX_VARIANTS: tuple[str, ...] = ("flux1-dev", "flux1-schnell", "chroma")
#: Parts (kohya prefix, diffusers pipeline component, ComfyUI key prefix).
PARTS: tuple[str, ...] = ("transformer", "te1", "te3")
KOHYA_PREFIX = {"transformer": "lora_unet", "te1": "lora_te1", "te3": "lora_te3"}
DIFFUSERS_COMPONENT = {"transformer": "transformer", "te1": "text_encoder", "te3": "text_encoder_2"}
COMFY_PREFIX = {"transformer": "diffusion_model.", "te1": "text_encoders.clip_l.transformer.",
                "te2": "text_encoders.clip_g.transformer.", "te3": "text_encoders.t5xxl.transformer."}  # te2: SD3


class FluxWidths(NamedTuple):
    """Widths and block counts of a FLUX transformer (defaults: the released FLUX.1 dev/schnell and Chroma)."""

    hidden: int = 3072          # 24 heads x 128
    mlp: int = 12288            # mlp_ratio 4
    in_channels: int = 64       # img_in input: 16 latent channels x 2x2 patch
    out_channels: int = 64      # final_layer.linear output
    context: int = 4096         # txt_in input: T5-XXL d_model
    vec: int = 768              # vector_in input: CLIP-L pooled
    time: int = 256             # time_in / guidance_in input: sinusoidal embedding
    double: int = 19
    single: int = 38


class ClipWidths(NamedTuple):
    """CLIP-L (``CLIPTextModel``, FLUX's ``text_encoder``)."""

    hidden: int = 768
    mlp: int = 3072
    layers: int = 12


class T5Widths(NamedTuple):
    """T5-XXL v1.1 encoder (``T5EncoderModel``, FLUX's ``text_encoder_2``): gated-GELU feed-forward."""

    d_model: int = 4096
    inner: int = 4096           # 64 heads x 64
    d_ff: int = 10240
    layers: int = 24


FLUX_WIDTHS = FluxWidths()
CLIP_L = ClipWidths()
T5_XXL = T5Widths()

#: The tiny FLUX.1 models (``tiny:flux1-dev`` / ``tiny:flux1-schnell``, built by :mod:`lora_compat.train.flux.tiny`):
#: the real layout with few blocks and the real text-encoder layer counts. Here so that plan reads them without the
#: trainer.
TINY_VARIANTS: tuple[str, ...] = ("dev", "schnell")
TINY_DOUBLE_BLOCKS, TINY_SINGLE_BLOCKS = 2, 4

# Block templates: (BFL suffix, in, out, diffusers parts [(suffix, rows)]); sizes are expressions over the widths
# ("h", "mlp", "3h", "h+mlp", ...). Order = named_modules() order of the BFL blocks, which is sd-scripts' order.
DOUBLE_BLOCK: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    ("img_mod.lin", "h", "6h", (("norm1.linear", "6h"),)),
    ("img_attn.qkv", "h", "3h", (("attn.to_q", "h"), ("attn.to_k", "h"), ("attn.to_v", "h"))),
    ("img_attn.proj", "h", "h", (("attn.to_out.0", "h"),)),
    ("img_mlp.0", "h", "mlp", (("ff.net.0.proj", "mlp"),)),
    ("img_mlp.2", "mlp", "h", (("ff.net.2", "h"),)),
    ("txt_mod.lin", "h", "6h", (("norm1_context.linear", "6h"),)),
    ("txt_attn.qkv", "h", "3h", (("attn.add_q_proj", "h"), ("attn.add_k_proj", "h"), ("attn.add_v_proj", "h"))),
    ("txt_attn.proj", "h", "h", (("attn.to_add_out", "h"),)),
    ("txt_mlp.0", "h", "mlp", (("ff_context.net.0.proj", "mlp"),)),
    ("txt_mlp.2", "mlp", "h", (("ff_context.net.2", "h"),)),
)
SINGLE_BLOCK: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    ("linear1", "h", "3h+mlp", (("attn.to_q", "h"), ("attn.to_k", "h"), ("attn.to_v", "h"), ("proj_mlp", "mlp"))),
    ("linear2", "h+mlp", "h", (("proj_out", "h"),)),
    ("modulation.lin", "h", "3h", (("norm.linear", "3h"),)),
)
#: Embedders sd-scripts targets with ``in_dims=[img, time, vector, guidance, txt]`` (index into in_dims).
EMBEDDERS: tuple[tuple[str, int, str, str, str], ...] = (
    ("img_in", 0, "in_channels", "h", "x_embedder"),
    ("time_in.in_layer", 1, "time", "h", "time_text_embed.timestep_embedder.linear_1"),
    ("time_in.out_layer", 1, "h", "h", "time_text_embed.timestep_embedder.linear_2"),
    ("vector_in.in_layer", 2, "vec", "h", "time_text_embed.text_embedder.linear_1"),
    ("vector_in.out_layer", 2, "h", "h", "time_text_embed.text_embedder.linear_2"),
    ("guidance_in.in_layer", 3, "time", "h", "time_text_embed.guidance_embedder.linear_1"),
    ("guidance_in.out_layer", 3, "h", "h", "time_text_embed.guidance_embedder.linear_2"),
    ("txt_in", 4, "context", "h", "context_embedder"),
)
#: The final layer: never an sd-scripts target (OneTrainer and ComfyUI's LoRA extraction write it).
FINAL_LAYER: tuple[tuple[str, str, str, str, bool], ...] = (
    ("final_layer.linear", "h", "out_channels", "proj_out", False),
    ("final_layer.adaLN_modulation.1", "h", "2h", "norm_out.linear", True),   # row halves swapped
)
#: What a variant lacks compared with FLUX.1 dev.
VARIANT_DROPS: dict[str, frozenset[str]] = {
    "flux1-dev": frozenset(),
    "flux1-schnell": frozenset({"guidance_in.in_layer", "guidance_in.out_layer"}),   # nn.Identity in schnell
    # Chroma: modulations come from its approximator; no time/vector/guidance embedders, no final adaLN.
    "chroma": frozenset({"img_mod.lin", "txt_mod.lin", "modulation.lin", "time_in.in_layer", "time_in.out_layer",
                         "vector_in.in_layer", "vector_in.out_layer", "guidance_in.in_layer",
                         "guidance_in.out_layer", "final_layer.adaLN_modulation.1"}),
}
CLIP_MODULES = (("self_attn.k_proj", "h", "h"), ("self_attn.v_proj", "h", "h"), ("self_attn.q_proj", "h", "h"),
                ("self_attn.out_proj", "h", "h"), ("mlp.fc1", "h", "mlp"), ("mlp.fc2", "mlp", "h"))
T5_MODULES = (("layer.0.SelfAttention.q", "d", "inner"), ("layer.0.SelfAttention.k", "d", "inner"),
              ("layer.0.SelfAttention.v", "d", "inner"), ("layer.0.SelfAttention.o", "inner", "d"),
              ("layer.1.DenseReluDense.wi_0", "d", "ff"), ("layer.1.DenseReluDense.wi_1", "d", "ff"),
              ("layer.1.DenseReluDense.wo", "ff", "d"))


def _size(expr: str, w: FluxWidths) -> int:
    env = {"h": w.hidden, "mlp": w.mlp, "in_channels": w.in_channels, "out_channels": w.out_channels,
           "context": w.context, "vec": w.vec, "time": w.time}
    total = 0
    for term in expr.split("+"):
        m = re.fullmatch(r"(\d*)([a-z_]+)", term)
        if m is None:  # pragma: no cover - table bug
            raise ValueError(f"width expression {expr!r}: cannot read {term!r}")
        total += int(m.group(1) or 1) * env[m.group(2)]
    return total


# --- the tables ---------------------------------------------------------------------------------------------------

class FluxPart(NamedTuple):
    """One diffusers-side module and the output rows of its BFL module it covers.

    Attribute names shared with :class:`lora_compat.arch.ModuleInfo` (``kind``, ``kernel``, ``in_features`` ...)
    let the generic shape checks of the weights wing work on it.
    """

    diffusers_path: str   # in FluxTransformer2DModel (or the HF text model for TE parts)
    part: str             # transformer | te1 | te3
    in_features: int
    out_features: int     # rows of this part
    offset: int           # first row inside the BFL module's weight
    position: int         # position among the BFL module's parts
    module: str           # kohya name of the BFL module
    swap: bool = False    # the BFL module holds this part's two row halves swapped
    rows_expr: str = ""   # out_features as an expression over the widths ("h", "mlp", "6h" ...)

    # What the generic shape checks read of ModuleInfo (properties: a NamedTuple's fields are its only attributes).
    @property
    def kind(self) -> str:
        return "linear"

    @property
    def kernel(self) -> int:
        return 1

    @property
    def sgm_path(self) -> str | None:
        return None

    @property
    def is_conv3x3(self) -> bool:
        return False

    @property
    def kohya_name(self) -> str:
        return self.module

    @property
    def group(self) -> str:
        return "text" if self.part != "transformer" else "transformer"

    @property
    def hf_class(self) -> str | None:
        return {"te1": "CLIPTextModel", "te3": "T5EncoderModel"}.get(self.part)

    def te_path(self, transformers_major: int = 4) -> str:
        """The path for a transformers major version (v5 flattened ``CLIPTextModel``: no ``text_model.``)."""
        if self.part in ("te1", "te2") and transformers_major >= 5:
            return self.diffusers_path.removeprefix("text_model.")
        return self.diffusers_path


class FluxModule(NamedTuple):
    """One Linear of the BFL FLUX model (or of CLIP-L / T5-XXL) that a LoRA can adapt."""

    kohya_name: str       # lora_unet_double_blocks_0_img_attn_qkv
    part: str             # transformer | te1 | te3
    bfl_path: str         # double_blocks.0.img_attn.qkv (TE: the HF path, text_model.encoder.layers.0...)
    in_features: int
    out_features: int
    group: str            # double | single | embedder | final | text
    block: int | None     # block index for double/single
    parts: tuple[FluxPart, ...]   # diffusers modules, row ranges in order (one part = a plain rename)
    in_dims_index: int | None = None  # embedders: index into sd-scripts' in_dims
    sd_scripts: bool = True           # a module sd-scripts' lora_flux can create (the final layer is not)
    in_expr: str = ""                 # in_features as an expression over the widths (inferring custom widths)
    kernel_size: int = 1              # >1: a Conv2d with a square kernel (SD3's 2x2 patch embedding)

    # What the generic shape checks read of ModuleInfo (properties: a NamedTuple's fields are its only attributes).
    @property
    def kind(self) -> str:
        return "conv" if self.kernel_size > 1 else "linear"

    @property
    def kernel(self) -> int:
        return self.kernel_size

    @property
    def sgm_path(self) -> str | None:
        return None

    @property
    def is_conv3x3(self) -> bool:
        return False

    @property
    def diffusers_path(self) -> str:
        """The path inside this module's own model (BFL for the transformer; the generic helpers' field name)."""
        return self.bfl_path

    @property
    def fused(self) -> bool:
        """True when several diffusers modules make up this one (qkv, linear1)."""
        return len(self.parts) > 1

    @property
    def hf_class(self) -> str | None:
        return {"te1": "CLIPTextModel", "te2": "CLIPTextModelWithProjection", "te3": "T5EncoderModel"}.get(self.part)

    @property
    def comfy_path(self) -> str:
        """The ComfyUI key stem (without ``.lora_up.weight``)."""
        return COMFY_PREFIX[self.part] + self.bfl_path

    @property
    def weight_shape(self) -> tuple[int, int]:
        return self.out_features, self.in_features

    def lora_shapes(self, rank: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """(down shape, up shape) of a plain LoRA of ``rank``."""
        return (rank, self.in_features), (self.out_features, rank)

    def te_path(self, transformers_major: int = 4) -> str:
        if self.part in ("te1", "te2") and transformers_major >= 5:
            return self.bfl_path.removeprefix("text_model.")
        return self.bfl_path

    def split_rows(self) -> tuple[int, ...]:
        """Rows of each diffusers part, in order (``[h, h, h]`` for qkv, ``[h, h, h, mlp]`` for linear1)."""
        return tuple(p.out_features for p in self.parts)


def _kohya(prefix: str, path: str) -> str:
    return prefix + "_" + path.replace(".", "_")


def _module(part: str, path: str, fin: int, fout: int, group: str, block: int | None,
            parts: list[tuple[str, int, bool, str]], **kw) -> FluxModule:
    name = _kohya(KOHYA_PREFIX.get(part) or f"lora_{part}", path)
    out, off = [], 0
    for i, (dpath, rows, swap, expr) in enumerate(parts):
        out.append(FluxPart(dpath, part, fin, rows, off, i, name, swap, expr))
        off += rows
    if off != fout:  # pragma: no cover - table bug
        raise AssertionError(f"{name}: parts cover {off} of {fout} rows")
    return FluxModule(name, part, path, fin, fout, group, block, tuple(out), **kw)


def transformer_modules(variant: str = "flux1-dev", widths: FluxWidths = FLUX_WIDTHS) -> list[FluxModule]:
    """Every adaptable transformer Linear of ``variant``: double blocks, single blocks, embedders, final layer."""
    if variant not in FLUX_VARIANTS:
        raise ValueError(f"unknown FLUX variant {variant!r}; expected one of {', '.join(FLUX_VARIANTS)}")
    drop = VARIANT_DROPS[variant]
    w = widths
    rows: list[FluxModule] = []
    for kind, count, tmpl, dprefix in (("double", w.double, DOUBLE_BLOCK, "transformer_blocks"),
                                       ("single", w.single, SINGLE_BLOCK, "single_transformer_blocks")):
        for i in range(count):
            for suffix, fin, fout, parts in tmpl:
                if suffix in drop:
                    continue
                rows.append(_module("transformer", f"{kind}_blocks.{i}.{suffix}", _size(fin, w), _size(fout, w),
                                    kind, i, [(f"{dprefix}.{i}.{d}", _size(r, w), False, r) for d, r in parts],
                                    in_expr=fin))
    for path, idx, fin, fout, dpath in EMBEDDERS:
        if path not in drop:
            rows.append(_module("transformer", path, _size(fin, w), _size(fout, w), "embedder", None,
                                [(dpath, _size(fout, w), False, fout)], in_dims_index=idx, in_expr=fin))
    for path, fin, fout, dpath, swap in FINAL_LAYER:
        if path not in drop:
            rows.append(_module("transformer", path, _size(fin, w), _size(fout, w), "final", None,
                                [(dpath, _size(fout, w), swap, fout)], sd_scripts=False, in_expr=fin))
    return rows


def clip_l_modules(widths: ClipWidths = CLIP_L, part: str = "te1") -> list[FluxModule]:
    """CLIP modules sd-scripts targets (``CLIPAttention`` k/v/q/out, ``CLIPMLP`` fc1/fc2), per layer. ``part``
    ``te2`` gives SD3's CLIP-G (``lora_te2_``; the tables of :mod:`lora_compat.arch.sd3`)."""
    env = {"h": widths.hidden, "mlp": widths.mlp}
    out = []
    for n in range(widths.layers):
        for suffix, fin, fout in CLIP_MODULES:
            path = f"text_model.encoder.layers.{n}.{suffix}"
            out.append(_module(part, path, env[fin], env[fout], "text", n, [(path, env[fout], False, "clip_" + fout)],
                               in_expr="clip_" + fin))
    return out


def t5_modules(widths: T5Widths = T5_XXL) -> list[FluxModule]:
    """T5-XXL encoder modules sd-scripts targets with ``train_t5xxl=True`` (``T5Attention`` q/k/v/o,
    ``T5DenseGatedActDense`` wi_0/wi_1/wo), per block."""
    env = {"d": widths.d_model, "inner": widths.inner, "ff": widths.d_ff}
    out = []
    for n in range(widths.layers):
        for suffix, fin, fout in T5_MODULES:
            path = f"encoder.block.{n}.{suffix}"
            out.append(_module("te3", path, env[fin], env[fout], "text", n, [(path, env[fout], False, "t5_" + fout)],
                               in_expr="t5_" + fin))
    return out


@dataclass(frozen=True)
class FluxTable:
    """Every module of one variant (at given widths) and the indexes used to resolve names."""

    variant: str
    widths: FluxWidths
    clip: ClipWidths
    t5: T5Widths
    modules: tuple[FluxModule, ...]
    by_kohya: dict[str, FluxModule] = field(repr=False)
    by_bfl: dict[tuple[str, str], FluxModule] = field(repr=False)        # (part, BFL/HF path)
    by_diffusers: dict[tuple[str, str], FluxPart] = field(repr=False)    # (part, diffusers/HF path)
    order: dict[str, int] = field(repr=False)                            # kohya name -> position

    def module_of(self, part: FluxPart) -> FluxModule:
        """The BFL module a diffusers part belongs to."""
        return self.by_kohya[part.module]


@lru_cache(maxsize=64)
def flux_table(variant: str = "flux1-dev", widths: FluxWidths = FLUX_WIDTHS, clip: ClipWidths = CLIP_L,
               t5: T5Widths = T5_XXL) -> FluxTable:
    """The module table of ``variant`` (CLIP-L, T5-XXL, then the transformer in sd-scripts' order).

    Chroma has no CLIP-L; its table still lists T5 (``train_t5xxl`` works for Chroma).
    """
    mods = ([] if variant == "chroma" else clip_l_modules(clip)) + t5_modules(t5) + transformer_modules(variant, widths)
    by_kohya: dict[str, FluxModule] = {}
    by_bfl: dict[tuple[str, str], FluxModule] = {}
    by_diff: dict[tuple[str, str], FluxPart] = {}
    for m in mods:
        if m.kohya_name in by_kohya or (m.part, m.bfl_path) in by_bfl:  # pragma: no cover - table bug
            raise AssertionError(f"duplicate module {m.kohya_name}")
        by_kohya[m.kohya_name] = by_bfl[(m.part, m.bfl_path)] = m
        for p in m.parts:
            if (p.part, p.diffusers_path) in by_diff:  # pragma: no cover - table bug
                raise AssertionError(f"duplicate diffusers module {p.diffusers_path}")
            by_diff[(p.part, p.diffusers_path)] = p
            if p.part == "te1":
                by_diff.setdefault((p.part, p.te_path(5)), p)
    order = {m.kohya_name: i for i, m in enumerate(mods)}
    return FluxTable(variant, widths, clip, t5, tuple(mods), by_kohya, by_bfl, by_diff, order)


def kohya_to_bfl(name: str, variant: str = "flux1-dev") -> tuple[str, str]:
    """(part, BFL/HF path) of a kohya FLUX module name; KeyError when it is not a module of ``variant``.

    ``_`` -> ``.`` is ambiguous (``img_attn_qkv`` is ``img_attn.qkv``), so this goes through the table.
    """
    m = flux_table(variant).by_kohya.get(name)
    if m is None:
        raise KeyError(f"{name!r} is not a {variant} module")
    return m.part, m.bfl_path


# --- sd-scripts' FLUX LoRA network (networks/lora_flux.py) --------------------------------------------------------

NUM_DOUBLE_BLOCKS = FLUX_WIDTHS.double
NUM_SINGLE_BLOCKS = FLUX_WIDTHS.single
#: ``network_args`` that set a per-type rank, and the substrings of the kohya name each one matches (sd-scripts'
#: ``type_dims`` identifiers, tried in this order; the first with a value wins).
TYPE_DIM_ARGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("img_attn_dim", ("img_attn",)), ("txt_attn_dim", ("txt_attn",)), ("img_mlp_dim", ("img_mlp",)),
    ("txt_mlp_dim", ("txt_mlp",)), ("img_mod_dim", ("img_mod",)), ("txt_mod_dim", ("txt_mod",)),
    ("single_dim", ("single_blocks", "linear")), ("single_mod_dim", ("modulation",)),
)
IN_DIMS_FILTERS = ("_img_in", "_time_in", "_vector_in", "_guidance_in", "_txt_in")
#: Output-row splits ``split_qkv=True`` trains as separate LoRAs (sd-scripts: [3072]*3 + [12288]).
SPLIT_QKV_PARTS = {"double_qkv": 3, "single_linear1": 4}


class FluxNetworkError(ValueError):
    """What sd-scripts raises for these options (``exception`` names its type, ``str()`` its message)."""

    def __init__(self, exception: str, message: str):
        self.exception = exception
        super().__init__(message)

    @property
    def sd_scripts_error(self) -> str:
        """``"AssertionError: invalid train_blocks: Single"``, as sd-scripts prints it."""
        return f"{self.exception}: {self}"


@dataclass(frozen=True)
class FluxNetworkSpec:
    """The inputs of ``flux_train_network.py`` that decide the ``networks.lora_flux`` module set.

    Values as sd-scripts holds them after parsing: ``network_alpha`` is argparse's ``int`` default ``1`` unless
    given on the command line (then a float), ``network_args`` are the raw ``key=value`` strings.
    """

    variant: str = "flux1-dev"
    network_dim: int | None = None
    network_alpha: float | int | None = 1
    network_args: Mapping[str, str] = field(default_factory=dict)
    network_train_unet_only: bool = False
    network_train_text_encoder_only: bool = False
    cache_text_encoder_outputs: bool = False
    apply_t5_attn_mask: bool = False


class FluxNetworkModule(NamedTuple):
    """One LoRA module of an sd-scripts FLUX network."""

    module: FluxModule
    rank: int                        # the module's lora_dim
    alpha: float | int               # the alpha buffer's value (alpha 0/None already replaced by the rank)
    alpha_dtype: str                 # "I64": a Python int alpha (argparse's default 1, alpha 0 -> rank); else "F32"
    split: int = 1                   # split_qkv: number of sub-LoRAs saved fused (3 or 4), else 1

    @property
    def file_rank(self) -> int:
        """The rank a saved file shows (``split * rank``: split_qkv state dicts concatenate the downs)."""
        return self.rank * self.split

    @property
    def scale(self) -> float:
        """The scale the module trains with (alpha / rank, per sub-LoRA for split_qkv)."""
        return float(self.alpha) / self.rank


@dataclass
class FluxNetwork:
    """sd-scripts' FLUX LoRA network for one spec: its modules in state-dict order, and what it would crash on."""

    spec: FluxNetworkSpec
    modules: list[FluxNetworkModule]
    train_t5xxl: bool
    split_qkv: bool
    #: The error sd-scripts 48d368f (v0.10.1) raises creating this network, ``None`` when it works there: with
    #: ``split_qkv=True`` the double-block qkv branch crashes (issue #2220, fixed by PR #2396); :attr:`modules`
    #: is the fixed behaviour.
    crash_at_48d368f: str | None = None

    def counts(self) -> dict[str, int]:
        """Module count per kohya prefix, as sd-scripts logs it."""
        out = {"lora_te1": 0, "lora_te3": 0, "lora_unet": 0}
        for m in self.modules:
            out[KOHYA_PREFIX[m.module.part]] += 1
        out["total"] = len(self.modules)
        return out


def _flag(args: Mapping[str, str], key: str) -> bool:
    v = args.get(key)
    return v is not None and v == "True"   # sd-scripts: exactly "True"; "true" is False


def _int_arg(args: Mapping[str, str], key: str) -> int | None:
    v = args.get(key)
    if v is None:
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        raise FluxNetworkError("ValueError", f"invalid literal for int() with base 10: {v!r}") from None


def parse_in_dims(value: str) -> list[int]:
    """sd-scripts' ``in_dims`` parser: ``"[img,time,vector,guidance,txt]"`` -> five ints."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        dims = [int(d) for d in text.split(",")]
    except ValueError as exc:
        raise FluxNetworkError("ValueError", str(exc)) from None
    if len(dims) != 5:
        raise FluxNetworkError("AssertionError", f"invalid in_dims: {dims}, must be 5 dimensions (img, time, "
                                                 "vector, guidance, txt)")
    return dims


def parse_block_selection(selection: str, total: int) -> list[bool]:
    """sd-scripts' ``train_double/single_block_indices`` parser (``all``, ``none``, ``"0,2-3"``)."""
    if selection == "all":
        return [True] * total
    if selection in ("none", ""):
        return [False] * total
    selected = [False] * total
    for r in selection.split(","):
        try:
            if "-" in r:
                start, end = (int(x.strip()) for x in r.split("-"))
                if not 0 <= start < total:
                    raise FluxNetworkError("AssertionError", f"invalid start index: {start}")
                if not 0 <= end < total:
                    raise FluxNetworkError("AssertionError", f"invalid end index: {end}")
                if start > end:
                    raise FluxNetworkError("AssertionError", f"invalid range: {start}-{end}")
                for i in range(start, end + 1):
                    selected[i] = True
            else:
                index = int(r)
                if not 0 <= index < total:
                    raise FluxNetworkError("AssertionError", f"invalid index: {index}")
                selected[index] = True
        except ValueError as exc:
            if isinstance(exc, FluxNetworkError):
                raise
            raise FluxNetworkError("ValueError", str(exc)) from None
    return selected


#: The ``blocks_to_swap`` flux_train_network.py sets for the deprecated ``split_mode``.
SPLIT_MODE_BLOCKS_TO_SWAP = 18


def split_mode_blocks_to_swap(blocks_to_swap: int | None, split_mode: bool) -> int | None:
    """``blocks_to_swap`` after ``FluxNetworkTrainer.assert_extra_args``: the deprecated ``split_mode`` becomes
    ``blocks_to_swap = 18`` when blocks_to_swap is unset (None) and is ignored when it is set (0 included). The
    assignment comes after the blocks_to_swap x cpu_offload_checkpointing assertion."""
    if split_mode and blocks_to_swap is None:
        return SPLIT_MODE_BLOCKS_TO_SWAP
    return blocks_to_swap


def parse_reg_dims(value: str) -> dict[str, int]:
    """sd-scripts' ``network_reg_dims``: ``"regex=int,regex=int"`` (bad pairs are skipped with a warning there;
    the one parser: :func:`lora_compat.semantics.args.pattern_values`)."""
    from lora_compat.semantics.args import pattern_values

    return pattern_values(value, as_int=True)


def sd_scripts_flux_network(spec: FluxNetworkSpec) -> FluxNetwork:
    """The modules sd-scripts' ``networks.lora_flux.create_network`` + ``apply_to`` give for ``spec``.

    The one place the FLUX module-set rules live (the plan and the trainer use it; tests compare every case of
    golden ``flux_lora_keys.json``). Per module, in sd-scripts' order: a ``network_reg_dims`` regex (first match,
    ``re.search`` on the kohya name) wins and skips the other filters; otherwise ``network_dim`` (default 4), the
    first matching per-type dim (``img_attn_dim`` ...), then the block-index filter; rank 0 skips the module.
    CLIP-L is trained unless ``network_train_unet_only``; T5 only with ``train_t5xxl=True`` (exact ``True``).
    Raises :class:`FluxNetworkError` with sd-scripts' own message where it refuses the options.
    """
    args = dict(spec.network_args)
    variant = spec.variant
    if variant not in FLUX_VARIANTS:
        raise ValueError(f"unknown FLUX variant {variant!r}")
    train_t5 = _flag(args, "train_t5xxl")
    # flux_train_network.py assert_extra_args
    if train_t5 and spec.cache_text_encoder_outputs:
        raise FluxNetworkError("ValueError", "T5XXL is trained, so cache_text_encoder_outputs cannot be used")
    if variant == "chroma" and not spec.apply_t5_attn_mask:
        raise FluxNetworkError("AssertionError", "apply_t5_attn_mask must be True for Chroma")
    dim = 4 if spec.network_dim is None else spec.network_dim
    alpha = 1.0 if spec.network_alpha is None else spec.network_alpha
    train_blocks = args.get("train_blocks")
    if train_blocks is not None and train_blocks not in ("all", "single", "double"):
        raise FluxNetworkError("AssertionError", f"invalid train_blocks: {train_blocks}")
    train_blocks = train_blocks or "all"
    type_dims = {k: _int_arg(args, k) for k, _ in TYPE_DIM_ARGS}
    has_type_dims = any(v is not None for v in type_dims.values())
    in_dims = parse_in_dims(args["in_dims"]) if args.get("in_dims") is not None else None
    double_sel = single_sel = None
    if args.get("train_double_block_indices") is not None:
        double_sel = parse_block_selection(args["train_double_block_indices"], NUM_DOUBLE_BLOCKS)
    if args.get("train_single_block_indices") is not None:
        single_sel = parse_block_selection(args["train_single_block_indices"], NUM_SINGLE_BLOCKS)
    reg_dims = parse_reg_dims(args["network_reg_dims"]) if args.get("network_reg_dims") is not None else None
    split_qkv = _flag(args, "split_qkv")
    _int_arg(args, "conv_dim")  # parsed (and a bad value fails) but FLUX has no Conv2d: no effect

    def dims_for(m: FluxModule, default: int | None, is_flux: bool) -> int | None:
        name = m.kohya_name
        d = None
        if reg_dims is not None:
            for reg, rd in reg_dims.items():
                try:
                    hit = re.search(reg, name)
                except re.error as exc:   # sd-scripts' re.search raises at network creation
                    raise FluxNetworkError("re.error", f"network_reg_dims pattern {reg!r}: {exc}") from None
                if hit:
                    return rd
        d = default if default is not None else dim
        if is_flux and has_type_dims:
            for key, ids in TYPE_DIM_ARGS:
                if type_dims[key] is not None and all(i in name for i in ids):
                    d = type_dims[key]
                    break
        if is_flux and d and (double_sel is not None or single_sel is not None) and (
                "double" in name or "single" in name):
            idx = int(name.split("_")[4])
            sel = double_sel if "double" in name else single_sel
            if sel is not None and not sel[idx]:
                d = 0
        return d

    def make(m: FluxModule, d: int, split: int) -> FluxNetworkModule:
        a = d if (alpha is None or alpha == 0) else alpha
        return FluxNetworkModule(m, d, a, "I64" if isinstance(a, int) and not isinstance(a, bool) else "F32",
                                 split)

    table = flux_table(variant)
    out: list[FluxNetworkModule] = []
    crash = None
    apply_te = not spec.network_train_unet_only
    apply_unet = not spec.network_train_text_encoder_only
    if apply_te:
        te_parts = ("te1", "te3") if train_t5 else ("te1",)
        for m in table.modules:
            if m.part in te_parts:
                d = dims_for(m, None, False)
                if d:
                    out.append(make(m, d, 1))
    if apply_unet:
        groups = {"all": ("double", "single"), "single": ("single",), "double": ("double",)}[train_blocks]
        blocks = [m for m in table.modules if m.group in groups]
        blocks.sort(key=lambda m: (m.group != "double", m.block))  # double blocks first, as named_modules()
        for m in blocks:
            d = dims_for(m, None, True)
            if not d:
                continue
            split = 1
            if split_qkv and m.fused:
                if m.group == "double":
                    crash = crash or "ValueError: too many values to unpack (expected 1)"
                split = len(m.parts)
            out.append(make(m, d, split))
        if in_dims:
            for flt, in_dim in zip(IN_DIMS_FILTERS, in_dims, strict=True):
                for m in table.modules:
                    if m.group == "embedder" and flt in m.kohya_name:
                        d = dims_for(m, in_dim, True)
                        if d:
                            out.append(make(m, d, 1))
    return FluxNetwork(spec, out, train_t5, split_qkv, crash)
