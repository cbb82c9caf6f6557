"""Read every FLUX.1 / Chroma LoRA layout into the weights wing's intermediate form (no torch).

Layouts read: ``kohya`` (sd-scripts ``lora_unet_double_blocks_0_img_attn_qkv`` + ``lora_te1_`` CLIP-L + mixed-case
``lora_te3_`` T5), ``comfyui`` (``diffusion_model.<BFL path>``, ``text_encoders.clip_l.transformer.``,
``text_encoders.t5xxl.transformer.``), ``diffusers`` / ``ai-toolkit`` / SimpleTuner (``transformer.<diffusers path>.
lora_A.weight``, ``text_encoder.``, ``text_encoder_2.``; scales from ``lora_adapter_metadata`` or ``.alpha`` keys,
else 1), ``peft`` folders (``transformer/``, ``text_encoder/``, ``text_encoder_2/`` or one adapter), and, read
only, ``onetrainer`` (``lora_transformer_<diffusers path>``, T5 as ``lora_te2_``) and ``xlabs``
(``double_blocks.N.processor.qkv_lora1.down.weight``; a single block's ``qkv_lora`` covers only the q/k/v rows of
``linear1``).

Every adapter targets a :class:`FluxSlice`: a BFL module (from :mod:`lora_compat.arch.flux`) and the run of its
diffusers parts the adapter covers - all of them for kohya/ComfyUI names (``img_attn.qkv``), one for diffusers names
(``attn.to_q``), q/k/v of ``linear1`` for XLabs. The writers fuse or split from there. Widths are checked against the
real model; a file whose modules all have other widths (a tiny test model) is read with widths inferred from it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from lora_compat.arch import families, sd3
from lora_compat.arch import flux as fa
from lora_compat.arch.sd3 import Sd3Table
from lora_compat.errors import UserError, Where
from lora_compat.weights.layouts import (
    AdapterModule,
    LoraFile,
    _apply_peft_scale,
    _load_peft_config,
    _validate_shapes,
    config_indexes,
)
from lora_compat.weights.safetensors_io import SafetensorsFile, TensorEntry, read_header
from lora_compat.weights.untrusted import PeftConfig, parse_json, peft_config

FLUX_ARCHS = ("flux1", "chroma")
BFL_ROW_LAYOUTS = ("kohya", "comfyui", "xlabs")   # layouts whose final-layer adaLN rows are in BFL order
FLUX_LAYOUTS = ("kohya", "comfyui", "diffusers", "ai-toolkit", "peft", "onetrainer", "xlabs")


class FluxSlice(NamedTuple):
    """What one adapter of a FLUX file adapts: ``n_parts`` consecutive diffusers parts of a BFL module, from
    ``first``. Field names shared with :class:`lora_compat.arch.ModuleInfo` keep the generic helpers working."""

    module: fa.FluxModule
    first: int
    n_parts: int

    # What the generic shape checks read of ModuleInfo (properties: a NamedTuple's fields are its only attributes).
    @property
    def kind(self) -> str:
        return self.module.kind

    @property
    def kernel(self) -> int:
        return self.module.kernel

    @property
    def sgm_path(self) -> str | None:
        return None

    @property
    def is_conv3x3(self) -> bool:
        return False

    @property
    def parts(self) -> tuple[fa.FluxPart, ...]:
        return self.module.parts[self.first:self.first + self.n_parts]

    @property
    def whole(self) -> bool:
        """Covers the whole BFL module."""
        return self.first == 0 and self.n_parts == len(self.module.parts)

    @property
    def part(self) -> str:
        return self.module.part

    @property
    def kohya_name(self) -> str:
        return self.module.kohya_name

    @property
    def group(self) -> str:
        return self.module.group

    @property
    def hf_class(self) -> str | None:
        return self.module.hf_class

    @property
    def in_features(self) -> int:
        return self.module.in_features

    @property
    def out_features(self) -> int:
        return sum(p.out_features for p in self.parts)

    @property
    def offset(self) -> int:
        return self.parts[0].offset

    @property
    def diffusers_path(self) -> str:
        """The diffusers path of a one-part slice, else the BFL path (with the row range when partial)."""
        if self.n_parts == 1 and (self.module.fused or self.module.part != "transformer"):
            return self.parts[0].diffusers_path
        if self.n_parts == 1:
            return self.parts[0].diffusers_path
        if self.whole:
            return self.module.bfl_path
        return f"{self.module.bfl_path}[{self.offset}:{self.offset + self.out_features}]"

    @property
    def label(self) -> str:
        """Human name: the kohya name, plus the parts when partial."""
        if self.whole:
            return self.module.kohya_name
        return f"{self.module.kohya_name}[{','.join(p.diffusers_path.rsplit('.', 1)[-1] for p in self.parts)}]"

    def te_path(self, transformers_major: int = 4) -> str:
        if self.n_parts == 1:
            return self.parts[0].te_path(transformers_major)
        return self.module.te_path(transformers_major)


@dataclass
class FluxLoraFile(LoraFile[FluxSlice]):
    """A parsed LoRA of a fused-module family: FLUX.1 / Chroma (``arch`` ``flux1`` / ``chroma``) or SD3/SD3.5
    (``arch`` ``sd3``, read by :mod:`lora_compat.weights.sd3_layouts`; its modules are SAI MMDiT modules)."""

    variant: str | None = None                  # flux1-dev | flux1-schnell | chroma | sd3-medium ... | None
    table: fa.FluxTable | Sd3Table | None = None  # the table the modules resolved against (real or inferred widths)
    split_qkv: bool = False                     # ss_network_args says split_qkv=True (sd-scripts #2204)
    alpha_dtypes: dict[str, str] = field(default_factory=dict)  # kohya name -> dtype of its source alpha tensor

    @property
    def family(self) -> str:
        return self.arch if self.arch in ("flux1", "sd3") else "chroma"

    @property
    def parts(self) -> tuple[str, ...]:
        """The family's parts in output order (transformer and text encoders)."""
        return sd3.PARTS if self.arch == "sd3" else fa.PARTS

    @property
    def components(self) -> dict[str, str]:
        """Part -> diffusers pipeline component (``text_encoder_2`` is T5 for FLUX, CLIP-G for SD3)."""
        return sd3.DIFFUSERS_COMPONENT if self.arch == "sd3" else fa.DIFFUSERS_COMPONENT


# --- family detection ------------------------------------------------------------------------------------------------

_FLUX_KEY = re.compile(
    r"^(?:lora_unet_(?:double_blocks|single_blocks)_\d+_|lora_unet_(?:img_in|txt_in|time_in_|vector_in_|guidance_in_"
    r"|final_layer_)|(?:diffusion_model\.)?(?:double_blocks|single_blocks)\.\d+\.|(?:transformer\.|base_model\.model\.)?"
    r"single_transformer_blocks\.\d+\.|lora_transformer_single_transformer_blocks_|lycoris_single_transformer_blocks_"
    r"|text_encoders\.t5xxl\.)")
_SD3_KEY = re.compile(r"^(?:lora_unet_joint_blocks_|diffusion_model\.joint_blocks\.|(?:transformer\.)?pos_embed\.)")
_LUMINA_KEY = re.compile(r"^(?:lora_unet_(?:layers|noise_refiner|context_refiner)_\d+_|diffusion_model\.(?:layers|"
                         r"noise_refiner|context_refiner)\.\d+\.)")
_HUNYUAN_KEY = re.compile(r"^lora_unet_(?:double|single)_blocks_\d+_(?:img_mlp_fc1|img_mod_linear|modulation_linear|"
                          r"txt_mlp_fc1|txt_mod_linear)")
_FLUX2_KEY = re.compile(r"(?:double_stream_modulation|single_stream_modulation|to_qkv_mlp_proj)")


def metadata_family(meta: dict[str, str]) -> str | None:
    """The family id the ``ss_*`` / modelspec metadata names (``flux1``, ``chroma``, ``sd3`` ...; see
    :func:`lora_compat.arch.families.family_from_metadata`), or None. sd-scripts' ``ss_model_type`` decides
    FLUX.1 vs Chroma when present."""
    model_type = meta.get("ss_model_type", "").lower()
    if model_type == "chroma":
        return "chroma"
    fam = families.family_from_metadata(meta)
    if fam is None and model_type == "flux":
        return "flux1"
    return fam


def sniff_family(keys: list[str], meta: dict[str, str]) -> str | None:
    """The family id (:mod:`lora_compat.arch.families`) a LoRA's keys and metadata say: ``flux1``/``chroma``, a
    family we name and refuse (``sd3``, ``flux2``, ``hunyuan_image``, ``lumina2``, ``anima``), ``flux1-or-sd3``
    (MM-DiT double blocks only: decided by the widths), or None (an SD1/SD2/SDXL file, or nothing to go on)."""
    by_meta = metadata_family(meta)
    if any(_HUNYUAN_KEY.match(k) for k in keys):
        return "hunyuan_image"
    if any(_FLUX2_KEY.search(k) for k in keys):
        return "flux2"
    if any(_SD3_KEY.match(k) for k in keys):
        return "sd3"
    if any(_LUMINA_KEY.match(k) for k in keys):
        return "lumina2"
    if any(_FLUX_KEY.match(k) for k in keys) or any(k.startswith("lora_te3_") for k in keys):
        if by_meta is not None and by_meta not in FLUX_ARCHS and by_meta not in families.SD_FAMILIES:
            return by_meta
        return by_meta if by_meta in FLUX_ARCHS else "flux1"
    if by_meta is not None and by_meta not in families.SD_FAMILIES:
        return by_meta  # FLUX metadata on double-block-only keys is FLUX; other families are named
    if any(re.match(r"^(?:transformer\.|base_model\.model\.)?transformer_blocks\.\d+\.(?:attn\.|ff|norm1)", k)
           for k in keys) or any(k.startswith("lora_transformer_transformer_blocks_") for k in keys):
        return "flux1-or-sd3"  # MM-DiT double blocks only: FLUX.1 and SD3 share these names; decided by widths
    return None


def refuse_family(family_id: str, path: Path) -> UserError:
    """The one-line refusal for a family we detect but do not read (the registry says which stages support it)."""
    name = families.display_name(family_id)
    ok = ", ".join(families.display_name(f) for f in families.supported_families(families.WEIGHTS))
    return UserError(f"this is a {name} LoRA; lora-compat detects {name} but does not read or convert it yet "
                     f"(supported: {ok})", file=str(path))


# --- keys -> (part, naming, path, role) ------------------------------------------------------------------------------

# (suffix, role) tried longest first; roles: down, up, alpha; "!..." = recognised but not convertible
_PARAMS = sorted([
    (".lora_down.weight", "down"), (".lora_up.weight", "up"), (".lora_A.weight", "down"), (".lora_B.weight", "up"),
    (".lora_A.default.weight", "down"), (".lora_B.default.weight", "up"), (".lora.down.weight", "down"),
    (".lora.up.weight", "up"), (".lora_linear_layer.down.weight", "down"), (".lora_linear_layer.up.weight", "up"),
    (".down.weight", "down"), (".up.weight", "up"), (".alpha", "alpha"),
    (".dora_scale", "!DoRA (dora_scale)"), (".lora_magnitude_vector", "!DoRA (lora_magnitude_vector)"),
    (".lora_magnitude_vector.weight", "!DoRA (lora_magnitude_vector)"), (".diff", "!full-weight diff"),
    (".diff_b", "!bias diff"), (".set_weight", "!set_weight"), (".lora_mid.weight", "!Tucker lora_mid"),
    (".lora_B.bias", "!LoRA bias"), (".hada_w1_a", "!LoHa"), (".hada_w1_b", "!LoHa"), (".hada_w2_a", "!LoHa"),
    (".hada_w2_b", "!LoHa"), (".hada_t1", "!LoHa"), (".hada_t2", "!LoHa"), (".lokr_w1", "!LoKr"),
    (".lokr_w2", "!LoKr"), (".lokr_w1_a", "!LoKr"), (".lokr_w1_b", "!LoKr"), (".lokr_w2_a", "!LoKr"),
    (".lokr_w2_b", "!LoKr"), (".lokr_t2", "!LoKr"), (".scale", "!norm scale (BFL control LoRA)"),
    (".w_norm", "!norm delta"), (".b_norm", "!norm delta"),
], key=lambda x: -len(x[0]))


def _split_param(key: str) -> tuple[str, str] | None:
    for suffix, role in _PARAMS:
        if key.endswith(suffix):
            return key[: -len(suffix)], role
    return None


class _Key(NamedTuple):
    layout: str     # kohya | comfyui | diffusers | onetrainer | xlabs
    part: str       # transformer | te1 | te3
    naming: str     # kohya (underscored kohya name) | bfl (dotted BFL/HF path) | diffusers | od (OneTrainer
                    # underscored diffusers path) | xlabs-qkv1/xlabs-qkv2/xlabs-proj1/xlabs-proj2/xlabs-sqkv/xlabs-sproj
    name: str       # the module id in that naming


_XLABS = re.compile(r"^(?:diffusion_model\.)?(double|single)_blocks\.(\d+)\.processor\.(qkv|proj)_lora([12]?)$")


def _classify(stem: str) -> _Key | None:
    """Where a key's module stem points (None when no FLUX naming fits)."""
    m = _XLABS.match(stem)
    if m:
        kind, idx, what, stream = m.groups()
        return _Key("xlabs", "transformer", f"xlabs-{kind}-{what}{stream}", idx)
    s = stem
    if s.startswith("lora_unet_"):
        return _Key("kohya", "transformer", "kohya", s)
    if s.startswith("lora_te1_"):
        return _Key("kohya", "te1", "kohya", s)
    if s.startswith("lora_te_"):
        return _Key("kohya", "te1", "kohya", "lora_te1_" + s[len("lora_te_"):])
    if s.startswith("lora_te3_"):
        return _Key("kohya", "te3", "kohya", s)
    if s.startswith("lora_transformer_"):
        return _Key("onetrainer", "transformer", "od", s[len("lora_transformer_"):])
    if s.startswith("lora_te2_"):
        return _Key("onetrainer", "te3", "kohya", "lora_te3_" + s[len("lora_te2_"):])
    for prefix, part in (("diffusion_model.", "transformer"), ("text_encoders.clip_l.transformer.", "te1"),
                         ("text_encoders.t5xxl.transformer.", "te3")):
        if s.startswith(prefix):
            return _Key("comfyui", part, "bfl", s[len(prefix):])
    s = s.removeprefix("base_model.model.")
    for prefix, part in (("transformer.", "transformer"), ("text_encoder.", "te1"), ("text_encoder_2.", "te3")):
        if s.startswith(prefix):
            return _Key("diffusers", part, "diffusers", s[len(prefix):])
    if s.startswith(("text_model.", "encoder.layers.")):
        return _Key("diffusers", "te1", "diffusers", s)
    if s.startswith("encoder.block."):
        return _Key("diffusers", "te3", "diffusers", s)
    return _Key("diffusers", "transformer", "diffusers", s)   # prefix-less diffusers paths


def _od_index(table: fa.FluxTable) -> dict[str, fa.FluxPart]:
    """OneTrainer's ``lora_transformer_`` names: diffusers paths with ``.`` -> ``_``."""
    return {p.diffusers_path.replace(".", "_"): p for (part, _), p in table.by_diffusers.items()
            if part == "transformer"}


_XLABS_TARGET = {  # naming -> (BFL suffix, first part, count)
    "xlabs-double-qkv1": ("img_attn.qkv", 0, 3), "xlabs-double-qkv2": ("txt_attn.qkv", 0, 3),
    "xlabs-double-proj1": ("img_attn.proj", 0, 1), "xlabs-double-proj2": ("txt_attn.proj", 0, 1),
    "xlabs-single-qkv": ("linear1", 0, 3), "xlabs-single-proj": ("linear2", 0, 1),
}


def _resolve(table: fa.FluxTable, key: _Key, od: dict | None = None) -> FluxSlice | None:
    if key.naming == "kohya":
        m = table.by_kohya.get(key.name)
        return FluxSlice(m, 0, len(m.parts)) if m is not None else None
    if key.naming == "bfl":
        m = table.by_bfl.get((key.part, key.name))
        return FluxSlice(m, 0, len(m.parts)) if m is not None else None
    if key.naming in ("diffusers", "od"):
        p = (od or {}).get(key.name) if key.naming == "od" else table.by_diffusers.get((key.part, key.name))
        if p is None:
            return None
        return FluxSlice(table.by_kohya[p.module], p.position, 1)
    suffix, first, count = _XLABS_TARGET.get(key.naming, (None, 0, 0))
    if suffix is None:
        return None
    kind = "double" if "double" in key.naming else "single"
    m = table.by_bfl.get(("transformer", f"{kind}_blocks.{key.name}.{suffix}"))
    return FluxSlice(m, first, count) if m is not None else None


# --- reading ---------------------------------------------------------------------------------------------------------

def read_flux_safetensors(sf: SafetensorsFile, arch_opt: str = "auto", *, layout_hint: str | None = None,
                          part_hint: str | None = None) -> FluxLoraFile:
    """Read a FLUX LoRA file (any layout above) from its parsed header."""
    groups, layout = group_keys(sf, _classify, "FLUX", layout_hint=layout_hint, part_hint=part_hint)
    meta_fam = metadata_family(sf.metadata)
    variant = _variant_hint(sf.metadata, arch_opt, meta_fam)
    table, custom = _pick_table(sf, groups, variant)
    od = _od_index(table)
    modules: list[AdapterModule] = []
    alpha_dtypes: dict[str, str] = {}
    for k, roles in groups.items():
        sl = _resolve(table, k, od)
        label = _key_label(k, roles)
        if sl is None:  # _pick_table checked every name; defensive
            raise UserError(f"{label} is not a FLUX.1 module", file=str(sf.path))
        modules.append(_build(sf, sl, roles, label, widths=not custom))
        if "alpha" in roles:
            alpha_dtypes[_slice_key(sl)] = roles["alpha"].dtype
    _check_overlaps(sf.path, modules)
    _variant_consistency(sf.path, modules, variant, meta_fam)
    arch = "chroma" if (variant == "chroma" or meta_fam == "chroma") else "flux1"
    lf = FluxLoraFile(sf.path, layout, arch, _ordered(table, modules), dict(sf.metadata), [sf],
                      naming="", custom_widths=custom, variant=variant or _variant_from_modules(modules, arch),
                      table=table, alpha_dtypes=alpha_dtypes)
    if layout in ("diffusers", "ai-toolkit") and "lora_adapter_metadata" in sf.metadata:
        _apply_adapter_metadata(lf)
    lf.split_qkv = _network_arg(sf.metadata, "split_qkv") == "True"
    _recorded_alpha_dtypes(lf)
    return lf


ALPHA_DTYPES_KEY = "lora_compat.kohya_alpha_dtypes"


def group_keys(sf: SafetensorsFile, classify: Callable[[str], _Key | None], family: str, *,
               layout_hint: str | None = None, part_hint: str | None = None
               ) -> tuple[dict[_Key, dict[str, TensorEntry]], str]:
    """A fused-module family file's tensors grouped by module (``classify`` names each key's module), and its
    layout; UserError on unknown keys, adapter types other than plain LoRA and mixed layouts."""
    groups: dict[_Key, dict[str, TensorEntry]] = {}
    for key, entry in sf.tensors.items():
        sp = _split_param(key)
        if sp is None:
            raise UserError(f"unknown {family} LoRA key (no lora_down/lora_up/lora_A/lora_B/alpha parameter)",
                            file=str(sf.path), key=key)
        stem, role = sp
        if role.startswith("!"):
            raise UserError(f"{role[1:]} modules cannot be converted ({family}: plain LoRA only, for now)",
                            file=str(sf.path), key=key)
        k = classify(stem)
        if k is None:
            raise UserError(f"no {family} LoRA naming fits this key", file=str(sf.path), key=key)
        if part_hint is not None and k.layout == "diffusers" and k.part == "transformer" \
                and not stem.removeprefix("base_model.model.").startswith("transformer."):
            k = k._replace(part=part_hint)
        slot = groups.setdefault(k, {})
        if role in slot:
            raise UserError(f"two tensors for the same role ({role})", file=str(sf.path), key=key)
        slot[role] = entry
    layouts = {k.layout for k in groups}
    if len(layouts) > 1:
        raise UserError(f"mixes LoRA layouts ({', '.join(sorted(layouts))}) in one file; consumers drop one of them "
                        "silently, so it is refused", file=str(sf.path))
    layout = layout_hint or next(iter(layouts))
    if layout == "diffusers" and _is_ai_toolkit(sf.metadata):
        layout = "ai-toolkit"
    return groups, layout


def _recorded_alpha_dtypes(lf: FluxLoraFile) -> None:
    """Restore the kohya alpha dtypes a lora-compat PEFT/diffusers output recorded (byte-identical round trips)."""
    raw = lf.metadata.get(ALPHA_DTYPES_KEY)
    if not raw or lf.layout in ("kohya", "comfyui"):
        return
    rec = _lenient_json(raw, lf.path, ALPHA_DTYPES_KEY)
    if not isinstance(rec, dict):
        return
    for m in lf.modules:
        dt = rec.get(m.info.kohya_name, rec.get("*"))
        if isinstance(dt, str):
            lf.alpha_dtypes.setdefault(m.info.kohya_name, dt)
    if _network_arg(_restored_source(lf.metadata), "split_qkv") == "True":
        lf.split_qkv = True


def _restored_source(meta: dict[str, str]) -> dict[str, str]:
    src = _lenient_json(meta.get("lora_compat.source_metadata", "{}"), None, "lora_compat.source_metadata")
    return src if isinstance(src, dict) else {}


def _lenient_json(raw: str, path: Path | None, key: str) -> Any:
    """An informational metadata value through the validation layer; None when it is not valid JSON (it then
    only loses its information: the file is still read)."""
    try:
        return parse_json(raw, file=str(path) if path else None, key=key, what="the value")
    except UserError:
        return None


def _slice_key(sl: FluxSlice) -> str:
    return sl.kohya_name if sl.whole else f"{sl.kohya_name}#{sl.first}"


def _key_label(k: _Key, roles: dict[str, TensorEntry]) -> str:
    for e in roles.values():
        return e.name.rsplit(".", 2)[0] if e.name.endswith(".weight") else e.name.rsplit(".", 1)[0]
    return k.name


def _is_ai_toolkit(meta: dict[str, str]) -> bool:
    sw = meta.get("software", "")
    return "ai-toolkit" in sw.lower() or meta.get("ss_base_model_version") in ("flux.1", "sd_3")


def _network_arg(meta: dict[str, str], key: str) -> str | None:
    raw = meta.get("ss_network_args")
    if not raw:
        return None
    args = _lenient_json(raw, None, "ss_network_args")
    v = args.get(key) if isinstance(args, dict) else None
    return v if isinstance(v, str) else None


def _variant_hint(meta: dict[str, str], arch_opt: str, fam: str | None) -> str | None:
    if arch_opt == "chroma" or fam == "chroma":
        return "chroma"
    spec = meta.get("modelspec.architecture", "").lower()
    if spec.startswith("flux-1-schnell"):
        return "flux1-schnell"
    if spec.startswith("flux-1-dev"):
        return "flux1-dev"
    return None


def _variant_from_modules(modules: list[AdapterModule], arch: str) -> str | None:
    if arch == "chroma":
        return "chroma"
    names = {m.info.module.bfl_path.split(".")[0] for m in modules}
    if "guidance_in" in names:
        return "flux1-dev"
    return None


def _variant_consistency(path: Path, modules: list[AdapterModule], variant: str | None, fam: str | None) -> None:
    if variant == "chroma" or fam == "chroma":
        bad = [m for m in modules if m.info.module.bfl_path.rsplit(".", 1)[0].endswith(("_mod", "modulation"))]
        if bad:
            raise UserError(f"the metadata says Chroma, but {bad[0].keys[0]} adapts a modulation Linear that Chroma "
                            "does not have", file=str(path))


def _pick_table(sf: SafetensorsFile, groups: dict[_Key, dict[str, TensorEntry]], variant: str | None
                ) -> tuple[fa.FluxTable, bool]:
    """The table every module resolves in: the real widths, or widths inferred from the file (custom models)."""
    base_variant = variant if variant in ("chroma", "flux1-schnell") else "flux1-dev"
    real = fa.flux_table(base_variant)
    od = _od_index(real)
    fit = misfit = 0
    first_misfit = ""
    slices: dict[_Key, FluxSlice] = {}
    for k, roles in groups.items():
        sl = _resolve(real, k, od)
        if sl is None:
            sl = _resolve(_wide_table(base_variant), k, _od_index(_wide_table(base_variant)))
            if sl is None:
                raise UserError(f"{_key_label(k, roles)} is not a {_variant_name(base_variant)} module",
                                file=str(sf.path))
            misfit += 1  # more blocks than the real model: only a custom model can have them
            first_misfit = first_misfit or f"{_key_label(k, roles)}: block index beyond the real model"
            slices[k] = sl
            continue
        slices[k] = sl
        dims = _dims(sf, k, roles)
        if dims == (sl.out_features, sl.in_features):
            fit += 1
        else:
            misfit += 1
            first_misfit = first_misfit or (f"{_key_label(k, roles)}: tensors give {dims[1]}->{dims[0]}, the model "
                                            f"has {sl.in_features}->{sl.out_features}")
    if misfit == 0:
        return real, False
    if fit:
        raise UserError(f"shape mismatch: {first_misfit}", file=str(sf.path))
    return _inferred_table(sf, groups, slices, base_variant), True


@lru_cache(maxsize=4)
def _wide_table(variant: str) -> fa.FluxTable:
    """Real widths, many blocks: resolves names of custom models with more blocks than FLUX.1."""
    return fa.flux_table(variant, fa.FluxWidths(double=128, single=256), fa.CLIP_L, fa.T5Widths(layers=128))


def _variant_name(variant: str) -> str:
    return {"flux1-dev": "FLUX.1", "flux1-schnell": "FLUX.1 schnell", "chroma": "Chroma"}[variant]


def _dims(sf: SafetensorsFile, k: _Key, roles: dict[str, TensorEntry]) -> tuple[int, int]:
    """(out, in) the down/up pair implies; UserError when unpaired or not a plain 2-D LoRA."""
    down, up = roles.get("down"), roles.get("up")
    where: Where = {"file": str(sf.path), "key": _key_label(k, roles)}
    if down is None or up is None:
        raise UserError(f"lacks {'lora_down/lora_A' if down is None else 'lora_up/lora_B'} (unpaired tensors)",
                        **where)
    ds, us = down.shape, up.shape
    if len(ds) == 4 and ds[2:] == (1, 1):
        ds = ds[:2]
    if len(us) == 4 and us[2:] == (1, 1):
        us = us[:2]
    if len(ds) != 2 or len(us) != 2 or ds[0] != us[1] or ds[0] <= 0:
        raise UserError(f"down {list(down.shape)} and up {list(up.shape)} are not a LoRA pair", **where)
    return us[0], ds[1]


_VARS = ("h", "mlp", "in_channels", "out_channels", "context", "vec", "time", "clip_h", "clip_mlp", "t5_d",
         "t5_inner", "t5_ff")


def _terms(expr: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for term in expr.split("+"):
        m = re.fullmatch(r"(\d*)([a-z_0-9]+?)", term)
        if m is None:  # pragma: no cover - table bug
            raise ValueError(f"width expression {expr!r}: cannot read {term!r}")
        out.append((int(m.group(1) or 1), m.group(2)))
    return out


def _inferred_table(sf: SafetensorsFile, groups: dict[_Key, dict[str, TensorEntry]],
                    slices: dict[_Key, FluxSlice], variant: str) -> fa.FluxTable:
    """Widths solved from the file's own shapes (every module's in/out is an expression over a few widths)."""
    eqs: list[tuple[list[tuple[int, str]], int, str]] = []
    max_double = max_single = max_clip = max_t5 = -1
    for k, sl in slices.items():
        out, fin = _dims(sf, k, groups[k])
        label = _key_label(k, groups[k])
        eqs.append((_terms(sl.module.in_expr), fin, label))
        rows: list[tuple[int, str]] = []
        for p in sl.parts:
            rows += _terms(p.rows_expr)
        eqs.append((rows, out, label))
        m = sl.module
        block = m.block if m.block is not None else -1
        if m.group == "double":
            max_double = max(max_double, block)
        elif m.group == "single":
            max_single = max(max_single, block)
        elif m.part == "te1":
            max_clip = max(max_clip, block)
        elif m.part == "te3":
            max_t5 = max(max_t5, block)
    known: dict[str, int] = {}
    for _ in range(3):  # a few passes: each solves equations with one unknown
        for terms, value, label in eqs:
            unknown = [(c, v) for c, v in terms if v not in known]
            rest = value - sum(c * known[v] for c, v in terms if v in known)
            if len(unknown) == 1:
                c, v = unknown[0]
                if rest <= 0 or rest % c:
                    raise UserError(f"{label}: its shape fits no FLUX.1 layout", file=str(sf.path))
                known[v] = rest // c
            elif not unknown and rest != 0:
                raise UserError(f"{label}: its shape contradicts the other modules' widths", file=str(sf.path))
    for terms, _, label in eqs:
        if any(v not in known for _, v in terms):
            need = sorted({v for _, v in terms if v not in known})
            raise UserError(f"{label}: cannot tell the model's {', '.join(need)} width from this file (a custom-width "
                            "model); pass a file with more modules", file=str(sf.path))
    real_t = fa.FLUX_WIDTHS
    widths = fa.FluxWidths(
        hidden=known.get("h", real_t.hidden), mlp=known.get("mlp", real_t.mlp),
        in_channels=known.get("in_channels", real_t.in_channels),
        out_channels=known.get("out_channels", real_t.out_channels), context=known.get("context", real_t.context),
        vec=known.get("vec", real_t.vec), time=known.get("time", real_t.time),
        double=max(max_double + 1, 1), single=max(max_single + 1, 1))
    clip = fa.ClipWidths(known.get("clip_h", fa.CLIP_L.hidden), known.get("clip_mlp", fa.CLIP_L.mlp),
                        max(max_clip + 1, 1))
    t5 = fa.T5Widths(known.get("t5_d", fa.T5_XXL.d_model), known.get("t5_inner", fa.T5_XXL.inner),
                    known.get("t5_ff", fa.T5_XXL.d_ff), max(max_t5 + 1, 1))
    table = fa.flux_table(variant, widths, clip, t5)
    od = _od_index(table)
    for k, roles in groups.items():
        resolved = _resolve(table, k, od)
        if resolved is None or _dims(sf, k, roles) != (resolved.out_features, resolved.in_features):
            raise UserError(f"{_key_label(k, roles)}: shapes do not fit one consistent FLUX.1 layout",
                            file=str(sf.path))
    return table


def _build(sf: SafetensorsFile, sl: FluxSlice, roles: dict[str, TensorEntry], label: str, *, widths: bool
           ) -> AdapterModule:
    where: Where = {"file": str(sf.path), "key": label}
    extra = set(roles) - {"down", "up", "alpha"}
    if extra:  # pragma: no cover - _split_param only yields these roles
        raise UserError(f"unexpected tensors {sorted(extra)}", **where)
    mod = AdapterModule(sl, "lora", {"down": roles["down"], "up": roles["up"]}, sf,
                        keys=[e.name for e in roles.values()])
    _validate_shapes(mod, where, widths=widths)
    alpha = roles.get("alpha")
    if alpha is not None:
        if alpha.numel != 1:
            raise UserError(f"alpha must be a single value, got shape {list(alpha.shape)}", **where)
        value = sf.read_scalar(alpha.name)
        if value != value or value in (float("inf"), float("-inf")):
            raise UserError(f"alpha is {value}", **where)
        if value == 0:
            raise UserError("alpha is 0, which consumers disagree on (sd-scripts: scale 1, others: module off); "
                            "refusing", **where)
        mod.alpha = float(value)
        mod.alpha_key = alpha.name
    return mod


def _check_overlaps(path: Path, modules: list[AdapterModule]) -> None:
    covered: dict[str, dict[int, AdapterModule]] = {}
    for m in modules:
        sl: FluxSlice = m.info
        slot = covered.setdefault(sl.kohya_name, {})
        for i in range(sl.first, sl.first + sl.n_parts):
            if i in slot:
                raise UserError(f"two adapters for the same rows of {sl.kohya_name}: {slot[i].keys[0]} and "
                                f"{m.keys[0]}", file=str(path))
            slot[i] = m


def _ordered(table: fa.FluxTable | Sd3Table, modules: list[AdapterModule]) -> list[AdapterModule]:
    """Text encoders first, then the transformer, each in the table's (sd-scripts') order."""
    big = len(table.order)
    return sorted(modules, key=lambda m: (m.info.module.part == "transformer",
                                          table.order.get(m.info.kohya_name, big), m.info.first))


def _apply_adapter_metadata(lf: FluxLoraFile) -> None:
    """Scales from diffusers' ``lora_adapter_metadata`` (``transformer.r``, ``transformer.alpha_pattern`` ...)."""
    where = "lora_adapter_metadata"
    meta = parse_json(lf.metadata[where], file=str(lf.path), key=where, what="the value")
    if not isinstance(meta, dict):
        raise UserError("must be a JSON object", file=str(lf.path), key="lora_adapter_metadata")
    if any(m.alpha_key for m in lf.modules):
        raise UserError("has both .alpha tensors and lora_adapter_metadata (diffusers refuses this too)",
                        file=str(lf.path))
    by_comp: dict[str, dict] = {}
    for k, v in meta.items():
        comp, _, name = k.partition(".")
        if comp not in lf.components.values() or not name:
            comp, name = "", k
        by_comp.setdefault(comp, {})[name] = v
    configs = {c: peft_config(cfg, file=str(lf.path), key=where, prefix=f"{c}." if c else "", require_type=False)
               for c, cfg in by_comp.items()}
    indexes = {c: config_indexes(cfg, lf.path, where) for c, cfg in configs.items()}
    for m in lf.modules:
        comp = lf.components[m.part]
        comp = comp if comp in configs else ""
        if comp in configs:
            _apply_peft_scale(m, configs[comp], lf.path, where, indexes[comp])


# --- PEFT folders ----------------------------------------------------------------------------------------------------

PEFT_DIRS = {"transformer": "transformer", "text_encoder": "te1", "text_encoder_2": "te3"}


def is_flux_peft_dir(path: Path) -> bool:
    """A PEFT folder holding a FLUX adapter: a ``transformer/`` component, or FLUX module names in a single one."""
    if os.path.lexists(path / "transformer" / "adapter_config.json"):
        return True
    single = path / "adapter_model.safetensors"
    if os.path.lexists(path / "adapter_config.json") and single.is_file():
        try:
            keys = list(read_header(single).tensors)
        except UserError:
            return False
        return sniff_family(keys, {}) in FLUX_ARCHS
    return False


def read_flux_peft_dir(path: Path, arch_opt: str = "auto") -> FluxLoraFile:
    """Read a FLUX PEFT adapter folder (one adapter, or one sub-folder per pipeline component)."""
    return read_fused_peft_dir(path, arch_opt, read_flux_safetensors, PEFT_DIRS, "FLUX")


def read_fused_peft_dir(path: Path, arch_opt: str, read_file: Callable[..., FluxLoraFile], dirs: dict[str, str],
                        family: str) -> FluxLoraFile:
    """Read a PEFT adapter folder of a fused-module family (FLUX, SD3): one adapter, or one sub-folder per
    pipeline component (``dirs``: folder -> part); ``read_file`` reads each adapter's safetensors."""
    if os.path.lexists(path / "adapter_config.json"):
        comps: dict[str | None, Path] = {None: path}
    else:
        comps = {part: path / d for d, part in dirs.items() if os.path.lexists(path / d / "adapter_config.json")}
        if not comps:
            raise UserError("folder holds no adapter_config.json (not a PEFT adapter folder)", file=str(path))
    modules: list[AdapterModule] = []
    files: list[SafetensorsFile] = []
    configs: dict[str, PeftConfig] = {}
    metadata: dict[str, str] = {}
    arch = variant = None
    custom = False
    table = None
    alpha_dtypes: dict[str, str] = {}
    for part, d in comps.items():
        cfg = _load_peft_config(d / "adapter_config.json")
        if cfg.peft_type != "LORA":
            raise UserError(f"peft_type {cfg.peft_type} on {family}: only LoRA is converted", file=str(d),
                            key="peft_type")
        weights = d / "adapter_model.safetensors"
        if not os.path.lexists(weights):
            raise UserError("adapter_model.safetensors is missing", file=str(d))
        sf = read_header(weights)
        if not sf.tensors:
            raise UserError("the file holds no tensors", file=str(weights))
        lf = read_file(sf, arch_opt, layout_hint="peft", part_hint=part)
        idx = config_indexes(cfg, d / "adapter_config.json", "adapter_config.json")
        for m in lf.modules:
            if m.alpha_key:
                raise UserError("PEFT adapters carry no .alpha tensors", file=str(weights), key=m.alpha_key)
            _apply_peft_scale(m, cfg, d / "adapter_config.json", "adapter_config.json", idx)
            configs[m.part] = cfg
        if arch is not None and lf.arch != arch:
            raise UserError(f"components disagree on the model ({arch} vs {lf.arch})", file=str(d))
        arch = lf.arch
        variant = variant or lf.variant
        custom = custom or lf.custom_widths
        if table is None or any(m.part == "transformer" for m in lf.modules):
            table = lf.table
        modules += lf.modules
        files.append(sf)
        for k, v in sf.metadata.items():
            metadata.setdefault(k, v)
    _check_overlaps(path, modules)
    assert arch is not None and table is not None  # set by the first component (there is at least one)
    out = FluxLoraFile(path, "peft", arch, _ordered(table, modules), metadata, files, peft_configs=configs,
                       custom_widths=custom, variant=variant, table=table, alpha_dtypes=alpha_dtypes)
    out.split_qkv = _network_arg(metadata, "split_qkv") == "True"
    _recorded_alpha_dtypes(out)
    return out


# --- entry points ----------------------------------------------------------------------------------------------------

ARCHS = FLUX_ARCHS


def owns_peft_dir(path: Path, arch_opt: str) -> bool:
    """Whether this reader takes the PEFT folder ``path`` (``--arch flux1/chroma``, or FLUX modules inside)."""
    if arch_opt in FLUX_ARCHS:
        return True
    return arch_opt == "auto" and is_flux_peft_dir(path)


def read_peft_dir(path: Path, arch_opt: str) -> LoraFile:
    """Read a FLUX PEFT folder (see :func:`read_flux_peft_dir`)."""
    return read_flux_peft_dir(path, arch_opt)


def read_header_family(sf: SafetensorsFile, arch_opt: str) -> LoraFile | None:
    """The FLUX reader for a FLUX file, a refusal naming the family for SD3 & co., None for SD1/SD2/SDXL files."""
    if arch_opt in FLUX_ARCHS:
        return read_flux_safetensors(sf, arch_opt)
    if arch_opt != "auto":
        return None
    fam = sniff_family(list(sf.tensors), sf.metadata)
    if fam is None:
        return None
    if fam == "flux1-or-sd3":
        lf = read_flux_safetensors(sf, arch_opt)
        if lf.custom_widths and lf.table is not None and lf.table.widths.hidden in (1536, 2432):
            raise refuse_family("sd3", sf.path)
        return lf
    if fam not in FLUX_ARCHS or not families.is_supported(fam, families.WEIGHTS):
        raise refuse_family(fam, sf.path)
    return read_flux_safetensors(sf, arch_opt)
