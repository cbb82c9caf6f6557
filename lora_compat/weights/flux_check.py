"""``check`` and ``inspect`` for FLUX.1 / Chroma LoRAs: which modules each consumer applies, which it drops, why.

The rules restate what each loader does with FLUX files (modern-archs.md §8, §12; read in the sources named there;
the diffusers rules marked *run* were observed with diffusers 0.42 on a tiny FluxTransformer2DModel):

* diffusers ``FluxLoraLoaderMixin``: kohya / ComfyUI files go through its kohya converter, which drops T5
  (``lora_te3_``, ``text_encoders.t5xxl``) and writes embedder / final-layer keys without the ``transformer.``
  prefix, so ``load_lora_weights`` drops them silently (*run*); PEFT-named files: ``text_encoder_2.`` (T5) is never
  loaded, ``lora_adapter_metadata`` scales need diffusers >= 0.34; OneTrainer files need ``.alpha`` on every module.
* ComfyUI: kohya, ComfyUI-native, diffusers/ai-toolkit (``transformer.``, row slices) and OneTrainer names; scale is
  ``.alpha / rank`` or 1 (safetensors metadata is not read); Chroma has no CLIP-L, so its T5 maps to ``lora_te1_``
  and sd-scripts' ``lora_te3_`` keys are not loaded; XLabs keys need XLabs' custom node.
* sd-scripts (``networks.lora_flux`` from weights, merge, minimal inference): kohya names only, ``.alpha`` on every
  module (``KeyError`` otherwise), no final-layer modules; a ``split_qkv`` file applies at 1/n.
* ai-toolkit: loads its own layout (``transformer.`` + ``lora_A``/``lora_B``) and ignores alphas (scale 1); its FLUX
  network has no text-encoder modules.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from lora_compat.arch import flux as fa
from lora_compat.weights.check_result import CheckResult
from lora_compat.weights.flux_layouts import FluxLoraFile
from lora_compat.weights.flux_tensor_bytes import block_diagonal

FLUX_CHECK_TARGETS = ("diffusers", "comfyui", "sd-scripts", "ai-toolkit", "a1111")


def module_label(m) -> str:
    """The module as the file names it (its first key without the parameter)."""
    key = m.keys[0] if m.keys else m.info.kohya_name
    for suffix in (".lora_down.weight", ".lora_up.weight", ".lora_A.weight", ".lora_B.weight", ".alpha",
                   ".down.weight", ".up.weight", ".lora_A.default.weight", ".lora_B.default.weight"):
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def split_qkv_weak(lf: FluxLoraFile) -> list:
    """Whole fused modules of an uncorrected split_qkv file that every loader applies at 1/n."""
    if not lf.split_qkv or "lora_compat.converted_from" in lf.metadata:
        return []
    return [m for m in lf.modules if m.info.whole and m.info.module.fused
            and block_diagonal(m, m.info.module.split_rows())]


def check_flux(lf: FluxLoraFile, target: str) -> CheckResult:
    """Check a FLUX LoRA against ``target`` (one of :data:`FLUX_CHECK_TARGETS`)."""
    if target not in FLUX_CHECK_TARGETS:
        raise ValueError(f"unknown target {target!r}")
    res = CheckResult(target, len(lf.modules))
    {"diffusers": _diffusers, "comfyui": _comfyui, "sd-scripts": _sd_scripts, "ai-toolkit": _ai_toolkit,
     "a1111": _a1111}[target](lf, res)
    if target != "ai-toolkit" and target != "a1111":
        for m in split_qkv_weak(lf):
            n = len(m.info.module.parts)
            res.problems.append((module_label(m), f"split_qkv file: applies at 1/{n} of the trained strength "
                                                  f"(sd-scripts #2204: alpha saved for rank r, loaders divide by n*r); "
                                                  f"convert --to kohya rescales it"))
    return res


def refuse_all(lf: FluxLoraFile, res: CheckResult, reason: str) -> None:
    """Every module of ``lf`` is not loaded by the target, for ``reason``."""
    res.problems += [(module_label(m), reason) for m in lf.modules]


# --- loader rules the DiT families share (FLUX.1, SD3) -------------------------------------------------------------

def adapter_metadata_note(lf: FluxLoraFile, res: CheckResult) -> None:
    """diffusers: scales kept in ``lora_adapter_metadata`` need diffusers >= 0.34 (older ones use alpha = rank)."""
    if "lora_adapter_metadata" in lf.metadata and any(m.scale != 1.0 for m in lf.modules):
        res.notes.append("scales come from lora_adapter_metadata: needs diffusers >= 0.34 (older versions use "
                         "alpha = rank)")


def comfyui_metadata_scale(lf: FluxLoraFile, m: Any, res: CheckResult) -> None:
    """ComfyUI: a scale that lives only in diffusers' ``lora_adapter_metadata`` is ignored (applied as 1)."""
    if m.scale != 1.0 and not m.alpha_key and lf.layout in ("diffusers", "ai-toolkit"):
        label = module_label(m)
        res.problems.append((label, "scale lives in lora_adapter_metadata, which ComfyUI ignores (it uses 1); "
                                    "convert --to comfyui or --bake-scale"))
        res.details[label] = f"scale {m.scale:g} applied as 1"


def comfyui_text_encoder_note(lf: FluxLoraFile, res: CheckResult) -> None:
    """ComfyUI: text-encoder keys apply only through a loader that takes the CLIP."""
    if any(m.part != "transformer" for m in lf.modules):
        res.notes.append("text-encoder keys load only through a LoRA loader that takes the CLIP; LoraLoaderModelOnly "
                         "reports them as 'lora key not loaded' (harmless, but they are not applied)")


def every_module_has_alpha(lf: FluxLoraFile, res: CheckResult) -> bool:
    """sd-scripts' ``create_network_from_weights`` reads ``<module>.alpha`` for every module (KeyError without
    it); False (and every module refused) when one is missing."""
    missing = [m for m in lf.modules if m.alpha_key is None]
    if missing:
        refuse_all(lf, res, f"create_network_from_weights needs .alpha on every module ({module_label(missing[0])} has "
                            f"none): KeyError; convert --to kohya writes them")
    return not missing


def _diffusers(lf: FluxLoraFile, res: CheckResult) -> None:
    if lf.layout == "peft":
        refuse_all(lf, res, "a PEFT folder is not a diffusers LoRA file (load_lora_weights finds no transformer. "
                            "keys); convert --to diffusers")
        return
    if lf.layout in ("kohya", "comfyui"):
        for m in lf.modules:
            g = m.info.module.group
            if m.part == "te3":
                res.problems.append((module_label(m), "T5-XXL LoRA: diffusers' kohya-FLUX converter drops it "
                                                      "(diffusers #10004); convert --to peft and load it into "
                                                      "text_encoder_2 with PEFT"))
            elif g in ("embedder", "final"):
                res.problems.append((module_label(m), "embedder/final-layer LoRA: diffusers' kohya-FLUX converter "
                                                      "writes it without the transformer. prefix and load_lora_weights "
                                                      "drops it silently; convert --to diffusers keeps it"))
        return
    if lf.layout == "onetrainer":
        missing = [m for m in lf.modules if m.alpha is None]
        if missing:
            refuse_all(lf, res, "OneTrainer layout without .alpha on every module: diffusers' converter raises "
                                "KeyError; convert --to diffusers")
            return
        for m in lf.modules:
            if m.part == "te3":
                res.problems.append((module_label(m), "T5 (lora_te2_) keys fail diffusers' OneTrainer converter"))
        return
    if lf.layout == "xlabs":
        return  # diffusers converts XLabs keys (scale 1, which is XLabs' own)
    for m in lf.modules:  # diffusers / ai-toolkit / SimpleTuner
        key = m.keys[0]
        if m.part == "te3":
            res.problems.append((module_label(m), "text_encoder_2 (T5) keys: FluxPipeline.load_lora_weights loads "
                                                  "transformer and text_encoder only; load them with PEFT"))
        elif not key.startswith(("transformer.", "text_encoder.")):
            res.problems.append((module_label(m), "no transformer./text_encoder. prefix: load_lora_weights loads "
                                                  "nothing for it"))
    adapter_metadata_note(lf, res)


def _comfyui(lf: FluxLoraFile, res: CheckResult) -> None:
    if lf.layout == "peft":
        refuse_all(lf, res, "ComfyUI loads LoRA files, not PEFT folders (base_model.model. keys are not mapped); "
                            "convert --to comfyui")
        return
    if lf.layout == "xlabs":
        refuse_all(lf, res, "XLabs processor.* keys are not mapped by core ComfyUI (XLabs' custom node loads them); "
                            "convert --to comfyui")
        return
    chroma = lf.arch == "chroma"
    for m in lf.modules:
        label = module_label(m)
        if m.part == "te3" and chroma and lf.layout == "kohya":
            res.problems.append((label, "Chroma has no CLIP-L, so ComfyUI maps its T5 LoRA as lora_te1_: lora_te3_ "
                                        "keys are 'not loaded' (source-read)"))
        elif m.part == "te3" and lf.layout in ("diffusers", "ai-toolkit"):
            res.problems.append((label, "text_encoder_2 (T5) keys are not mapped by ComfyUI; convert --to comfyui"))
        else:
            comfyui_metadata_scale(lf, m, res)
    comfyui_text_encoder_note(lf, res)


def _sd_scripts(lf: FluxLoraFile, res: CheckResult) -> None:
    if lf.layout != "kohya":
        refuse_all(lf, res, "networks.lora_flux reads kohya names (lora_unet_/lora_te1_/lora_te3_) only; convert --to "
                            "kohya")
        return
    if not every_module_has_alpha(lf, res):
        return
    for m in lf.modules:
        if not m.info.module.sd_scripts:
            res.problems.append((module_label(m), "final-layer modules are never created by networks.lora_flux: "
                                                  "ignored (load_state_dict strict=False)"))
        elif lf.arch == "chroma" and m.part == "te1":
            res.problems.append((module_label(m), "Chroma has no CLIP-L: ignored"))


def _ai_toolkit(lf: FluxLoraFile, res: CheckResult) -> None:
    ai_toolkit_check(lf, res, "FLUX")


def ai_toolkit_check(lf: FluxLoraFile, res: CheckResult, family: str) -> None:
    """What ai-toolkit's ``family`` (FLUX, SD3) network loads: its own layout, transformer modules only, alpha
    ignored."""
    if lf.layout not in ("diffusers", "ai-toolkit"):
        refuse_all(lf, res, f"ai-toolkit's {family} network loads its own layout (transformer.<diffusers "
                            "path>.lora_A/lora_B); convert --to ai-toolkit")
        return
    for m in lf.modules:
        label = module_label(m)
        if m.part != "transformer":
            res.problems.append((label, f"ai-toolkit's {family} network has no text-encoder modules: not loaded"))
        elif m.scale != 1.0:
            res.problems.append((label, "ai-toolkit ignores alpha (scale 1, ai-toolkit #157); convert --to "
                                        "ai-toolkit bakes the scale"))
            res.details[label] = f"scale {m.scale:g} applied as 1"


def _a1111(lf: FluxLoraFile, res: CheckResult) -> None:
    refuse_all(lf, res, "AUTOMATIC1111's WebUI does not run FLUX.1 (Forge and ComfyUI do; Forge reads kohya files)")


# --- inspect --------------------------------------------------------------------------------------------------------

def flux_inspect(lf: FluxLoraFile) -> dict[str, Any]:
    """The ``flux`` section of ``inspect --format json`` (stable contract; see docs/cli.md)."""
    groups = Counter(m.info.module.group for m in lf.modules)
    whole_fused = sum(1 for m in lf.modules if m.info.whole and m.info.module.fused)
    parts = sum(1 for m in lf.modules if m.info.n_parts == 1 and m.info.module.fused)
    partial = sum(1 for m in lf.modules if 1 < m.info.n_parts < len(m.info.module.parts))
    return {
        "variant": lf.variant,
        "groups": dict(groups),
        "fused_modules": whole_fused,
        "split_parts": parts,
        "partial_fused": partial,
        "text_encoders": {"clip_l": sum(m.part == "te1" for m in lf.modules),
                          "t5xxl": sum(m.part == "te3" for m in lf.modules)},
        "split_qkv": lf.split_qkv,
        "split_qkv_weak_modules": len(split_qkv_weak(lf)),
        "widths": None if not lf.custom_widths or lf.table is None else dict(lf.table.widths._asdict()),
        "kohya_names": fa.KOHYA_PREFIX,
    }
