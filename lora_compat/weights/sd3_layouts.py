"""Read SD3 / SD3.5 LoRAs (medium, large, 3.5 medium with ``attn2``) into the weights wing's intermediate form (no
torch), on the tables of :mod:`lora_compat.arch.sd3`, so that FLUX's fused <-> split converter, check and verify
handle them (:class:`~lora_compat.weights.flux_layouts.FluxLoraFile` with ``arch`` ``sd3``).

Layouts read: ``kohya`` (sd-scripts ``networks.lora_sd3``: ``lora_unet_joint_blocks_0_x_block_attn_qkv``, the
``emb_dims`` embedders and final layer, ``lora_te1_`` CLIP-L, ``lora_te2_`` CLIP-G, ``lora_te3_`` T5), ``comfyui``
(``diffusion_model.<SAI path>``, ``text_encoders.clip_l|clip_g|t5xxl.transformer.``), ``diffusers`` / ``ai-toolkit``
(``transformer.<SD3Transformer2DModel path>.lora_A.weight``, ``text_encoder.`` CLIP-L, ``text_encoder_2.`` CLIP-G,
``text_encoder_3.`` T5; scales from ``lora_adapter_metadata``), ``peft`` folders (``transformer/``,
``text_encoder/``, ``text_encoder_2/``, ``text_encoder_3/``) and, read only, ``onetrainer``
(``lora_transformer_<diffusers path with _>``, which ComfyUI also maps).

Widths are read from the file: the hidden width (1536 for SD3 medium and SD3.5 medium, 2432 for SD3.5 large; any
other value is a custom, e.g. tiny, model), the block count (the real one, or: the last block is the one whose
context half is pre-only), the blocks with ``attn2`` (SD3.5 medium: 13), the embedder and text-encoder widths. Every
module's shapes are then checked against the table built from them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from lora_compat.arch import flux as fa
from lora_compat.arch import sd3
from lora_compat.errors import UserError
from lora_compat.weights.flux_layouts import (
    FluxLoraFile,
    FluxSlice,
    _apply_adapter_metadata,
    _build,
    _check_overlaps,
    _Key,
    _key_label,
    _network_arg,
    _ordered,
    _recorded_alpha_dtypes,
    _slice_key,
    group_keys,
    metadata_family,
    read_fused_peft_dir,
    sniff_family,
)
from lora_compat.weights.layouts import LoraFile
from lora_compat.weights.safetensors_io import SafetensorsFile, TensorEntry, read_header

ARCHS = ("sd3",)
PEFT_DIRS = {"transformer": "transformer", "text_encoder": "te1", "text_encoder_2": "te2", "text_encoder_3": "te3"}
REAL_HIDDEN = {1536: "sd3-medium", 2432: "sd3.5-large"}


# --- keys ----------------------------------------------------------------------------------------------------------

def _classify(stem: str) -> _Key | None:
    """Where a key's module stem points in SD3's namings (None when none fits)."""
    if stem.startswith("lora_transformer_"):   # OneTrainer: the diffusers path with . -> _ (read only)
        return _Key("onetrainer", "transformer", "od", stem[len("lora_transformer_"):])
    for prefix, part in (("lora_unet_", "transformer"), ("lora_te1_", "te1"), ("lora_te2_", "te2"),
                         ("lora_te3_", "te3")):
        if stem.startswith(prefix):
            return _Key("kohya", part, "kohya", stem)
    for prefix, part in (("diffusion_model.", "transformer"), ("text_encoders.clip_l.transformer.", "te1"),
                         ("text_encoders.clip_g.transformer.", "te2"), ("text_encoders.t5xxl.transformer.", "te3")):
        if stem.startswith(prefix):
            return _Key("comfyui", part, "bfl", stem[len(prefix):])
    s = stem.removeprefix("base_model.model.")
    for prefix, part in (("transformer.", "transformer"), ("text_encoder.", "te1"), ("text_encoder_2.", "te2"),
                         ("text_encoder_3.", "te3")):
        if s.startswith(prefix):
            return _Key("diffusers", part, "diffusers", s[len(prefix):])
    if s.startswith("encoder.block."):
        return _Key("diffusers", "te3", "diffusers", s)
    return _Key("diffusers", "transformer", "diffusers", s)   # prefix-less paths (PEFT: the part comes from its folder)


_OD_INDEX: dict[int, dict[str, fa.FluxPart]] = {}


def _od_index(table: sd3.Sd3Table) -> dict[str, fa.FluxPart]:
    """OneTrainer's ``lora_transformer_`` names: diffusers paths with ``.`` -> ``_`` (tables are cached: by id)."""
    idx = _OD_INDEX.get(id(table))
    if idx is None:
        idx = _OD_INDEX[id(table)] = {p.diffusers_path.replace(".", "_"): p
                                      for (part, _), p in table.by_diffusers.items() if part == "transformer"}
    return idx


def _resolve(table: sd3.Sd3Table, key: _Key) -> FluxSlice | None:
    if key.naming == "od":
        op = _od_index(table).get(key.name)
        return FluxSlice(table.by_kohya[op.module], op.position, 1) if op is not None else None
    if key.naming == "kohya":
        m = table.by_kohya.get(key.name)
        return FluxSlice(m, 0, len(m.parts)) if m is not None else None
    if key.naming == "bfl":
        m = table.by_bfl.get((key.part, key.name))
        return FluxSlice(m, 0, len(m.parts)) if m is not None else None
    p = table.by_diffusers.get((key.part, key.name))
    if p is None:
        return None
    return FluxSlice(table.by_kohya[p.module], p.position, 1)


def _wide_table() -> sd3.Sd3Table:
    """Every name a file may use (many blocks, all with attn2): resolves names before the widths are known."""
    return sd3.sd3_table("sd3.5-medium", sd3.Sd3Widths(depth=128, attn2_blocks=127), fa.CLIP_L, sd3.CLIP_G,
                         fa.T5Widths(layers=64))


def _dims(sf: SafetensorsFile, label: str, roles: dict[str, TensorEntry]) -> tuple[int, int, int]:
    """(out, in, kernel) a down/up pair implies; UserError when unpaired or not a LoRA pair."""
    down, up = roles.get("down"), roles.get("up")
    if down is None or up is None:
        raise UserError(f"lacks {'lora_down/lora_A' if down is None else 'lora_up/lora_B'} (unpaired tensors)",
                        file=str(sf.path), key=label)
    ds, us = down.shape, up.shape
    k = 1
    if len(ds) == 4:
        k = ds[2] if ds[2] == ds[3] else -1
    if len(us) == 4 and us[2:] == (1, 1):
        us = us[:2]
    if len(ds) not in (2, 4) or len(us) != 2 or ds[0] != us[1] or ds[0] <= 0 or k <= 0:
        raise UserError(f"down {list(down.shape)} and up {list(up.shape)} are not a LoRA pair", file=str(sf.path),
                        key=label)
    return us[0], ds[1], k


# --- widths --------------------------------------------------------------------------------------------------------

def _one(values: dict[str, set[int]], what: str, sf: SafetensorsFile) -> int | None:
    got = values.get(what, set())
    if len(got) > 1:
        raise UserError(f"the modules disagree on the model's {what} width ({', '.join(map(str, sorted(got)))})",
                        file=str(sf.path))
    return next(iter(got)) if got else None


def _te_widths(found: dict[str, set[int]], sf: SafetensorsFile, prefix: str, layers: int,
               real: fa.ClipWidths) -> fa.ClipWidths:
    h, mlp = _one(found, f"{prefix}_h", sf), _one(found, f"{prefix}_mlp", sf)
    if layers < 0:
        return real
    return fa.ClipWidths(h or real.hidden, mlp or real.mlp, layers + 1)


def _variant_hint(meta: dict[str, str]) -> str | None:
    version = meta.get("ss_base_model_version", "")
    for variant, v in sd3.BASE_MODEL_VERSION.items():
        if version == v:
            return variant
    spec = meta.get("modelspec.architecture", "").lower()
    for variant, arch in sd3.MODELSPEC_ARCH.items():
        if spec.startswith(arch.split("/")[0]) and not (variant == "sd3-medium" and "3-5" in spec):
            return variant
    return None


def _table_for(sf: SafetensorsFile, groups: dict[_Key, dict[str, TensorEntry]], hint: str | None
               ) -> tuple[sd3.Sd3Table, bool, str | None]:
    """The table the file's modules fit (real widths, or widths read from the file), whether the widths are custom,
    and the variant (None when the file does not tell)."""
    wide = _wide_table()
    found: dict[str, set[int]] = {}
    max_block, layers = -1, {"te1": -1, "te2": -1, "te3": -1}
    ctx_full: set[int] = set()
    attn2: set[int] = set()
    pre_only_blocks: set[int] = set()
    dims: dict[_Key, tuple[int, int, int]] = {}

    def add(**values: int) -> None:
        for what, value in values.items():
            found.setdefault(what, set()).add(value)

    for k, roles in groups.items():
        label = _key_label(k, roles)
        sl = _resolve(wide, k)
        if sl is None:
            raise UserError(f"{label} is not an SD3/SD3.5 module", file=str(sf.path))
        out, fin, kern = dims[k] = _dims(sf, label, roles)
        m = sl.module
        path = m.bfl_path
        if m.part != "transformer":
            layers[m.part] = max(layers[m.part], m.block if m.block is not None else 0)
            if m.part == "te3":
                if path.endswith(("SelfAttention.q", "SelfAttention.k", "SelfAttention.v")):
                    add(t5_d=fin, t5_inner=out)
                elif path.endswith("SelfAttention.o"):
                    add(t5_inner=fin, t5_d=out)
                elif path.endswith("wo"):
                    add(t5_ff=fin, t5_d=out)
                else:
                    add(t5_d=fin, t5_ff=out)
            elif path.endswith("mlp.fc1"):
                add(**{f"{m.part}_h": fin, f"{m.part}_mlp": out})
            elif path.endswith("mlp.fc2"):
                add(**{f"{m.part}_mlp": fin, f"{m.part}_h": out})
            else:
                add(**{f"{m.part}_h": fin})
                add(**{f"{m.part}_h": out})
            continue
        if m.group == "joint":
            assert m.block is not None
            max_block = max(max_block, m.block)
            add(h=out if path.endswith("mlp.fc2") else fin)
            if ".attn2." in path:
                attn2.add(m.block)
            if ".context_block." in path and not path.endswith("attn.qkv"):
                if path.endswith("adaLN_modulation.1"):
                    (pre_only_blocks if out == 2 * fin else ctx_full).add(m.block)
                else:
                    ctx_full.add(m.block)
            if ".x_block.adaLN_modulation" in path and out == 9 * fin:
                attn2.add(m.block)
        elif path == "context_embedder":
            add(context=fin, h=out)
        elif path == "t_embedder.mlp.0":
            add(time=fin, h=out)
        elif path == "y_embedder.mlp.0":
            add(adm=fin, h=out)
        elif path == "x_embedder.proj":
            add(in_channels=fin, patch=kern, h=out)
        elif path == "final_layer.linear":
            add(h=fin, final_out=out)
        elif path == "final_layer.adaLN_modulation.1":
            add(h=fin)
        else:
            add(h=fin)
    h = _one(found, "h", sf)
    real_variant = REAL_HIDDEN.get(h) if h is not None else "sd3-medium"
    variant = hint
    if real_variant is not None:
        if h == 1536 and (attn2 or hint == "sd3.5-medium"):
            real_variant = "sd3.5-medium"
        elif (h == 1536 and hint not in (None, "sd3-medium", "sd3.5-medium")) or (h == 2432 and hint not in (
                None, "sd3.5-large")):
            raise UserError(f"the metadata says {hint}, but the modules have hidden width {h}", file=str(sf.path))
        base = sd3.WIDTHS[real_variant]
        if max_block >= base.depth:
            raise UserError(f"joint block {max_block} is beyond the {base.depth} blocks of {real_variant}",
                            file=str(sf.path))
        widths = base
        variant = variant or (real_variant if (h == 2432 or attn2) else None)
    else:
        assert h is not None
        depth = max_block + 2 if (max_block in ctx_full or max_block < 0) else max_block + 1
        if pre_only_blocks:
            depth = max(pre_only_blocks) + 1
        patch = _one(found, "patch", sf) or 2
        final_out = _one(found, "final_out", sf)
        out_ch = final_out // (patch * patch) if final_out is not None and final_out % (patch * patch) == 0 else 16
        real = sd3.Sd3Widths()
        widths = sd3.Sd3Widths(depth=max(depth, 1), hidden=h, context=_one(found, "context", sf) or real.context,
                               adm=_one(found, "adm", sf) or real.adm,
                               in_channels=_one(found, "in_channels", sf) or real.in_channels, patch=patch,
                               attn2_blocks=max(attn2) + 1 if attn2 else 0, out_channels=out_ch,
                               time=_one(found, "time", sf) or real.time)
        variant = None
    clip_l = _te_widths(found, sf, "te1", layers["te1"], fa.CLIP_L)
    clip_g = _te_widths(found, sf, "te2", layers["te2"], sd3.CLIP_G)
    t5 = fa.T5_XXL
    if layers["te3"] >= 0:
        t5 = fa.T5Widths(_one(found, "t5_d", sf) or t5.d_model, _one(found, "t5_inner", sf) or t5.inner,
                         _one(found, "t5_ff", sf) or t5.d_ff, layers["te3"] + 1)
    custom = (real_variant is None or clip_l[:2] != fa.CLIP_L[:2] or clip_g[:2] != sd3.CLIP_G[:2]
              or t5[:3] != fa.T5_XXL[:3])
    table_variant = "sd3.5-medium" if widths.attn2_blocks else "sd3-medium"
    if real_variant is not None:
        table_variant = real_variant
    real_clip_l = clip_l if custom else fa.CLIP_L
    real_clip_g = clip_g if custom else sd3.CLIP_G
    real_t5 = t5 if custom else fa.T5_XXL
    table = sd3.sd3_table(table_variant, widths, real_clip_l, real_clip_g, real_t5)
    for k, (out, fin, kern) in dims.items():
        sl = _resolve(table, k)
        label = _key_label(k, groups[k])
        if sl is None:
            raise UserError(f"{label} is not a module of this SD3 model (its other modules say {table_variant} "
                            f"with {widths.depth} blocks, attn2 in the first {widths.attn2_blocks})",
                            file=str(sf.path))
        if (out, fin, kern) != (sl.out_features, sl.in_features, sl.module.kernel):
            raise UserError(f"shape mismatch: {label}: tensors give {fin}->{out}, the model has "
                            f"{sl.in_features}->{sl.out_features}", file=str(sf.path))
    return table, custom, variant


# --- reading -------------------------------------------------------------------------------------------------------

def read_sd3_safetensors(sf: SafetensorsFile, arch_opt: str = "auto", *, layout_hint: str | None = None,
                         part_hint: str | None = None) -> FluxLoraFile:
    """Read an SD3/SD3.5 LoRA file (any layout above) from its parsed header."""
    groups, layout = group_keys(sf, _classify, "SD3", layout_hint=layout_hint, part_hint=part_hint)
    table, custom, variant = _table_for(sf, groups, _variant_hint(sf.metadata))
    modules = []
    alpha_dtypes: dict[str, str] = {}
    for k, roles in groups.items():
        sl = _resolve(table, k)
        assert sl is not None  # _table_for resolved every key
        modules.append(_build(sf, sl, roles, _key_label(k, roles), widths=True))
        if "alpha" in roles:
            alpha_dtypes[_slice_key(sl)] = roles["alpha"].dtype
    _check_overlaps(sf.path, modules)
    lf = FluxLoraFile(sf.path, layout, "sd3", _ordered(table, modules), dict(sf.metadata), [sf], naming="",
                      custom_widths=custom, variant=variant, table=table, alpha_dtypes=alpha_dtypes)
    if layout in ("diffusers", "ai-toolkit") and "lora_adapter_metadata" in sf.metadata:
        _apply_adapter_metadata(lf)
    lf.split_qkv = _network_arg(sf.metadata, "split_qkv") == "True"
    _recorded_alpha_dtypes(lf)
    return lf


def read_sd3_peft_dir(path: Path, arch_opt: str = "auto") -> FluxLoraFile:
    """Read an SD3 PEFT adapter folder (one adapter, or one sub-folder per pipeline component)."""
    return read_fused_peft_dir(path, arch_opt, read_sd3_safetensors, PEFT_DIRS, "SD3")


# --- detection -------------------------------------------------------------------------------------------------------

def _converted_arch(meta: dict[str, str]) -> str | None:
    """The ``arch`` a lora-compat conversion recorded in its output (its own outputs name their family)."""
    raw = meta.get("lora_compat.conversion")
    if not raw or len(raw) > 4096:
        return None
    try:
        rec = json.loads(raw)
    except ValueError:
        return None
    arch = rec.get("arch") if isinstance(rec, dict) else None
    return arch if isinstance(arch, str) else None


_HIDDEN_PATH = re.compile(r"(?:^|\.|lora_transformer_)transformer_blocks[._]\d+[._]"
                          r"(?:attn[._](?:to_[qkv]|add_[qkv]_proj)|norm1[._]linear)\.(?:lora_A|lora_down)\.weight$")


def is_sd3(sf: SafetensorsFile) -> bool:
    """The file is an SD3/SD3.5 LoRA: SD3 names (``joint_blocks``, ``pos_embed``), SD3 metadata, a lora-compat
    SD3 conversion, or MM-DiT double-block names (shared with FLUX.1) at SD3's widths (1536, 2432)."""
    keys = list(sf.tensors)
    fam = sniff_family(keys, sf.metadata)
    if fam == "sd3":
        return True
    if fam != "flux1-or-sd3" and fam is not None:
        return False
    if _converted_arch(sf.metadata) == "sd3" or (fam is None and metadata_family(sf.metadata) == "sd3"):
        return True
    if fam == "flux1-or-sd3":
        for k, e in sf.tensors.items():
            if _HIDDEN_PATH.search(k) and len(e.shape) == 2:
                return e.shape[1] in REAL_HIDDEN
    return False


def is_sd3_peft_dir(path: Path) -> bool:
    """A PEFT folder holding an SD3 adapter (its transformer or single adapter file says SD3; or a CLIP-G or
    ``text_encoder_3`` component, which FLUX does not have)."""
    if os.path.lexists(path / "text_encoder_3" / "adapter_config.json"):
        return True
    for sub in ("transformer", "text_encoder_2", "text_encoder", ""):
        f = path / sub / "adapter_model.safetensors" if sub else path / "adapter_model.safetensors"
        if os.path.lexists(f.parent / "adapter_config.json") and f.is_file():
            try:
                sf = read_header(f)
            except UserError:
                return False
            return _converted_arch(sf.metadata) == "sd3" or metadata_family(sf.metadata) == "sd3" or (
                sub in ("transformer", "") and is_sd3(sf))
    return False


# --- entry points (weights.reader.FAMILY_READERS) ------------------------------------------------------------------

def owns_peft_dir(path: Path, arch_opt: str) -> bool:
    """Whether this reader takes the PEFT folder ``path`` (``--arch sd3``, or SD3 modules inside)."""
    if arch_opt == "sd3":
        return True
    return arch_opt == "auto" and is_sd3_peft_dir(path)


def read_peft_dir(path: Path, arch_opt: str) -> LoraFile:
    """Read an SD3 PEFT folder (see :func:`read_sd3_peft_dir`)."""
    return read_sd3_peft_dir(path, arch_opt)


def read_header_family(sf: SafetensorsFile, arch_opt: str) -> LoraFile | None:
    """The SD3 reader for an SD3 file (``--arch sd3`` or detected), None for every other file."""
    if arch_opt == "sd3" or (arch_opt == "auto" and is_sd3(sf)):
        return read_sd3_safetensors(sf, arch_opt)
    return None
