"""``check`` and ``inspect`` for SD3/SD3.5 LoRAs: which modules each consumer applies, which it drops, why.

The rules restate what each loader does with SD3 files (modern-archs.md §3, §8; read in the sources named there):

* diffusers ``SD3LoraLoaderMixin`` (0.42, read): ``lora_state_dict`` has no converter for kohya or ComfyUI SD3
  names, and ``load_lora_weights`` loads only ``transformer.``, ``text_encoder.`` (CLIP-L) and ``text_encoder_2.``
  (CLIP-G) keys, so a kohya / ComfyUI file loads nothing (sd-scripts #2103) and ``text_encoder_3.`` (T5) keys are
  never loaded; scales come from ``lora_adapter_metadata`` (``network_alphas=None``).
* ComfyUI (``comfy/lora.py`` ``model_lora_keys_unet`` / ``_clip``): ``lora_unet_`` + the SAI path underscored and
  ``diffusion_model.`` natively; diffusers ``transformer.`` names through ``mmdit_to_diffusers`` row slices;
  ``lora_te1_`` / ``text_encoder.`` CLIP-L, ``lora_te2_`` / ``text_encoder_2.`` CLIP-G, ``lora_te3_`` T5 (not
  ``text_encoder_3.``); scale ``.alpha / rank`` or 1 (safetensors metadata is not read).
* sd-scripts ``networks.lora_sd3.create_network_from_weights``: kohya names only, ``.alpha`` on every module
  (``modules_alpha[lora_name]``: ``KeyError`` otherwise), embedders included (it sets ``emb_dims`` to six zeros and
  takes each rank from the file); a ``split_qkv`` file applies at 1/3 (alpha saved for rank r).
* ai-toolkit: its SD3 network is PEFT-named (``transformer.`` + ``lora_A``/``lora_B``), transformer only, alpha
  ignored (scale 1).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from lora_compat.arch import sd3
from lora_compat.errors import UserError
from lora_compat.weights.check_result import CheckResult
from lora_compat.weights.flux_check import (
    adapter_metadata_note,
    ai_toolkit_check,
    comfyui_metadata_scale,
    comfyui_text_encoder_note,
    every_module_has_alpha,
    module_label,
    refuse_all,
    split_qkv_weak,
)
from lora_compat.weights.flux_layouts import FluxLoraFile

SD3_CHECK_TARGETS = ("diffusers", "comfyui", "sd-scripts", "ai-toolkit", "a1111")
TE_NAMES = {"te1": "CLIP-L", "te2": "CLIP-G", "te3": "T5-XXL"}


def check_sd3(lf: FluxLoraFile, target: str) -> CheckResult:
    """Check an SD3 LoRA against ``target`` (one of :data:`SD3_CHECK_TARGETS`)."""
    if target not in SD3_CHECK_TARGETS:
        raise ValueError(f"unknown target {target!r}")
    res = CheckResult(target, len(lf.modules))
    {"diffusers": _diffusers, "comfyui": _comfyui, "sd-scripts": _sd_scripts, "ai-toolkit": _ai_toolkit,
     "a1111": _a1111}[target](lf, res)
    if target in ("diffusers", "comfyui", "sd-scripts"):
        for m in split_qkv_weak(lf):
            res.problems.append((module_label(m), "split_qkv file: applies at 1/3 of the trained strength (alpha saved "
                                                  "for rank r, loaders divide by 3r); convert --to kohya rescales it"))
    return res


def _diffusers(lf: FluxLoraFile, res: CheckResult) -> None:
    if lf.layout == "peft":
        refuse_all(lf, res, "a PEFT folder is not a diffusers LoRA file (load_lora_weights finds no transformer. "
                            "keys); convert --to diffusers")
        return
    if lf.layout in ("kohya", "comfyui"):
        refuse_all(lf, res, "diffusers' SD3 loader has no converter for kohya/ComfyUI SD3 names: nothing is loaded "
                            "(sd-scripts #2103); convert --to diffusers")
        return
    for m in lf.modules:
        key = m.keys[0]
        if m.part == "te3":
            res.problems.append((module_label(m), "text_encoder_3 (T5) keys: "
                                                  "StableDiffusion3Pipeline.load_lora_weights loads transformer, "
                                                  "text_encoder and text_encoder_2 only; load them with PEFT"))
        elif not key.startswith(("transformer.", "text_encoder.", "text_encoder_2.")):
            res.problems.append((module_label(m), "no transformer./text_encoder. prefix: load_lora_weights loads "
                                                  "nothing for it"))
    adapter_metadata_note(lf, res)


def _comfyui(lf: FluxLoraFile, res: CheckResult) -> None:
    if lf.layout == "peft":
        refuse_all(lf, res, "ComfyUI loads LoRA files, not PEFT folders; convert --to comfyui")
        return
    for m in lf.modules:
        label = module_label(m)
        if m.part == "te3" and lf.layout in ("diffusers", "ai-toolkit"):
            res.problems.append((label, "text_encoder_3 (T5) keys are not mapped by ComfyUI (it maps lora_te3_ and "
                                        "t5xxl names); convert --to comfyui"))
        else:
            comfyui_metadata_scale(lf, m, res)
    comfyui_text_encoder_note(lf, res)


def _sd_scripts(lf: FluxLoraFile, res: CheckResult) -> None:
    if lf.layout != "kohya":
        refuse_all(lf, res, "networks.lora_sd3 reads kohya names (lora_unet_/lora_te1_/lora_te2_/lora_te3_) only; "
                            "convert --to kohya")
        return
    every_module_has_alpha(lf, res)


def _ai_toolkit(lf: FluxLoraFile, res: CheckResult) -> None:
    ai_toolkit_check(lf, res, "SD3")


def _a1111(lf: FluxLoraFile, res: CheckResult) -> None:
    raise UserError("check --target a1111 is not modelled for SD3/SD3.5 LoRAs (lora-compat makes no claim about "
                    "AUTOMATIC1111's SD3 loader); check --target comfyui for the kohya names", file=str(lf.path))


# --- inspect --------------------------------------------------------------------------------------------------------

def sd3_inspect(lf: FluxLoraFile) -> dict[str, Any]:
    """The ``sd3`` section of ``inspect --format json`` (stable contract; see docs/cli.md)."""
    groups = Counter(m.info.module.group for m in lf.modules)
    whole_fused = sum(1 for m in lf.modules if m.info.whole and m.info.module.fused)
    parts = sum(1 for m in lf.modules if m.info.n_parts == 1 and m.info.module.fused)
    widths = lf.table.widths if lf.table is not None else None
    return {
        "variant": lf.variant,
        "groups": dict(groups),
        "fused_modules": whole_fused,
        "split_parts": parts,
        "attn2_modules": sum(1 for m in lf.modules if ".attn2." in m.info.module.bfl_path),
        "text_encoders": {"clip_l": sum(m.part == "te1" for m in lf.modules),
                          "clip_g": sum(m.part == "te2" for m in lf.modules),
                          "t5xxl": sum(m.part == "te3" for m in lf.modules)},
        "split_qkv": lf.split_qkv,
        "split_qkv_weak_modules": len(split_qkv_weak(lf)),
        "widths": None if not lf.custom_widths or widths is None else dict(widths._asdict()),
        "kohya_names": sd3.KOHYA_PREFIX,
    }
