"""Pre-flight: will every module of a LoRA apply, with the right scale, in a given consumer?

The rules restate what each consumer's loader does (reference: lora-key-layouts.md §4.3, §4.5, §5): which
layouts and names it maps, which keys it drops silently, where it mis-scales alphas. No torch.
"""

from __future__ import annotations

from collections import Counter

from lora_compat.weights.check_result import CheckResult
from lora_compat.weights.flux_layouts import FluxLoraFile
from lora_compat.weights.layouts import PART_COMPONENT, AdapterModule, LoraFile

TARGETS = ("diffusers", "comfyui", "a1111", "sd-scripts", "ai-toolkit")
UNET_ATTN_PROJ = (".to_q", ".to_k", ".to_v", ".to_out.0")
TE_ATTN_PROJ = (".q_proj", ".k_proj", ".v_proj", ".out_proj")


def _label(m: AdapterModule) -> str:
    """The module as the file names it: kohya name, or component-prefixed path for PEFT/diffusers files."""
    key = m.keys[0] if m.keys else m.info.kohya_name
    if key.startswith(("lora_unet_", "lora_te")):
        return key.partition(".")[0]
    return f"{PART_COMPONENT[m.part]}.{m.info.diffusers_path}"


def _kohya_label(m: AdapterModule) -> str:
    return m.keys[0].partition(".")[0]


def check_lora(lf: LoraFile, target: str) -> CheckResult:
    """Check ``lf`` against ``target`` (one of :data:`TARGETS`)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}")
    if isinstance(lf, FluxLoraFile) and lf.arch == "sd3":
        from lora_compat.weights.sd3_check import check_sd3  # SD3/SD3.5 rules

        return check_sd3(lf, target)
    if isinstance(lf, FluxLoraFile):
        from lora_compat.weights.flux_check import check_flux  # FLUX.1 / Chroma rules

        return check_flux(lf, target)
    res = CheckResult(target, len(lf.modules))
    if target == "ai-toolkit":
        _all(lf, res, "ai-toolkit's SD networks load kohya (LDM-named) files; check --target comfyui or a1111 "
                      "for SD consumers")
        return res
    fn = {"diffusers": _diffusers, "comfyui": _comfyui, "a1111": _a1111, "sd-scripts": _sd_scripts}[target]
    fn(lf, res)
    return res


def _all(lf: LoraFile, res: CheckResult, reason: str) -> None:
    res.problems += [(_label(m), reason) for m in lf.modules]


# --- diffusers ----------------------------------------------------------------------------------------------------

def _diffusers(lf: LoraFile, res: CheckResult) -> None:
    if lf.layout == "peft":
        _all(lf, res, "a PEFT folder is not a diffusers LoRA file (load_lora_weights finds no unet./text_encoder. "
                      "keys); convert --to diffusers")
        return
    if lf.layout == "kohya":
        bad = [m for m in lf.modules if m.algo != "lora" or "mid" in m.tensors]
        if bad:
            _all(lf, res, f"diffusers' kohya converter raises on {bad[0].algo if bad[0].algo != 'lora' else 'lora_mid'}"
                          " keys, so the whole file fails to load; convert --to peft or use ComfyUI/A1111")
            return
        if lf.arch in ("sd1", "sd2") and lf.naming == "sgm":
            _all(lf, res, "SGM (input_blocks) UNet names are only remapped for SDXL; the SD1/SD2 pipeline fails "
                          "(NoMatchingPeftModuleError); convert --to kohya to get diffusers names")
            return
        for m in lf.modules:
            if m.dora is not None:
                res.problems.append((_label(m), "dora_scale is dropped with a warning: loads as plain LoRA"))
        _diffusers_kohya_alphas(lf, res)
        return
    # diffusers / diffusers-old layouts
    if any(m.algo != "lora" for m in lf.modules):
        _all(lf, res, "LoHa/LoKr keys lack 'lora': the SD/SDXL pipelines raise 'Invalid LoRA checkpoint'")
        return
    if any(m.alpha_key for m in lf.modules):
        _all(lf, res, ".alpha keys in a non-kohya file: the SD/SDXL pipelines raise 'Invalid LoRA checkpoint'; "
                      "convert --to diffusers (alphas go to lora_adapter_metadata)")
        return
    prefixless = [m for m in lf.modules if not m.keys[0].startswith(("unet.", "text_encoder.", "text_encoder_2."))]
    for m in prefixless:
        res.problems.append((_label(m), "no unet./text_encoder. prefix: load_lora_weights loads nothing for it"))
    if "lora_adapter_metadata" in lf.metadata and any(m.scale != 1.0 for m in lf.modules):
        res.notes.append("scales come from lora_adapter_metadata: needs diffusers >= 0.34 (older versions use "
                         "alpha = rank)")


def _diffusers_kohya_alphas(lf: LoraFile, res: CheckResult) -> None:
    """diffusers' kohya path: most-common alpha for attention projections and for modules without alpha (§4.3)."""
    for part in ("unet", "te1", "te2"):
        mods = [m for m in lf.modules if m.part == part and m.dora is None]
        if not mods:
            continue
        with_alpha = [m.alpha for m in mods if m.alpha is not None]
        if not with_alpha:
            continue  # no alphas at all: diffusers uses alpha = rank everywhere, which is right
        common = Counter(with_alpha).most_common(1)[0][0]
        for m in mods:
            path = m.info.diffusers_path
            patterned = not path.endswith(UNET_ATTN_PROJ if part == "unet" else TE_ATTN_PROJ)
            if part != "unet" and m.info.hf_class == "CLIPTextModel":
                patterned = False  # transformers 5 flattens CLIPTextModel: alpha_pattern keeps text_model.
            got = m.alpha if (m.alpha is not None and patterned) else common
            want = m.alpha if m.alpha is not None else float(m.lora_rank)
            if got != want:
                why = "module has no alpha" if m.alpha is None else "its alpha_pattern key does not match the module"
                res.problems.append((_label(m), f"mis-scaled by diffusers' kohya loader ({why}): it gets the most "
                                                "common alpha; convert --to diffusers keeps the scale exact"))
                res.details[_label(m)] = f"alpha {got:g} used instead of {want:g}"


# --- ComfyUI ------------------------------------------------------------------------------------------------------

def _comfyui(lf: LoraFile, res: CheckResult) -> None:
    if lf.layout == "peft":
        _all(lf, res, "ComfyUI loads LoRA files, not PEFT folders (base_model.model. keys are not mapped); "
                      "convert --to kohya")
        return
    for m in lf.modules:
        label = _label(m)
        if m.dora is not None:
            if lf.layout != "kohya":
                res.problems.append((label, "lora_magnitude_vector is not a ComfyUI key: DoRA part dropped"))
            elif len(m.dora.shape) == 1:
                res.problems.append((label, "1-D dora_scale broadcasts wrongly in ComfyUI (#12938)"))
            elif m.dora_axis == "out":
                res.problems.append((label, "output-axis DoRA: ComfyUI normalises by ||W|| instead of ||W+dW|| "
                                            "(PR #15458), result differs from PEFT/LyCORIS"))
        if lf.layout == "kohya":
            continue
        path = m.info.diffusers_path
        key = m.keys[0]
        if m.part == "unet" and path.endswith(UNET_ATTN_PROJ) and lf.layout == "diffusers" \
                and (".lora_A." in key or ".lora_B." in key or ".lora.down." in key or ".lora.up." in key):
            res.problems.append((label, "ComfyUI does not map unet.<path> attention projections: 'lora key not "
                                        "loaded'; convert --to kohya"))
        elif m.part != "unet" and ".text_model." not in key and m.info.group != "extra":
            res.problems.append((label, "text-encoder key without text_model. is not mapped by ComfyUI"))
        elif m.scale != 1.0 and not m.alpha_key:
            res.problems.append((label, "scale lives in lora_adapter_metadata, which ComfyUI ignores (it uses 1); "
                                        "convert --to kohya or --bake-scale"))
            res.details[label] = f"scale {m.scale:g} applied as 1"


# --- AUTOMATIC1111 ------------------------------------------------------------------------------------------------

def _a1111(lf: LoraFile, res: CheckResult) -> None:
    if lf.layout != "kohya":
        _all(lf, res, "A1111 splits keys at the first '.', so dotted PEFT/diffusers module paths never match; "
                      "convert --to kohya")
        return
    mha_parts = {("sd2", "te1"), ("sdxl", "te2")}
    layers: dict[tuple[str, str], set[str]] = {}
    for m in lf.modules:
        if (lf.arch, m.part) in mha_parts and m.info.diffusers_path.endswith(TE_ATTN_PROJ):
            layer = m.info.diffusers_path.rsplit(".", 1)[0]
            layers.setdefault((m.part, layer), set()).add(m.info.diffusers_path.rsplit(".", 1)[1])
    for m in lf.modules:
        label = _kohya_label(m)
        name = label
        if m.dora is not None and m.dora_axis == "out":
            res.problems.append((label, "A1111 implements input-axis DoRA only; an [out, 1] dora_scale broadcasts "
                                        "silently wrong"))
        if lf.arch == "sd2" and name.startswith("lora_te1_"):
            res.problems.append((label, "SD2 text encoder: A1111 only maps lora_te_"))
        if lf.arch == "sdxl" and name.startswith("lora_te_"):
            res.problems.append((label, "SDXL needs lora_te1_/lora_te2_; lora_te_ is not mapped"))
        if lf.arch == "sdxl" and m.part == "unet" and lf.naming == "diffusers" and (
                m.info.diffusers_path == "up_blocks.0.upsamplers.0.conv" or
                m.info.diffusers_path.startswith("add_embedding.")):
            res.problems.append((label, "diffusers-named SDXL key that A1111 maps to the wrong block (dropped); "
                                        "convert --to kohya for SGM names"))
        if m.info.diffusers_path == "text_projection":
            res.problems.append((label, "text_projection has no A1111 mapping (not verified; likely dropped)"))
        if (lf.arch, m.part) in mha_parts and m.info.diffusers_path.endswith(TE_ATTN_PROJ):
            layer = m.info.diffusers_path.rsplit(".", 1)[0]
            if layers[(m.part, layer)] != {"q_proj", "k_proj", "v_proj", "out_proj"}:
                res.problems.append((label, "A1111 applies OpenCLIP attention LoRA only when q, k, v and out_proj "
                                            "are all present for the layer"))


# --- sd-scripts ---------------------------------------------------------------------------------------------------

def _sd_scripts(lf: LoraFile, res: CheckResult) -> None:
    if lf.layout != "kohya":
        _all(lf, res, "sd-scripts' networks.lora reads kohya names only; convert --to kohya")
        return
    for m in lf.modules:
        label = _kohya_label(m)
        if m.algo != "lora" or "mid" in m.tensors:
            res.problems.append((label, "needs LyCORIS (network_module=lycoris.kohya); networks.lora ignores it"))
            continue
        if m.dora is not None:
            res.problems.append((label, "networks.lora has no DoRA: dora_scale is ignored (strict=False)"))
        if m.info.group == "extra":
            res.problems.append((label, "not a module networks.lora creates: ignored (strict=False)"))
        if lf.arch == "sd1" and label.startswith("lora_te1_"):
            res.problems.append((label, "SD1: sd-scripts expects lora_te_; lora_te1_ is silently ignored"))
        if lf.arch in ("sd1", "sd2") and m.part == "unet" and lf.naming == "sgm":
            res.problems.append((label, "SD1/SD2 SGM (input_blocks) names are not remapped by sd-scripts"))
