"""Options the training engine does not run, and why (shown by ``plan``, warned about by ``train``).

Every sd-scripts option is either resolved into the :class:`~lora_compat.plan.parts.Plan` by ``make_plan`` or
listed here (a test checks that the schema has no third kind). A listed option that a config sets appears in
``Plan.ignored``; none of them is ever imported or executed.
"""

from __future__ import annotations

from typing import Any

from lora_compat.arch.families import FAMILY_OPTIONS
from lora_compat.config.model import CanonicalConfig

_NO_UPLOAD = "nothing is uploaded"
_LOGGING = "lora-compat prints its own progress; logs go to tensorboard / wandb (log_with, logging_dir)"
_DEEPSPEED = "DeepSpeed is not set up by lora-compat; use accelerate's own config"
_MEMORY = "a memory/speed setting with no effect on the result; not used by this engine"

#: option -> why the engine does not run it.
ENGINE_IGNORED: dict[str, str] = {
    # logging
    "console_log_level": _LOGGING, "console_log_file": _LOGGING, "console_log_simple": _LOGGING,
    # model
    "vae": "a separate VAE file is not loaded: the base model's own VAE encodes the images",
    "disable_mmap_load_safetensors": _MEMORY,
    "no_half_vae": "the VAE always runs in float32 here",
    # metadata keys of the model spec that this engine does not write
    "metadata_usage_hint": "not written to the model spec", "metadata_thumbnail": "not written to the model spec",
    "metadata_merged_from": "not written to the model spec",
    "metadata_trigger_phrase": "not written to the model spec",
    "metadata_preprocessor": "not written to the model spec",
    "metadata_is_negative_embedding": "not written to the model spec",
    # dataset
    "cache_info": "images are listed and their sizes read on every run (no metadata cache file)",
    "debug_dataset": "there is no dataset debug view; training runs",
    "skip_cache_check": "latent cache files are always checked against the image",
    "weighted_captions": "caption weights (a:1.2) are read as plain text",
    "max_data_loader_n_workers": "no DataLoader worker processes are started (batches are built in the main "
                                 "process); the caption/epoch lag of that many workers is reproduced",
    "persistent_data_loader_workers": "no DataLoader worker processes are started; the lag of persistent "
                                      "workers is reproduced",
    "tokenizer_cache_dir": "nothing is downloaded or cached: it is only where a single-file model's tokenizer "
                           "folders are looked for",
    # saving
    "save_last_n_epochs_state": "state folders are kept and removed together with their model saves",
    "save_last_n_steps_state": "state folders are kept and removed together with their model saves",
    # hub
    "huggingface_repo_id": _NO_UPLOAD, "huggingface_repo_type": _NO_UPLOAD, "huggingface_path_in_repo": _NO_UPLOAD,
    "huggingface_token": _NO_UPLOAD, "huggingface_repo_visibility": _NO_UPLOAD,
    "save_state_to_huggingface": _NO_UPLOAD, "resume_from_huggingface": "states are resumed from a local folder "
                                                                        "(--resume) only", "async_upload": _NO_UPLOAD,
    # speed / memory
    "torch_compile": _MEMORY, "dynamo_backend": _MEMORY,
    "lowram": "models are loaded into RAM and then moved to the device (sd-scripts loads some straight onto the "
              "GPU): more host RAM at start-up, same training",
    "cpu_offload_checkpointing": _MEMORY, "ddp_timeout": "accelerate's defaults are used",
    "ddp_gradient_as_bucket_view": "accelerate's defaults are used",
    "ddp_static_graph": "accelerate's defaults are used",
    "fused_backward_pass": "the optimizer steps after the backward pass (same result, more memory)",
    "highvram": "the VAE and the models always stay on the device here (highvram's behaviour): no effect",
    # config files
    "config_file": "read by the config loader, not by the engine", "output_config": "no config file is written",
    # masked loss / deepspeed
    "masked_loss": "conditioning-image masks are not read (alpha-mask subsets still mask the loss)",
    "conditioning_data_dir": "conditioning-image masks are not read (alpha-mask subsets still mask the loss)",
    "deepspeed": _DEEPSPEED, "zero_stage": _DEEPSPEED, "offload_optimizer_device": _DEEPSPEED,
    "offload_optimizer_nvme_path": _DEEPSPEED, "offload_param_device": _DEEPSPEED,
    "offload_param_nvme_path": _DEEPSPEED, "zero3_init_flag": _DEEPSPEED, "zero3_save_16bit_model": _DEEPSPEED,
    "fp16_master_weights_and_gradients": _DEEPSPEED,
    # network
    "base_weights": "LoRA files are not merged into the base model before training",
    "base_weights_multiplier": "LoRA files are not merged into the base model before training",
    # resume
    "skip_until_initial_step": "use --resume with a state folder", "initial_epoch": "use --resume with a state folder",
    "initial_step": "use --resume with a state folder",
}

# The options only the DiT scripts read (flux_train_network.py's argument space; lora_compat.arch.families): this
# engine plans SD1/SD2/SDXL runs, whose scripts do not have them.
ENGINE_IGNORED.update({name: "an option of the DiT training scripts (flux_train_network.py ...); the SD1/SD2/SDXL "
                             "scripts do not read it" for name, fams in FAMILY_OPTIONS.items() if "flux1" in fams})

#: Options whose 0 is a real setting worth showing (0 workers: no lag), not "off".
_ZERO_MEANS_SOMETHING = frozenset({"max_data_loader_n_workers"})


def _is_set(name: str, value: Any) -> bool:
    if value is None or value is False or value in ("", [], {}):
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return name in _ZERO_MEANS_SOMETHING
    return True


def ignored_options(cfg: CanonicalConfig, family: str) -> list[Any]:
    """The options ``cfg`` sets that the engine does not run, each with why (Unsupported entries)."""
    from lora_compat.plan.flux import FLUX_FAMILIES, FLUX_RUNS, IGNORED_BY_FLUX
    from lora_compat.plan.parts import Unsupported

    flux = family in FLUX_FAMILIES
    runs = FLUX_RUNS | {name for name, fams in FAMILY_OPTIONS.items() if family in fams} if flux else frozenset()
    table = {k: v for k, v in ENGINE_IGNORED.items() if k not in runs}
    if flux:
        table.update(IGNORED_BY_FLUX)
    out = [Unsupported(name, why) for name, why in table.items() if _is_set(name, cfg.get(name))]
    for option in ("cache_text_encoder_outputs", "cache_text_encoder_outputs_to_disk"):
        if cfg.get(option) and family in ("sd1", "sd2"):
            out.append(Unsupported(option, f"an sdxl_train_network.py option; ignored for {family}"))
    return out
