"""``lora-compat demo``: an offline end-to-end tour on the tiny SD1 model.

Steps: build the tiny SD1 model (diffusers folder) and a synthetic dataset (shapes drawn with PIL, captions),
write a legacy kohya_ss GUI JSON preset for it, then lint -> migrate (to native TOML) -> train (~20 steps)
-> convert (kohya -> PEFT) -> inspect, each through its wing's API; a step that fails says why and the demo
goes on.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SHAPES = ("circle", "square", "triangle")
COLORS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 70, 220)}


def make_synthetic_dataset(folder: str | os.PathLike[str], n_images: int = 6, size: int = 64, repeats: int = 2,
                           concept: str = "shapes", seed: int = 0) -> Path:
    """Write a kohya folder ``<folder>/<repeats>_<concept>/`` of PIL-drawn shapes with ``.txt`` captions."""
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    sub = Path(folder) / f"{repeats}_{concept}"
    sub.mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        shape = SHAPES[i % len(SHAPES)]
        color_name = list(COLORS)[(i // len(SHAPES)) % len(COLORS)]
        im = Image.new("RGB", (size, size), (245, 245, 240))
        dr = ImageDraw.Draw(im)
        m = size // 8 + rng.randint(0, size // 16)
        box = (m, m, size - m, size - m)
        if shape == "circle":
            dr.ellipse(box, fill=COLORS[color_name])
        elif shape == "square":
            dr.rectangle(box, fill=COLORS[color_name])
        else:
            dr.polygon([(size // 2, m), (size - m, size - m), (m, size - m)], fill=COLORS[color_name])
        im.save(sub / f"{i:03d}.png")
        (sub / f"{i:03d}.txt").write_text(f"{concept}, a {color_name} {shape}, simple background", encoding="utf-8")
    return Path(folder)


def legacy_gui_preset(model_dir: str, data_dir: str, output_dir: str, *, steps: int = 20) -> dict[str, Any]:
    """A kohya_ss GUI (LoRA tab, 2023 era) preset: string numbers, percent warmup, epoch counts, as the GUI
    wrote them."""
    return {
        "LoRA_type": "Standard",
        "pretrained_model_name_or_path": model_dir,
        "v2": False, "v_parameterization": False, "sdxl": False,
        "train_data_dir": data_dir, "reg_data_dir": "", "output_dir": output_dir, "logging_dir": "",
        "output_name": "demo_lora", "max_resolution": "64,64", "enable_bucket": False,
        "learning_rate": "0.005", "unet_lr": "0.005", "text_encoder_lr": "0.0005",
        "lr_scheduler": "cosine", "lr_warmup": "10", "train_batch_size": 2, "epoch": 1,
        "max_train_steps": str(steps), "save_every_n_epochs": 1, "mixed_precision": "no", "save_precision": "float",
        "seed": "1234", "caption_extension": ".txt", "network_dim": 4, "network_alpha": 4,
        "optimizer": "AdamW", "optimizer_args": "", "clip_skip": "1", "shuffle_caption": True, "keep_tokens": "1",
        "gradient_accumulation_steps": 1.0, "xformers": True, "cache_latents": False, "save_model_as": "safetensors",
    }


def legacy_flux_gui_preset(model_dir: str, data_dir: str, output_dir: str, *, steps: int = 20) -> dict[str, Any]:
    """A kohya_ss GUI FLUX.1 preset (LoRA tab, ``flux1_checkbox``) shaped like the GUI's own
    ``flux1D - adamw8bit fp8.json``, for the tiny FLUX.1: a diffusers folder (so no ae/clip_l/t5xxl files), 64 px
    images, 16 T5 tokens and plain fp32 AdamW so that it trains in seconds on a CPU."""
    return {
        "LoRA_type": "Flux1", "flux1_checkbox": True, "model_list": "custom",
        "pretrained_model_name_or_path": model_dir, "ae": "", "clip_l": "", "t5xxl": "",
        "v2": False, "v_parameterization": False, "sdxl": False,
        "train_data_dir": data_dir, "reg_data_dir": "", "output_dir": output_dir, "logging_dir": "",
        "output_name": "demo_flux_lora", "max_resolution": "64,64", "enable_bucket": False,
        "learning_rate": 0.01, "unet_lr": 0.01, "lr_scheduler": "constant", "lr_warmup": 0, "train_batch_size": 2,
        "epoch": 1,
        "max_train_steps": steps, "save_every_n_epochs": 1, "mixed_precision": "no", "save_precision": "float",
        "seed": 42, "caption_extension": ".txt", "network_dim": 4, "network_alpha": 4, "optimizer": "AdamW",
        "optimizer_args": "", "gradient_accumulation_steps": 1, "cache_latents": True, "save_model_as": "safetensors",
        "text_encoder_lr": 0, "t5xxl_max_token_length": 16, "apply_t5_attn_mask": True,
        "timestep_sampling": "shift", "discrete_flow_shift": 3.1582, "model_prediction_type": "raw",
        "guidance_scale": 1.0, "loss_type": "l2",
    }


def _lint_step(preset: Path) -> tuple[bool, str]:
    """Lint the preset with every rule (the lint wing's API, as ``lora-compat lint`` calls it)."""
    from lora_compat.lint.registry import select_rules
    from lora_compat.lint.runner import lint_file

    res = lint_file(str(preset), select_rules())
    if res.error is not None:
        return False, res.error
    if not res.findings:
        return True, "clean"
    first = res.findings[0]
    return True, f"{len(res.findings)} finding(s), first {first.code} {first.key or ''}: {first.message}"


def _plan_step(config: Path) -> tuple[bool, str]:
    """The plan the engine will run (the plan wing's API, as ``lora-compat plan`` calls it)."""
    from lora_compat.config.family import require_family
    from lora_compat.config.load import load_config
    from lora_compat.config.validate import refuse_invalid
    from lora_compat.errors import UserError
    from lora_compat.plan import make_plan

    try:
        cfg = load_config(str(config))
        require_family(cfg, "plan")
        refuse_invalid(cfg)
        plan = make_plan(cfg)
    except UserError as err:
        return False, str(err)
    variant = plan.flux.variant if plan.flux is not None and plan.flux.variant else plan.family or plan.arch
    return True, f"{variant}: {plan.steps.max_train_steps} steps"


def _convert_and_inspect(lora: Path, root: Path, family: str, step: Callable[[str, bool, str], None]) -> None:
    """Convert the trained kohya LoRA (SD: to a PEFT folder; FLUX.1: fused BFL modules to diffusers' split ones,
    as FluxPipeline.load_lora_weights reads them) and inspect it, through the weights wing's API."""
    from lora_compat.errors import UserError
    from lora_compat.weights.convert import ConvertOptions, convert
    from lora_compat.weights.inspect import inspect_path

    to = "diffusers" if family == "flux1" else "peft"
    dst = root / ("converted-diffusers.safetensors" if family == "flux1" else "converted-peft")
    try:
        converted = convert(lora, dst, ConvertOptions(to=to))
        step("convert", True, f"{converted.modules} modules kohya -> {to} in {dst}")
    except UserError as err:
        step("convert", False, str(err))
    try:
        facts = inspect_path(lora)
        step("inspect", True, f"{facts['layout']} {facts['arch']} {facts['algo']}, {facts['module_count']} modules, "
                              f"ranks {facts['ranks']}")
    except UserError as err:
        step("inspect", False, str(err))


#: the families ``demo --family`` tours
DEMO_FAMILIES = ("sd1", "flux1")


def run_demo(output: str | os.PathLike[str], steps: int = 20, echo: Callable[[str], None] = print,
             family: str = "sd1") -> dict[str, Any]:
    """Run the whole demo into ``output`` for ``family`` (``sd1``: a legacy kohya_ss GUI preset on the tiny SD1;
    ``flux1``: a kohya_ss GUI FLUX.1 preset on the tiny FLUX.1 dev); returns a summary (paths, losses, step
    outcomes)."""
    if family not in DEMO_FAMILIES:
        from lora_compat.errors import UserError

        raise UserError(f"demo --family {family!r}: one of {', '.join(DEMO_FAMILIES)}", key="family")
    # The demo's own lines are the output: silence library chatter (optional-backend notices, per-file
    # progress bars of diffusers/transformers) before those libraries are imported.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from lora_compat.train.tiny import save_tiny_pipeline

    for lib in (diffusers_logging, transformers_logging):
        lib.set_verbosity_error()
        lib.disable_progress_bar()

    # The tiny model runs thousands of very small ops: thread hand-offs cost more than they save, and on a
    # shared 2-core machine OpenMP spinning makes it several times slower. One thread is fastest here.
    torch.set_num_threads(1)
    t0 = time.time()
    root = Path(output)
    root.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"output": str(root), "family": family, "steps": {}}

    def step(name: str, ok: bool, detail: str) -> None:
        summary["steps"][name] = {"ok": ok, "detail": detail}
        echo(f"{name}: {detail}")

    if family == "flux1":
        from lora_compat.train.flux.tiny import save_tiny_flux_pipeline

        model_dir = save_tiny_flux_pipeline(root / "tiny-flux1-dev", "dev")
        step("model", True, f"tiny FLUX.1 dev diffusers model in {model_dir}")
        write_preset, preset = legacy_flux_gui_preset, root / "kohya_gui_flux1_preset.json"
    else:
        model_dir = save_tiny_pipeline("sd1", root / "tiny-sd1")
        step("model", True, f"tiny SD1 diffusers model in {model_dir}")
        write_preset, preset = legacy_gui_preset, root / "legacy_kohya_gui_preset.json"
    data = make_synthetic_dataset(root / "images")
    step("dataset", True, f"6 synthetic images with captions in {data}")
    preset.write_text(json.dumps(write_preset(str(model_dir), str(data), str(root / "trained"), steps=steps),
                                 indent=2), encoding="utf-8")
    step("preset", True, f"{'kohya_ss GUI FLUX.1' if family == 'flux1' else 'legacy kohya_ss GUI'} preset {preset}")

    from lora_compat.errors import UserError
    from lora_compat.migrate.run import migrate_file

    step("lint", *_lint_step(preset))

    train_input = preset
    native = root / "migrated.toml"
    try:
        report = migrate_file(str(preset), "native", str(native))
    except UserError as err:
        step("migrate", False, f"{err}; training from the legacy preset")
    else:
        train_input = native
        step("migrate", True, f"native config {native} ({len(report.losses)} key(s) without an equivalent)")

    if family == "flux1":
        step("plan", *_plan_step(train_input))

    from lora_compat.config.load import load_config
    from lora_compat.train.engine import run_training

    cfg = load_config(str(train_input))
    result = run_training(cfg, output_dir=str(root / "trained"), max_steps=steps, show_progress=False)
    summary["losses"] = result.losses
    summary["lora"] = str(result.final_model)
    k = max(1, min(5, len(result.losses) // 2))
    first, last = sum(result.losses[:k]) / k, sum(result.losses[-k:]) / k
    step("train", True, f"{result.global_step} steps, mean loss of the first/last {k} steps {first:.4f} -> "
         f"{last:.4f}; wrote {result.final_model}")

    if result.final_model is not None:
        _convert_and_inspect(result.final_model, root, family, step)
    else:
        step("convert", False, "training saved no LoRA")
        step("inspect", False, "training saved no LoRA")
    summary["seconds"] = round(time.time() - t0, 1)
    echo(f"demo finished in {summary['seconds']} s; everything is in {root}")
    return summary
