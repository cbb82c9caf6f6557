"""The ``ss_*`` and ``modelspec.*`` metadata a run writes, as far as the options decide it (reference §7).

Values are the strings sd-scripts writes: ``str()`` of the argparse value after ``prepare_dataset_args``
(``ss_resolution`` "(512, 512)", ``ss_face_crop_aug_range`` "(0.5, 0.8)", an unset option "None", flags
"True"/"False") or of the dataset attribute it reads (``ss_min_bucket_reso`` is the dataset's rounded value,
"None" without bucketing). Keys only the run knows (counts, session id, clock, hashes, a drawn seed) are None
here; the engine fills them (:mod:`lora_compat.train.metadata`). Family-specific values come from
:data:`FAMILY_SPECS`: a new family adds one entry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lora_compat.semantics.buckets import round_bucket_limits

NETWORK_MODULE = "networks.lora"
LYCORIS_MODULE = "lycoris.kohya"  # what sd-scripts records for LyCORIS networks (LoHa, LoKr)


@dataclass(frozen=True)
class FamilySpec:
    """What a family writes into the metadata: ``ss_base_model_version`` (with/without v-prediction),
    ``modelspec.architecture`` (with/without v-prediction), ``modelspec.implementation``, default resolution."""

    version: str
    version_v: str
    architecture: str
    architecture_v: str
    implementation: str
    resolution: str
    resolution_v: str


FAMILY_SPECS: dict[str, FamilySpec] = {
    "sd1": FamilySpec("sd_v1", "sd_v1_v", "stable-diffusion-v1/lora", "stable-diffusion-v1/lora", "diffusers",
                      "512x512", "512x512"),
    "sd2": FamilySpec("sd_v2", "sd_v2_v", "stable-diffusion-v2-512/lora", "stable-diffusion-v2-768-v/lora",
                      "diffusers", "512x512", "768x768"),
    "sdxl": FamilySpec("sdxl_base_v1-0", "sdxl_base_v1-0", "stable-diffusion-xl-v1-base/lora",
                       "stable-diffusion-xl-v1-base/lora", "https://github.com/Stability-AI/generative-models",
                       "1024x1024", "1024x1024"),
    # flux_utils.MODEL_VERSION_FLUX_V1; sai_model_spec: flux-1-dev (schnell: flux-1-schnell, see FLUX_ARCHITECTURES)
    "flux1": FamilySpec("flux1", "flux1", "flux-1-dev/lora", "flux-1-dev/lora",
                        "https://github.com/black-forest-labs/flux", "1024x1024", "1024x1024"),
    "chroma": FamilySpec("chroma", "chroma", "chroma/lora", "chroma/lora", "https://huggingface.co/lodestones/Chroma",
                         "1024x1024", "1024x1024"),
}
#: modelspec.architecture of a FLUX.1 variant (sai_model_spec: the checkpoint decides dev vs schnell).
FLUX_ARCHITECTURES = {"flux1-dev": "flux-1-dev/lora", "flux1-schnell": "flux-1-schnell/lora", "chroma": "chroma/lora"}
#: Families whose modelspec has no prediction_type (sai_model_spec: "Flux models don't use prediction_type").
NO_PREDICTION_TYPE = frozenset({"flux1", "chroma"})
#: FluxNetworkTrainer.update_metadata: ss_* key -> FluxOptions field, in its order.
FLUX_METADATA = (("ss_model_type", "model_type"), ("ss_apply_t5_attn_mask", "apply_t5_attn_mask"),
                 ("ss_weighting_scheme", "weighting_scheme"), ("ss_logit_mean", "logit_mean"),
                 ("ss_logit_std", "logit_std"), ("ss_mode_scale", "mode_scale"),
                 ("ss_guidance_scale", "guidance_scale"), ("ss_timestep_sampling", "timestep_sampling"),
                 ("ss_sigmoid_scale", "sigmoid_scale"), ("ss_model_prediction_type", "model_prediction_type"),
                 ("ss_discrete_flow_shift", "discrete_flow_shift"))


def base_model_version(family: str, v: bool) -> str:
    """``ss_base_model_version``: sd_v1, sd_v1_v, sd_v2, sd_v2_v, sdxl_base_v1-0 ..."""
    spec = FAMILY_SPECS[family]
    return spec.version_v if v else spec.version


def _s(value: Any) -> str:
    return str(value)


def _tuple_of(value: Any, cast: Callable[[Any], Any]) -> Any:
    """An argparse "a,b" string as ``prepare_dataset_args`` turns it into a tuple (a single value doubled for
    the resolution); other values unchanged."""
    if isinstance(value, (list, tuple)):
        return tuple(cast(v) for v in value)
    if isinstance(value, str):
        try:
            return tuple(cast(p) for p in value.split(","))
        except ValueError:
            return value
    return value


def resolution_tuple(value: Any) -> Any:
    """``args.resolution`` after ``prepare_dataset_args``: ``"512"`` -> (512, 512), ``"768,512"`` -> (768, 512)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return (value, value)
    t = _tuple_of(value, int)
    return (t[0], t[0]) if isinstance(t, tuple) and len(t) == 1 else t


def first_text_encoder_lr(value: Any) -> Any:
    """``text_encoder_lr`` as train_network.py keeps it: a list gives its first value (None when empty)."""
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def option_metadata(get: Callable[[str], Any], *, family: str, v_parameterization: bool, network_module: str,
                    kind: str, network_args: dict[str, str] | None, learning_rate: Any, unet_lr: Any,
                    lr_scheduler: str, lr_warmup_steps: Any, ss_optimizer: str, seed: int | None,
                    dataset_config: bool, dataset_params: dict[str, Any] | None,
                    base_model: str | None, flux_options: dict[str, Any] | None = None) -> dict[str, str | None]:
    """Every ``ss_*`` key of a LoRA save, in ``train_network.py``'s order; None for what the run fills in.

    ``get(name)`` is the option's effective value (the config's, else sd-scripts' default). ``learning_rate`` /
    ``unet_lr`` are what sd-scripts keeps after ``get_optimizer`` (None with Adafactor's relative_step);
    ``lr_scheduler`` the effective scheduler name; ``dataset_params`` the one dataset's resolved parameters in
    command-line mode (bucket limits, bucketing flags). ``flux_options`` (FLUX.1: the run's FluxOptions fields)
    adds ``FluxNetworkTrainer.update_metadata``'s keys; its network keeps ``text_encoder_lr`` as given (a list
    stays a list: lora_flux has ``prepare_optimizer_params_with_multiple_te_lrs``).
    """
    md: dict[str, Any] = {
        "ss_session_id": None,
        "ss_training_started_at": None,
        "ss_output_name": get("output_name"),
        "ss_learning_rate": learning_rate,
        "ss_text_encoder_lr": get("text_encoder_lr") if flux_options is not None
        else first_text_encoder_lr(get("text_encoder_lr")),
        "ss_unet_lr": unet_lr,
        "ss_num_train_images": None,
        "ss_num_validation_images": 0,
        "ss_num_reg_images": None,
        "ss_num_batches_per_epoch": None,
        "ss_num_epochs": None,
        "ss_gradient_checkpointing": bool(get("gradient_checkpointing")),
        "ss_gradient_accumulation_steps": get("gradient_accumulation_steps"),
        "ss_max_train_steps": None,
        "ss_lr_warmup_steps": lr_warmup_steps,
        "ss_lr_scheduler": lr_scheduler,
        "ss_network_module": LYCORIS_MODULE if kind in ("loha", "lokr") else network_module,
        "ss_network_dim": get("network_dim"),
        "ss_network_alpha": get("network_alpha"),
        "ss_network_dropout": get("network_dropout"),
        "ss_mixed_precision": get("mixed_precision"),
        "ss_full_fp16": bool(get("full_fp16")),
        "ss_v2": family == "sd2",
        "ss_base_model_version": base_model_version(family, v_parameterization),
        "ss_clip_skip": get("clip_skip"),
        "ss_max_token_length": get("max_token_length"),
        "ss_cache_latents": bool(get("cache_latents")),
        "ss_seed": seed,
        "ss_lowram": bool(get("lowram")),
        "ss_noise_offset": get("noise_offset"),
        "ss_multires_noise_iterations": get("multires_noise_iterations"),
        "ss_multires_noise_discount": get("multires_noise_discount"),
        "ss_adaptive_noise_scale": get("adaptive_noise_scale"),
        "ss_zero_terminal_snr": bool(get("zero_terminal_snr")),
        "ss_training_comment": get("training_comment"),
        "ss_sd_scripts_commit_hash": "(unknown)",
        "ss_optimizer": ss_optimizer,
        "ss_max_grad_norm": get("max_grad_norm"),
        "ss_caption_dropout_rate": get("caption_dropout_rate"),
        "ss_caption_dropout_every_n_epochs": get("caption_dropout_every_n_epochs"),
        "ss_caption_tag_dropout_rate": get("caption_tag_dropout_rate"),
        "ss_face_crop_aug_range": _tuple_of(get("face_crop_aug_range"), float),
        "ss_prior_loss_weight": get("prior_loss_weight"),
        "ss_min_snr_gamma": get("min_snr_gamma"),
        "ss_scale_weight_norms": get("scale_weight_norms"),
        "ss_ip_noise_gamma": get("ip_noise_gamma"),
        "ss_debiased_estimation": bool(get("debiased_estimation_loss")),
        "ss_noise_offset_random_strength": bool(get("noise_offset_random_strength")),
        "ss_ip_noise_gamma_random_strength": bool(get("ip_noise_gamma_random_strength")),
        "ss_loss_type": get("loss_type"),
        "ss_huber_schedule": get("huber_schedule"),
        "ss_huber_scale": get("huber_scale"),
        "ss_huber_c": get("huber_c"),
        "ss_fp8_base": bool(get("fp8_base")),
        "ss_fp8_base_unet": bool(get("fp8_base_unet")),
        "ss_validation_seed": get("validation_seed"),
        "ss_validation_split": get("validation_split"),
        "ss_max_validation_steps": get("max_validation_steps"),
        "ss_validate_every_n_epochs": get("validate_every_n_epochs"),
        "ss_validate_every_n_steps": get("validate_every_n_steps"),
        "ss_resize_interpolation": get("resize_interpolation"),
    }
    if dataset_config:
        md.update({"ss_datasets": None, "ss_tag_frequency": None, "ss_dataset_dirs": None})
    else:
        params = dataset_params or {}
        bucketing = bool(params.get("enable_bucket"))
        lo = hi = None
        if bucketing:
            try:
                lo, hi = round_bucket_limits(int(params["min_bucket_reso"]), int(params["max_bucket_reso"]),
                                             int(params["bucket_reso_steps"]))
            except (KeyError, TypeError, ValueError, ZeroDivisionError):
                lo, hi = params.get("min_bucket_reso"), params.get("max_bucket_reso")
        md.update({
            "ss_batch_size_per_device": get("train_batch_size"),
            "ss_total_batch_size": None,
            "ss_resolution": resolution_tuple(get("resolution")),
            "ss_color_aug": bool(get("color_aug")),
            "ss_flip_aug": bool(get("flip_aug")),
            "ss_random_crop": bool(get("random_crop")),
            "ss_shuffle_caption": bool(get("shuffle_caption")),
            "ss_enable_bucket": bucketing,
            "ss_bucket_no_upscale": bool(params.get("bucket_no_upscale")) if bucketing else False,
            "ss_min_bucket_reso": lo,
            "ss_max_bucket_reso": hi,
            "ss_keep_tokens": get("keep_tokens"),
            "ss_dataset_dirs": None,
            "ss_reg_dataset_dirs": None,
            "ss_tag_frequency": None,
            "ss_bucket_info": None,
        })
    if network_args:
        parsed: dict[str, Any] = dict(network_args)
        if kind in ("loha", "lokr"):
            parsed["algo"] = kind  # the file is a LyCORIS one whatever module name the config used
        # sd-scripts injects "dropout" from network_dropout into the kwargs (a LyCORIS workaround, §8)
        parsed.setdefault("dropout", get("network_dropout"))
        md["ss_network_args"] = json.dumps(parsed)
    if flux_options is not None:
        md.update({key: flux_options[name] for key, name in FLUX_METADATA})
    if base_model:
        # sd-scripts hashes an existing base model path (at run time) and keeps only its basename; a hub id or
        # our tiny:... names are written as given
        if os.path.exists(base_model):
            md["ss_sd_model_hash"] = md["ss_new_sd_model_hash"] = None
            md["ss_sd_model_name"] = os.path.basename(base_model)
        else:
            md["ss_sd_model_name"] = base_model
    return {k: (None if v is None and k in _RUN_KEYS else _s(v)) for k, v in md.items()}


# Keys whose None means "filled in by the run" (everywhere else None is written as "None").
_RUN_KEYS = frozenset({
    "ss_session_id", "ss_training_started_at", "ss_num_train_images", "ss_num_reg_images",
    "ss_num_batches_per_epoch", "ss_num_epochs", "ss_max_train_steps", "ss_seed", "ss_datasets",
    "ss_tag_frequency", "ss_dataset_dirs", "ss_total_batch_size", "ss_reg_dataset_dirs", "ss_bucket_info",
    "ss_sd_model_hash", "ss_new_sd_model_hash",
})


def modelspec(get: Callable[[str], Any], family: str, v: bool, variant: str | None = None) -> dict[str, str | None]:
    """``modelspec.*`` keys (§7.3); ``modelspec.date`` (and a title made from it) are filled in at each save.
    ``variant``: FLUX.1's ``flux1-dev`` / ``flux1-schnell`` (its architecture string)."""
    spec = FAMILY_SPECS[family]
    architecture = spec.architecture_v if v else spec.architecture
    if variant in FLUX_ARCHITECTURES:
        architecture = FLUX_ARCHITECTURES[variant]
    reso = spec.resolution_v if v else spec.resolution
    res = resolution_tuple(get("resolution"))
    if isinstance(res, tuple) and len(res) == 2:
        reso = f"{res[0]}x{res[1]}"
    md: dict[str, Any] = {
        "modelspec.sai_model_spec": "1.0.1",
        "modelspec.architecture": architecture,
        "modelspec.implementation": spec.implementation,
        "modelspec.title": get("metadata_title") or get("output_name"),
        "modelspec.resolution": reso,
        "modelspec.date": None,
        "modelspec.prediction_type": "v" if v else "epsilon",
        "modelspec.implementation_version": "sd-scripts/unknown",
    }
    if family in NO_PREDICTION_TYPE:
        del md["modelspec.prediction_type"]
    lo, hi = get("min_timestep"), get("max_timestep")
    if lo is not None or hi is not None:
        md["modelspec.timestep_range"] = f"{lo or 0},{hi if hi is not None else 1000}"
    if get("clip_skip") is not None:
        md["modelspec.encoder_layer"] = str(get("clip_skip"))
    for key in ("description", "author", "license", "tags"):
        value = get(f"metadata_{key}")
        if value is not None:
            md[f"modelspec.{key}"] = value
    return {k: (None if v is None else _s(v)) for k, v in md.items()}
