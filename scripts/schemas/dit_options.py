"""The options flux_train_network.py adds to train_network.py's parser, and the per-script facts of the DiT scripts.

Facts read in sd-scripts 48d368f (modern-archs.md §0): ``library/train_util.py`` ``add_dit_training_arguments``,
``library/flux_train_utils.py`` ``add_flux_train_arguments``, ``flux_train_network.py`` ``setup_parser``
(``--split_mode``) and the ``add_*_arguments`` of ``sd3_train_utils``, ``lumina_train_util``,
``hunyuan_image_train_network.py`` and ``anima_train_utils`` for the defaults that differ per script
(modern-archs.md §5.5). Which script accepts which option is :mod:`lora_compat.arch.families`
(``_SCRIPT_OPTIONS``): the generator reads it from there.

Used by build_sd_scripts_schema.py; meanings follow the code, and where sd-scripts' docs or help texts disagree the
description says so.
"""

from __future__ import annotations

REF = "modern-archs.md"

# Registration order of flux_train_network.py after train_network.setup_parser(): add_dit_training_arguments, then
# add_flux_train_arguments, then --split_mode. sdxl_train_network.py registers the three options it shares
# (cache_text_encoder_outputs, cache_text_encoder_outputs_to_disk, disable_mmap_load_safetensors) in the same relative
# order, so one property order filtered per script is every script's registration order.
DIT_ORDER = (
    "cache_text_encoder_outputs", "cache_text_encoder_outputs_to_disk", "text_encoder_batch_size",
    "disable_mmap_load_safetensors", "weighting_scheme", "logit_mean", "logit_std", "mode_scale", "blocks_to_swap",
    "clip_l", "t5xxl", "ae", "controlnet_model_name_or_path", "t5xxl_max_token_length", "apply_t5_attn_mask",
    "guidance_scale", "timestep_sampling", "sigmoid_scale", "model_prediction_type", "discrete_flow_shift",
    "model_type", "split_mode",
)
#: Options sdxl_train_network.py shares with the DiT scripts (add_sdxl_training_arguments).
SDXL_SHARED = ("cache_text_encoder_outputs", "cache_text_encoder_outputs_to_disk", "disable_mmap_load_safetensors")

# name -> (group, kind, default, choices, ref section, what it is, how sd-scripts uses it)
# kind as in the reference tables: flag | int | float | str.
DIT_OPTIONS: dict[str, tuple[str, str, object, list | None, str, str, str]] = {
    "text_encoder_batch_size": (
        "dit", "int", None, None, "§5.3",
        "Batch size used when the text-encoder outputs are cached.",
        "None uses the dataset's batch size (train_util.add_dit_training_arguments)."),
    "weighting_scheme": (
        "timesteps", "str", "uniform", ["sigma_sqrt", "logit_normal", "mode", "cosmap", "none", "uniform"], "§5.3",
        "Timestep density (SD3-style) and loss weighting scheme of the flow-matching DiT scripts.",
        "FLUX.1 reads it twice: with timestep_sampling `sigma` it chooses the density the scheduler's timesteps are "
        "drawn from (logit_normal with logit_mean/logit_std, mode with mode_scale, cosmap), and with "
        "model_prediction_type `sigma_scaled` it weights the loss (sigma_sqrt: sigma**-2, cosmap: "
        "2/(pi(1-2s+2s**2)); the others weigh 1). `none` and `uniform` behave the same. The kohya_ss GUI writes it "
        "for SD3 only, with its own default logit_normal."),
    "logit_mean": (
        "timesteps", "float", 0.0, None, "§5.3",
        "Mean of the logit-normal timestep density.",
        "Only read when weighting_scheme is logit_normal (and, for FLUX.1, timestep_sampling is sigma)."),
    "logit_std": (
        "timesteps", "float", 1.0, None, "§5.3",
        "Standard deviation of the logit-normal timestep density.",
        "Only read when weighting_scheme is logit_normal (and, for FLUX.1, timestep_sampling is sigma)."),
    "mode_scale": (
        "timesteps", "float", 1.29, None, "§5.3",
        "Scale of the `mode` timestep density.",
        "Only read when weighting_scheme is mode (and, for FLUX.1, timestep_sampling is sigma)."),
    "blocks_to_swap": (
        "memory", "int", None, None, "§5.3",
        "Number of transformer blocks kept on the CPU and swapped to the GPU for their forward/backward pass.",
        "Saves VRAM at the cost of speed; FLUX.1 allows up to 35 (sd-scripts docs). flux_train_network.py asserts "
        "it is not combined with cpu_offload_checkpointing (a value of 0 or None counts as off). The deprecated "
        "split_mode sets it to 18 when it is not given."),
    "clip_l": (
        "flux", "str", None, None, "§5.1",
        "Path of the CLIP-L text encoder (.safetensors/.sft, fp16 expected).",
        "FLUX.1 loads it separately from the DiT checkpoint; Chroma has no CLIP-L and never reads it."),
    "t5xxl": (
        "flux", "str", None, None, "§5.1",
        "Path of the T5-XXL text encoder (.safetensors/.sft; sd-scripts expects fp16, an fp8 file also loads).",
        "Loaded separately from the DiT checkpoint."),
    "ae": (
        "flux", "str", None, None, "§5.1",
        "Path of the FLUX autoencoder (ae.safetensors / ae.sft).",
        "Encodes the training images to 16-channel latents; the FLUX counterpart of --vae."),
    "controlnet_model_name_or_path": (
        "flux", "str", None, None, "§5.1",
        "Path of a FLUX ControlNet trained together with the LoRA.",
        "Rarely used with LoRA training."),
    "t5xxl_max_token_length": (
        "flux", "int", None, None, "§5.1",
        "Maximum T5-XXL token length of a caption.",
        "None means 512 for FLUX.1 dev and 256 for schnell (decided from the checkpoint: schnell has no "
        "guidance_in). The kohya_ss GUI and Derrian's UI write 512 whatever the model, which differs from what "
        "schnell was trained with. Not recorded in the LoRA's metadata."),
    "apply_t5_attn_mask": (
        "flux", "flag", False, None, "§5.1",
        "Mask the T5 padding tokens in the T5 encoder and in the double blocks' attention.",
        "Required (asserted) for Chroma. For FLUX.1 dev/schnell sd-scripts' docs advise against it: few inference "
        "tools apply the mask. Recorded as ss_apply_t5_attn_mask."),
    "guidance_scale": (
        "flux", "float", 3.5, None, "§5.1",
        "The value fed to FLUX.1 dev's guidance embedder during training (a constant guidance vector).",
        "The default 3.5 reproduces dev's distilled guidance; sd-scripts' docs say to specify 1.0 for training "
        "(\"to disable guidance scale\") and 0.0 for Chroma, which is not guidance-distilled. schnell has no "
        "guidance embedder, so the value has no effect there. Recorded as ss_guidance_scale."),
    "timestep_sampling": (
        "timesteps", "str", "sigma", ["sigma", "uniform", "sigmoid", "shift", "flux_shift"], "§5.1",
        "How the training timesteps (noise levels) are drawn.",
        "`sigma`: a timestep of the FlowMatchEuler scheduler (shifted by discrete_flow_shift) at a density chosen "
        "by weighting_scheme; `uniform`: sigma ~ U(0,1); `sigmoid`: sigmoid(sigmoid_scale * N(0,1)); `shift`: that "
        "sigmoid, then s*t/(1+(s-1)*t) with s = discrete_flow_shift; `flux_shift`: that sigmoid shifted by the "
        "resolution-dependent mu of BFL's time_shift. sd-scripts' docs recommend `flux_shift` or `shift` with "
        "discrete_flow_shift 3.1582."),
    "sigmoid_scale": (
        "timesteps", "float", 1.0, None, "§5.1",
        "Scale of the normal draw inside the sigmoid timestep sampling.",
        "Used by timestep_sampling sigmoid, shift and flux_shift (the argparse help says sigmoid only; the code "
        "uses it for all three)."),
    "model_prediction_type": (
        "loss", "str", "sigma_scaled", ["raw", "additive", "sigma_scaled"], "§5.1",
        "How the DiT's output is turned into the prediction compared with the flow target (noise - latents).",
        "`raw`: used as is; `additive`: noisy input added; `sigma_scaled` (the default): multiplied by -sigma and "
        "the noisy input added, and the loss is weighted by weighting_scheme (SD3-style). sd-scripts' docs "
        "recommend `raw`. Recorded as ss_model_prediction_type."),
    "discrete_flow_shift": (
        "timesteps", "float", 3.0, None, "§5.1",
        "Shift of the FlowMatchEulerDiscreteScheduler (and of timestep_sampling `shift`).",
        "Read by timestep_sampling `sigma` (through the shifted scheduler table) and `shift`; ignored by "
        "`uniform`, `sigmoid` and `flux_shift`. sd-scripts' docs say it only applies to `shift`, but the code also "
        "builds the scheduler of `sigma` sampling from it. The default differs per script: 3.0 for FLUX.1, 6.0 "
        "for Lumina 2, 5.0 for HunyuanImage, 1.0 for Anima (SD3 uses --training_shift instead)."),
    "model_type": (
        "flux", "str", "flux", ["flux", "chroma"], "§5.1",
        "Which model flux_train_network.py trains: FLUX.1 (`flux`) or Chroma (`chroma`).",
        "Chroma has no CLIP-L and no modulation Linears, needs apply_t5_attn_mask and (docs) guidance_scale 0.0. "
        "Recorded as ss_model_type."),
    "split_mode": (
        "memory", "flag", False, None, "§5.1",
        "Deprecated memory option of the first FLUX builds.",
        "flux_train_network.py warns and sets blocks_to_swap = 18 when blocks_to_swap is not given (it is "
        "ignored otherwise). The kohya_ss GUI and Derrian's UI also force network_args train_blocks=single with "
        "it, which sd-scripts itself no longer requires."),
}

#: Defaults that differ per family's script (modern-archs.md §5.5); the schema's ``default`` is the FLUX.1 one.
FAMILY_DEFAULTS: dict[str, dict[str, object]] = {
    "discrete_flow_shift": {"flux1": 3.0, "chroma": 3.0, "lumina2": 6.0, "hunyuan_image": 5.0, "anima": 1.0},
    "timestep_sampling": {"flux1": "sigma", "chroma": "sigma", "lumina2": "shift", "hunyuan_image": "sigma",
                          "anima": "sigmoid"},
    "model_prediction_type": {"flux1": "sigma_scaled", "chroma": "sigma_scaled", "lumina2": "raw",
                              "hunyuan_image": "raw"},
    "t5xxl_max_token_length": {"flux1": None, "chroma": None, "sd3": 256},
}

#: Values sd-scripts' documentation recommends where they differ from the default (x-recommended), per family.
RECOMMENDED: dict[str, dict[str, object]] = {
    "guidance_scale": {"flux1": 1.0, "chroma": 0.0},
    "model_prediction_type": {"flux1": "raw", "chroma": "raw"},
}

# Options of train_network.py whose meaning changes for FLUX.1 (appended to their description).
FLUX_TEXT: dict[str, str] = {
    "network_train_unet_only": "FLUX.1: without it flux_train_network.py also trains a CLIP-L LoRA (72 lora_te1_ "
                               "modules); T5-XXL only with network_args train_t5xxl=True. Model-only loaders "
                               "(ComfyUI's LoraLoaderModelOnly) then report the lora_te1_ keys as not loaded.",
    "text_encoder_lr": "networks.lora_flux reads two values, [CLIP-L, T5-XXL] (one value is used for both); the "
                       "kohya_ss GUI writes [text_encoder_lr, t5xxl_lr].",
    "cache_text_encoder_outputs": "FLUX.1 (flux_train_network.py): the same caption assertions, but the text "
                                  "encoders may still be trained (CLIP-L is then re-encoded, T5 cached); with "
                                  "network_args train_t5xxl=True it raises ValueError.",
    "cache_text_encoder_outputs_to_disk": "FLUX.1 warns and switches cache_text_encoder_outputs on.",
    "fp8_base_unet": "FLUX.1: it also switches fp8_base on.",
    "cpu_offload_checkpointing": "FLUX.1: not together with blocks_to_swap (asserted); not supported for Chroma.",
    "loss_type": "FLUX.1: huber and smooth_l1 with huber_schedule snr (the default) raise NotImplementedError (the "
                 "flow-matching scheduler has no alphas_cumprod); use constant or exponential.",
    "huber_schedule": "FLUX.1 and the other flow-matching scripts cannot use snr: NotImplementedError.",
    "max_token_length": "FLUX.1 does not use it (flux_train_network.py warns); see t5xxl_max_token_length.",
    "weighted_captions": "FLUX.1 has no weighted tokenization: flux_train_network.py raises NotImplementedError.",
}

#: Options of train_network.py that have no effect on a FLUX.1/Chroma run (what flux_train_network.py overrides):
#: the noise is plain randn_like, timesteps come from timestep_sampling, post_process_loss returns the loss
#: unchanged, the DiT brings its own attention, the AE replaces the VAE, the FLUX text strategy has no clip_skip.
SD_ONLY: dict[str, str] = {
    "v2": "FLUX.1 ignores it (ss_v2 is still written).",
    "v_parameterization": "FLUX.1's target is always the flow (noise - latents); the flag is ignored.",
    "clip_skip": "FLUX.1's text encoding has no clip_skip; ignored.",
    "max_token_length": "Not used by FLUX.1 (flux_train_network.py warns).",
    "vae": "FLUX.1 uses --ae; --vae is only recorded as ss_vae_name.",
    "mem_eff_attn": "FLUX.1's DiT always uses scaled_dot_product_attention; ignored.",
    "xformers": "FLUX.1's DiT always uses scaled_dot_product_attention; ignored.",
    "sdpa": "FLUX.1's DiT always uses scaled_dot_product_attention; ignored.",
    "noise_offset": "FLUX.1's noise is plain torch.randn_like: no noise offset.",
    "noise_offset_random_strength": "FLUX.1's noise is plain torch.randn_like: no noise offset.",
    "adaptive_noise_scale": "FLUX.1's noise is plain torch.randn_like: no adaptive noise.",
    "multires_noise_iterations": "FLUX.1's noise is plain torch.randn_like: no pyramid noise.",
    "multires_noise_discount": "FLUX.1's noise is plain torch.randn_like: no pyramid noise.",
    "zero_terminal_snr": "FLUX.1 builds a flow-matching scheduler; no beta schedule to rescale.",
    "min_timestep": "FLUX.1 draws timesteps with timestep_sampling; min_timestep is not read.",
    "max_timestep": "FLUX.1 draws timesteps with timestep_sampling; max_timestep is not read.",
    "min_snr_gamma": "flux_train_network.py's post_process_loss returns the loss unchanged: no min-SNR weighting.",
    "scale_v_pred_loss_like_noise_pred": "flux_train_network.py's post_process_loss returns the loss unchanged.",
    "v_pred_like_loss": "flux_train_network.py's post_process_loss returns the loss unchanged.",
    "debiased_estimation_loss": "flux_train_network.py's post_process_loss returns the loss unchanged.",
    "sample_sampler": "FLUX.1 previews always use its own Euler sampler.",
}
