"""Hand-written annotations merged into lora_compat/schemas/sd-scripts.schema.json by build_sd_scripts_schema.py.

Everything here is a fact taken from /work/shared/reference (section cited in the schema's x-ref) or from
sd-scripts' argparse declarations; the seed-003 misconceptions quote /work/shared/seeds/003_*.txt.
"""

from __future__ import annotations

SEED3 = "seed 003 \"LoRA Explained by ChatGPT\" (Derrian ArgStore key names)"

# What the option IS, in one sentence; the reference's behaviour notes are appended after it.
WHAT: dict[str, str] = {
    "console_log_level": "Console log level of sd-scripts' logger.",
    "console_log_file": "File that receives the console log.",
    "console_log_simple": "Use a simple (non-rich) console log format.",
    "v2": "The base model is Stable Diffusion 2.x (OpenCLIP ViT-H text encoder, 1024-dim context).",
    "v_parameterization": "Train with the v-prediction objective instead of epsilon (noise) prediction.",
    "pretrained_model_name_or_path": "The base model: a single-file checkpoint (.safetensors/.ckpt), a Diffusers directory or a Hugging Face model id.",
    "tokenizer_cache_dir": "Directory used to cache/load the tokenizer(s) for offline use.",
    "vae": "Path of a replacement VAE (checkpoint file or Diffusers directory) used instead of the base model's VAE to encode the training images.",
    "no_half_vae": "Keep the VAE in float32 while the rest of the model runs in fp16/bf16 (avoids NaN latents of the SDXL VAE in fp16).",
    "disable_mmap_load_safetensors": "Read .safetensors checkpoints without memory mapping.",
    "train_data_dir": "Training image folder used when no --dataset_config is given.",
    "reg_data_dir": "Regularization (class / prior-preservation) image folder used when no --dataset_config is given.",
    "in_json": "Fine-tuning metadata file (captions/tags per image) used when no --dataset_config is given.",
    "dataset_repeats": "How many times each image is repeated per epoch when not set per subset.",
    "cache_info": "Cache image sizes and captions in a metadata_cache.json per image folder to speed up dataset start-up.",
    "shuffle_caption": "Shuffle the comma-separated tags of each caption every time the sample is drawn (the first keep_tokens tags stay in place).",
    "caption_separator": "Separator between tags in a caption (used to split tags for shuffling, dropout and keep_tokens).",
    "caption_extension": "File extension of the caption file next to each image.",
    "caption_extention": "Misspelled legacy alias of caption_extension.",
    "keep_tokens": "Number of leading comma-separated tags (after caption_prefix) that stay fixed at the front when tags are shuffled, warmed up or dropped.",
    "keep_tokens_separator": "A marker in the caption: the tags before it are kept fixed (instead of counting keep_tokens).",
    "secondary_separator": "A separator that binds several tags into one unit for shuffling/dropout; replaced by caption_separator after processing.",
    "enable_wildcard": "Enable `{a|b}` wildcards and random choice among multi-line captions.",
    "caption_prefix": "Text prepended to every caption.",
    "caption_suffix": "Text appended to every caption.",
    "color_aug": "Random hue (color) augmentation of the training images.",
    "flip_aug": "Random horizontal flip augmentation.",
    "face_crop_aug_range": "Face-centred crop augmentation: the crop is a random multiple (range \"lo,hi\", e.g. \"2.0,4.0\") of the face size.",
    "random_crop": "Crop images at a random position instead of the centre.",
    "debug_dataset": "Debug the dataset: show samples and captions instead of training.",
    "resolution": "Training resolution: \"S\" (square) or \"W,H\"; also the target area of aspect-ratio buckets.",
    "cache_latents": "Encode all images with the VAE once and keep the latents in memory (no per-step VAE pass).",
    "vae_batch_size": "Batch size used by the VAE when caching latents.",
    "cache_latents_to_disk": "Cache VAE latents in .npz files next to the images (reused between runs).",
    "skip_cache_check": "Do not validate the contents of existing cache files.",
    "enable_bucket": "Enable aspect-ratio bucketing: images are grouped into buckets of similar aspect ratio instead of being cropped to one square size.",
    "min_bucket_reso": "Smallest width/height a bucket may have (pixels).",
    "max_bucket_reso": "Largest width/height a bucket may have (pixels).",
    "bucket_reso_steps": "Granularity (pixels) of bucket widths and heights.",
    "bucket_no_upscale": "Make one bucket per image size without upscaling small images.",
    "resize_interpolation": "Interpolation used when images are resized to their bucket.",
    "token_warmup_min": "Token warmup: number of tags used at step 0.",
    "token_warmup_step": "Token warmup: step at which all tags are used (a value below 1 is a fraction of max_train_steps); 0 disables it.",
    "alpha_mask": "Use the image's alpha channel as a loss mask.",
    "dataset_class": "Import an arbitrary dataset class `package.module.Class` instead of the built-in datasets.",
    "caption_dropout_rate": "Probability that a sample's whole caption is replaced by an empty string.",
    "caption_dropout_every_n_epochs": "Drop ALL captions (train unconditionally) in every N-th epoch.",
    "caption_tag_dropout_rate": "Probability with which each individual (non-fixed) tag is dropped from a caption.",
    "dataset_config": "Path of a dataset config TOML/JSON describing datasets and subsets (§3).",
    "output_dir": "Folder where the LoRA files (and states) are written.",
    "output_name": "Base file name of the saved LoRA (without extension).",
    "save_precision": "Data type of the saved LoRA tensors.",
    "save_every_n_epochs": "Also save an intermediate LoRA every N epochs.",
    "save_every_n_steps": "Also save an intermediate LoRA every N optimizer steps.",
    "save_n_epoch_ratio": "Save about this many intermediate LoRAs spread over the run.",
    "save_last_n_epochs": "Keep only the last N epoch-wise saved LoRAs (older ones are deleted).",
    "save_last_n_epochs_state": "Keep only the last N epoch-wise saved training states.",
    "save_last_n_steps": "Delete step-wise saves older than N steps.",
    "save_last_n_steps_state": "Delete step-wise saved states older than N steps.",
    "save_state": "Save the full training state (optimizer, scheduler, RNG, weights) as an accelerate state folder with every save.",
    "save_state_on_train_end": "Save the training state once, at the end of training.",
    "resume": "Resume from a saved accelerate state folder.",
    "train_batch_size": "Number of images per batch (per device).",
    "max_token_length": "Maximum caption length in CLIP tokens: None (75), 150 or 225; longer prompts are split into 75-token chunks.",
    "mem_eff_attn": "Use sd-scripts' memory-efficient (flash-style) attention.",
    "xformers": "Use xformers memory-efficient attention in the UNet (an attention implementation switch; same math).",
    "sdpa": "Use PyTorch scaled_dot_product_attention in the UNet.",
    "torch_compile": "Compile the model with torch.compile.",
    "dynamo_backend": "torch.compile / dynamo backend passed to accelerate.",
    "max_train_steps": "Training length in optimizer steps.",
    "max_train_epochs": "Training length in epochs (overrides max_train_steps).",
    "max_data_loader_n_workers": "Number of DataLoader worker processes.",
    "persistent_data_loader_workers": "Keep DataLoader worker processes alive between epochs.",
    "seed": "Random seed of the training run (noise, timesteps, shuffling, dropout, bucket order).",
    "gradient_checkpointing": "Recompute activations in the backward pass to save memory (slower, same result).",
    "gradient_accumulation_steps": "Number of micro-batches whose gradients are accumulated before one optimizer step (effective batch = batch size x this).",
    "mixed_precision": "Mixed-precision mode for the forward/backward pass: no, fp16 or bf16.",
    "full_fp16": "Keep the LoRA weights and gradients in fp16 too (not only the frozen model).",
    "full_bf16": "Keep the LoRA weights and gradients in bf16 too.",
    "fp8_base": "Store the frozen base model in float8 to save memory.",
    "ddp_timeout": "Timeout of the distributed (DDP) process group, in minutes.",
    "ddp_gradient_as_bucket_view": "DDP option gradient_as_bucket_view.",
    "ddp_static_graph": "DDP option static_graph.",
    "clip_skip": "Use the hidden states of the N-th text-encoder layer from the end (1 = last layer) as the text conditioning.",
    "logging_dir": "Folder for training logs (tensorboard/wandb).",
    "log_with": "Logging backend: tensorboard, wandb or all.",
    "log_prefix": "Prefix of the log folder name.",
    "log_tracker_name": "Tracker (project) name.",
    "wandb_run_name": "Weights & Biases run name.",
    "log_tracker_config": "TOML file with tracker init kwargs.",
    "wandb_api_key": "Weights & Biases API key (a credential).",
    "log_config": "Log the training arguments to the tracker.",
    "noise_offset": "Noise offset: add a random per-channel constant to the training noise (helps very dark/bright images; sd-scripts' help suggests about 0.1).",
    "noise_offset_random_strength": "Scale the noise offset by a random factor each batch.",
    "multires_noise_iterations": "Pyramid (multi-resolution) noise: number of octaves added to the training noise.",
    "multires_noise_discount": "Pyramid noise: weight factor per octave.",
    "ip_noise_gamma": "Input-perturbation noise strength (adds extra noise to the noisy input, not to the target).",
    "ip_noise_gamma_random_strength": "Scale ip_noise_gamma by a random factor each batch.",
    "adaptive_noise_scale": "Add a noise offset proportional to the mean absolute latent value.",
    "zero_terminal_snr": "Rescale the noise schedule so the last timestep has zero SNR.",
    "min_timestep": "Smallest timestep sampled during training.",
    "max_timestep": "Upper bound (exclusive) of the timesteps sampled during training.",
    "loss_type": "Loss function between prediction and target.",
    "huber_schedule": "How the Huber threshold c varies with the timestep.",
    "huber_c": "Huber threshold parameter c.",
    "huber_scale": "Scale factor of the Huber threshold.",
    "lowram": "Load models directly to the GPU to save system RAM.",
    "highvram": "Skip some cache clearing because VRAM is plentiful.",
    "sample_every_n_steps": "Generate preview images every N steps.",
    "sample_every_n_epochs": "Generate preview images every N epochs.",
    "sample_at_first": "Generate preview images before training starts.",
    "sample_prompts": "File with prompts for preview images.",
    "sample_sampler": "Sampler used for preview images.",
    "config_file": "Training-arguments TOML (`--config_file`) whose keys are option names.",
    "output_config": "Write the current arguments to the --config_file path and exit without training.",
    "prior_loss_weight": "Loss weight of regularization (prior-preservation) images relative to training images.",
    "huggingface_repo_id": "Hugging Face repository to upload results to.",
    "huggingface_repo_type": "Hugging Face repository type for uploads.",
    "huggingface_path_in_repo": "Path inside the Hugging Face repository for uploads.",
    "huggingface_token": "Hugging Face access token (a credential).",
    "huggingface_repo_visibility": "Visibility of a created Hugging Face repository (public/private).",
    "save_state_to_huggingface": "Also upload saved states to Hugging Face.",
    "resume_from_huggingface": "Resume from a state stored on Hugging Face.",
    "async_upload": "Upload to Hugging Face asynchronously.",
    "optimizer_type": "Optimizer name (AdamW, AdamW8bit, Lion, Prodigy, Adafactor, DAdapt*, ...).",
    "use_8bit_adam": "Legacy switch for the bitsandbytes AdamW8bit optimizer.",
    "use_lion_optimizer": "Legacy switch for the Lion optimizer.",
    "learning_rate": "Base learning rate.",
    "max_grad_norm": "Gradient-norm clipping threshold.",
    "optimizer_args": "Extra optimizer keyword arguments as `key=value` strings.",
    "lr_scheduler_type": "Custom learning-rate scheduler class (torch.optim.lr_scheduler name or dotted path).",
    "lr_scheduler_args": "Extra scheduler keyword arguments as `key=value` strings.",
    "lr_scheduler": "Learning-rate schedule name.",
    "lr_warmup_steps": "Linear LR warmup length: an int is a number of steps, a float below 1 a fraction of the total steps.",
    "lr_decay_steps": "Decay length of warmup_stable_decay: int = steps, float < 1 = fraction of the total steps.",
    "lr_scheduler_num_cycles": "Number of cosine cycles (hard restarts) for cosine_with_restarts.",
    "lr_scheduler_power": "Exponent of the polynomial schedule.",
    "lr_scheduler_timescale": "Timescale of the inverse_sqrt schedule.",
    "lr_scheduler_min_lr_ratio": "Final LR as a fraction of the initial LR (cosine_with_min_lr, warmup_stable_decay).",
    "fused_backward_pass": "Fuse the optimizer step into the backward pass (Adafactor only).",
    "min_snr_gamma": "Min-SNR-gamma loss weighting: each timestep's loss is multiplied by min(SNR, gamma)/SNR "
                     "(epsilon) or min(SNR, gamma)/(SNR+1) (v-prediction), down-weighting low-noise timesteps "
                     "(typical gamma 5).",
    "scale_v_pred_loss_like_noise_pred": "Scale the v-prediction loss so it behaves like the epsilon loss.",
    "v_pred_like_loss": "Add a v-prediction-like loss term with this weight (epsilon models only).",
    "debiased_estimation_loss": "Debiased estimation loss weighting (1/sqrt(SNR)).",
    "weighted_captions": "Enable prompt weighting syntax `(tag:1.2)` in captions.",
    "network_module": "Python module that builds the adapter network (networks.lora = kohya LoRA; lycoris.kohya = LyCORIS).",
    "network_dim": "LoRA rank (dim): the inner dimension r of the low-rank update down (r x in) / up (out x r).",
    "network_alpha": "LoRA alpha: the update is scaled by alpha / dim.",
    "network_dropout": "Dropout probability applied to the LoRA rank activations (after lora_down) during training.",
    "network_args": "Extra `key=value` arguments for the network module (conv_dim, conv_alpha, block dims, rank_dropout, algo ...).",
    "network_weights": "LoRA file whose weights initialize the network before training.",
    "dim_from_weights": "Take per-module ranks and alphas from the network_weights file.",
    "network_train_unet_only": "Train only the UNet LoRA (no text-encoder LoRA modules).",
    "network_train_text_encoder_only": "Train only the text-encoder LoRA (no UNet LoRA modules).",
    "unet_lr": "Learning rate of the UNet LoRA parameters.",
    "text_encoder_lr": "Learning rate of the text-encoder LoRA parameters.",
    "training_comment": "Free-text comment stored in the LoRA file's metadata.",
    "scale_weight_norms": "Max-norm regularization of each LoRA module's weight update.",
    "base_weights": "LoRA files merged into the base model before training.",
    "base_weights_multiplier": "Multipliers for base_weights.",
    "no_metadata": "Do not write training metadata (ss_* keys) into the LoRA file.",
    "save_model_as": "File format of the saved LoRA.",
    "fp8_base_unet": "Store only the UNet in float8.",
    "cpu_offload_checkpointing": "Offload gradient-checkpointed activations to CPU.",
    "skip_until_initial_step": "Skip batches until initial_step when resuming.",
    "initial_epoch": "Epoch number to start counting from.",
    "initial_step": "Step number to start counting from.",
    "validation_seed": "Seed of the train/validation split.",
    "validation_split": "Fraction of the images held out for validation loss.",
    "validate_every_n_steps": "Compute validation loss every N steps.",
    "validate_every_n_epochs": "Compute validation loss every N epochs.",
    "max_validation_steps": "Maximum number of validation batches per validation run.",
    "masked_loss": "Apply a per-pixel loss mask taken from conditioning (mask) images.",
    "conditioning_data_dir": "Folder of mask/conditioning images.",
    "cache_text_encoder_outputs": "SDXL: encode all captions once with the text encoders and reuse the outputs.",
    "cache_text_encoder_outputs_to_disk": "SDXL: cache text-encoder outputs in .npz files next to the images.",
    "deepspeed": "Train with DeepSpeed.",
    "zero_stage": "DeepSpeed ZeRO stage (0-3).",
    "offload_optimizer_device": "DeepSpeed: device the optimizer state is offloaded to (cpu or nvme).",
    "offload_optimizer_nvme_path": "DeepSpeed: NVMe path for optimizer offload.",
    "offload_param_device": "DeepSpeed: device parameters are offloaded to (ZeRO-3).",
    "offload_param_nvme_path": "DeepSpeed: NVMe path for parameter offload.",
    "zero3_init_flag": "DeepSpeed: construct the model with deepspeed.zero.Init (ZeRO-3).",
    "zero3_save_16bit_model": "DeepSpeed: save a 16-bit model with ZeRO-3.",
    "fp16_master_weights_and_gradients": "DeepSpeed: keep fp16 master weights and gradients.",
}
for _k in ("title", "author", "description", "license", "tags", "usage_hint", "thumbnail", "merged_from",
           "trigger_phrase", "preprocessor", "is_negative_embedding"):
    WHAT[f"metadata_{_k}"] = (f"Model-spec metadata: written as `modelspec.{_k}` into the saved file; no effect on "
                              "training.")

# Extra behaviour text where the reference table cell is empty or only a cross-reference.
EXTRA_TEXT: dict[str, str] = {
    "dynamo_backend": "Only used together with torch_compile.",
    "ddp_timeout": "Only matters for multi-GPU training.",
    "ddp_gradient_as_bucket_view": "Only matters for multi-GPU training.",
    "ddp_static_graph": "Only matters for multi-GPU training.",
    "network_alpha": "An alpha of 0 (or None) inside networks.lora means alpha = dim, i.e. scale 1 (§6.3).",
    "huber_c": "Used by loss_type huber and smooth_l1 only; its meaning depends on huber_schedule (§4.9).",
    "sample_at_first": "Preview images only; no effect on the trained weights.",
    "sample_prompts": "Preview images only; no effect on the trained weights.",
    "sample_sampler": "Preview images only; no effect on the trained weights.",
    "validate_every_n_steps": "Validation never changes the trained weights.",
    "max_validation_steps": "None means the whole validation set.",
    "disable_mmap_load_safetensors": "Loading option only; no effect on training semantics. Exists only in "
                                     "sdxl_train_network.py and the DiT scripts (flux_train_network.py ...).",
    "deepspeed": "When enabled, the loader worker count becomes 1 and gradient clipping and accumulation are "
                 "handed to DeepSpeed (§1.9).",
    "huggingface_token": "Never written to an output by lora-compat (redacted). Note sd-scripts' --output_config "
                         "keeps it in the written TOML (§2.2).",
    "wandb_api_key": "Never written to an output by lora-compat (redacted). sd-scripts' --output_config drops it "
                     "(§2.2).",
}

# x-since: when the option appeared in sd-scripts (reference §10; only dated options are listed).
SINCE: dict[str, str] = {
    "resize_interpolation": "2025-02-14",
    "alpha_mask": "2024-05-19",
    "noise_offset_random_strength": "2024-03-12",
    "secondary_separator": "2024-02-26",
    "keep_tokens_separator": "2023-11-28",
    "validation_split": "2023-11-05",
    "debiased_estimation_loss": "2023-10-23",
    "ip_noise_gamma": "2023-09-02",
    "caption_prefix": "2023-09-02",
    "caption_suffix": "2023-09-02",
    "zero_terminal_snr": "2023-07-18",
    "token_warmup_min": "2023-03-23",
    "token_warmup_step": "2023-03-23",
    "loss_type": "2024-04-07",
    "huber_c": "2024-04-07",
    "huber_schedule": "2024-04-07",
    "huber_scale": "2024-11-27",
    "lr_decay_steps": "2024-09-11",
    "lr_scheduler_timescale": "2024-09-11",
    "lr_scheduler_min_lr_ratio": "2024-09-11",
}
# Options whose parsing changed: shown in x-since-note.
SINCE_NOTE: dict[str, str] = {
    "lr_warmup_steps": "Before 2024-09-11 (fd68703f) lr_warmup_steps was type=int: a float from an older TOML was "
                       "passed to transformers as a fractional step count (near-zero warmup for values below 1). "
                       "Since then a float below 1 is a ratio of the total steps (§10).",
    "huber_scale": "The current Huber formula dates from 2024-11-27 (420a180d) (§10).",
}

# x-arch: architectures the option is meaningful for (absent = all).
# Options some scripts lack carry x-scripts instead (scripts/schemas/dit_options.py, arch.families); options that
# FLUX.1 ignores get ["sd1", "sd2", "sdxl"] from dit_options.SD_ONLY.
ARCH: dict[str, list[str]] = {
    "clip_skip": ["sd1", "sd2"],
}
ARCH_NOTE: dict[str, str] = {
    "v2": "SDXL raises AssertionError when v2 is set (§1.2).",
    "clip_skip": "Ignored on SDXL (warning 'clip_skip will be unexpected'); still written to ss_clip_skip (§1.4).",
    "cache_text_encoder_outputs": "Only exists in sdxl_train_network.py and the DiT scripts (flux_train_network.py "
                                  "...); silently ignored in an SD1/SD2 --config_file (§8).",
    "cache_text_encoder_outputs_to_disk": "Only exists in sdxl_train_network.py and the DiT scripts (§1.11).",
    "disable_mmap_load_safetensors": "Only exists in sdxl_train_network.py and the DiT scripts (§8).",
    "bucket_reso_steps": "SD1/SD2 assert divisibility by 64, SDXL by 32 (when bucketing is on) (§1.3).",
    "no_half_vae": "Matters mostly for SDXL, whose VAE overflows in fp16.",
}

# x-peft / x-diffusers: what an engine built on PEFT/diffusers must do for this option (§11).
PEFT: dict[str, str] = {
    "network_dim": "LoraConfig.r (rank_pattern for per-block dims from network_args block_dims/conv_dim).",
    "network_alpha": "LoraConfig.lora_alpha, with use_rslora=False so scale = alpha/r. Default alpha is 1 (NOT r): "
                     "set lora_alpha=1 explicitly when the config leaves it out.",
    "network_dropout": "NOT LoraConfig.lora_dropout: kohya drops the r-dimensional activations after lora_down "
                       "(inverted dropout), PEFT drops the input x. Needs a custom LoRA layer for identical "
                       "semantics (§6.4, §11).",
    "network_module": "networks.lora -> PEFT LoRA on the kohya target modules (§11 target lists); other modules "
                      "(LyCORIS, DyLoRA, OFT) have no exact PEFT equivalent.",
    "network_args": "conv_dim/conv_alpha -> extra Conv2d targets with rank_pattern/alpha_pattern; block_dims/"
                    "block_alphas -> rank_pattern/alpha_pattern; rank_dropout/module_dropout have no PEFT "
                    "equivalent (§11).",
    "network_weights": "Load the kohya file converted to PEFT keys as initial adapter weights (missing keys "
                       "tolerated like strict=False).",
    "network_train_unet_only": "Attach adapters to the UNet only (no text-encoder LoraConfig).",
    "network_train_text_encoder_only": "Attach adapters to the text encoder(s) only.",
    "unet_lr": "Learning rate of the UNet adapter parameter group (0 = group excluded).",
    "text_encoder_lr": "Learning rate of the text-encoder adapter parameter group, first value only (0 = excluded).",
    "dim_from_weights": "Build LoraConfig rank_pattern/alpha_pattern from the shapes and alphas in the file.",
    "scale_weight_norms": "No PEFT equivalent: max-norm rescaling of up@down after every micro-batch (§6.7).",
}
DIFFUSERS: dict[str, str] = {
    "xformers": "enable_xformers_memory_efficient_attention(); an engine may use PyTorch SDPA "
                "(AttnProcessor2_0) instead — same math, small numerical differences only.",
    "sdpa": "AttnProcessor2_0 (torch scaled_dot_product_attention), the diffusers default.",
    "mem_eff_attn": "Same math as SDPA; use AttnProcessor2_0.",
    "v_parameterization": "noise_scheduler prediction_type='v_prediction' (target = get_velocity).",
    "pretrained_model_name_or_path": "StableDiffusionPipeline / StableDiffusionXLPipeline .from_pretrained (directory "
                                     "or id) or .from_single_file (file).",
    "vae": "AutoencoderKL.from_pretrained / from_single_file replacing pipe.vae.",
    "clip_skip": "CLIPTextModel output_hidden_states=True, hidden_states[-k] then final_layer_norm (SD1/SD2 only).",
    "gradient_checkpointing": "unet.enable_gradient_checkpointing() (and text encoders when trained).",
    "zero_terminal_snr": "DDPMScheduler(rescale_betas_zero_snr=True) style beta rescaling; SNR weights still use the "
                         "original table (§4.8).",
    "noise_offset": "Added to the sampled noise before DDPMScheduler.add_noise; part of the target (§4.8).",
    "mixed_precision": "accelerate mixed_precision; frozen UNet/TE/VAE cast to fp16/bf16.",
    "lr_scheduler": "transformers get_scheduler / diffusers get_piecewise_constant_schedule (§4.11).",
    "min_snr_gamma": "diffusers training scripts' compute_snr-based min-SNR weighting (epsilon: min(snr,g)/snr).",
    "save_model_as": "safetensors.torch.save_file for safetensors; ckpt/pt are torch.save pickles without metadata.",
}

# Credentials (x-secret) and options that make sd-scripts import code (x-security).
SECRET = ("wandb_api_key", "huggingface_token")
SECURITY: dict[str, str] = {
    "network_module": "sd-scripts imports this module with importlib. lora-compat never imports a name from a "
                      "config: it maps known modules (networks.lora, networks.dylora, networks.lora_fa, "
                      "networks.oft, lycoris.kohya) and refuses others.",
    "optimizer_type": "An unknown name or a dotted `module.Class` makes sd-scripts import and instantiate that class. "
                      "lora-compat only maps known optimizer names.",
    "lr_scheduler_type": "sd-scripts imports the named class (torch.optim.lr_scheduler name or dotted path). "
                         "lora-compat only maps known names.",
    "dataset_class": "sd-scripts imports `package.module.Class`; lora-compat refuses it.",
    "optimizer_args": "Values are parsed with ast.literal_eval (literals only, no code execution).",
    "lr_scheduler_args": "Values are parsed with ast.literal_eval (literals only, no code execution).",
    "save_model_as": "ckpt/pt are written with torch.save (pickle); loading such files can execute code.",
    "log_tracker_config": "A TOML file read by sd-scripts (not code).",
}

# Ranges the code enforces or the meaning requires.
RANGES: dict[str, dict] = {
    # Only bounds that sd-scripts enforces or that make the run impossible: a legacy value that sd-scripts
    # treats as "off" (0 for save/sample intervals, epochs ...) must stay valid.
    "network_dim": {"minimum": 1},
    "network_alpha": {"minimum": 0},
    "network_dropout": {"minimum": 0, "maximum": 1},
    "caption_dropout_rate": {"minimum": 0, "maximum": 1},
    "caption_tag_dropout_rate": {"minimum": 0, "maximum": 1},
    "caption_dropout_every_n_epochs": {"minimum": 0},
    "keep_tokens": {"minimum": 0},
    "token_warmup_min": {"minimum": 0},
    "token_warmup_step": {"minimum": 0},
    "train_batch_size": {"minimum": 1},
    "vae_batch_size": {"minimum": 1},
    "gradient_accumulation_steps": {"minimum": 1},
    "max_data_loader_n_workers": {"minimum": 0},
    "min_bucket_reso": {"minimum": 1},
    "max_bucket_reso": {"minimum": 1},
    "bucket_reso_steps": {"minimum": 1},
    "learning_rate": {"minimum": 0},
    "unet_lr": {"minimum": 0},
    "max_grad_norm": {"minimum": 0},
    "lr_warmup_steps": {"minimum": 0},
    "lr_decay_steps": {"minimum": 0},
    "lr_scheduler_min_lr_ratio": {"minimum": 0, "maximum": 1},
    "min_timestep": {"minimum": 0, "maximum": 1000},
    "max_timestep": {"minimum": 0, "maximum": 1000},
    "prior_loss_weight": {"minimum": 0},
    "min_snr_gamma": {"minimum": 0},
    "zero_stage": {"minimum": 0, "maximum": 3},
}


def _m(as_written: str, claim: str, truth: str, source: str = SEED3, dialect: str | None = "derrian-argstore",
       trigger: dict | None = None) -> dict:
    """One misconception: the key as the source wrote it, the wrong claim, what is true.

    ``quoted`` is true when ``claim`` is a verbatim quote of ``source`` (seed 003), false when it paraphrases
    a common belief that the reference lists as a trap. ``trigger`` (optional) is a JSON Schema fragment that
    matches RAW values shaped like the misconception (clip_skip written as a boolean, xformers as a list ...),
    for lint to recognise a config written under that belief.
    """
    out = {"as_written": as_written, "dialect": dialect, "source": source, "claim": claim, "truth": truth,
           "quoted": source == SEED3}
    if trigger is not None:
        out["trigger"] = trigger
    return out


REF12 = "common belief (paraphrased; sd-scripts-reference.md §12 lists it as a trap)"

# x-misconception: canonical option -> list of wrong beliefs. Seed-003 claims are quoted verbatim.
MISCONCEPTIONS: dict[str, list[dict]] = {
    "train_data_dir": [_m(
        "img_folder", "This option specifies the path to the folder containing the training images",
        "It is the PARENT of `<repeats>_<name>` sub-folders: only images inside sub-folders whose name starts "
        "with an integer are used (that integer is num_repeats, the rest is class_tokens); images placed directly "
        "in the folder are ignored (§3.4).")],
    "output_name": [_m(
        "change_output_name", "Specifies whether to change the output name of the trained model. If set to True",
        "It is not a boolean: it is the base file name (string) of the saved LoRA. None gives `last` / "
        "`epoch-NNNNNN` names (§4.12).")],
    "caption_dropout_every_n_epochs": [_m(
        "caption_dropout_every_n_epochs",
        "Specifies how often (in terms of number of epochs) to perform caption dropout during training.",
        "In every N-th epoch ALL captions are dropped (the whole epoch trains unconditionally); it is not a "
        "schedule for caption_dropout_rate. Because of the epoch lag the first batch of each worker in every "
        "epoch also sees epoch 0 and is dropped (§4.4.1, §4.4.4).")],
    "caption_tag_dropout_rate": [_m(
        "caption_tag_dropout_rate", "Controls the rate of random dropout of the captions when training the model.",
        "It drops individual comma-separated TAGS (each flexible tag independently with this probability); tags "
        "protected by keep_tokens are never dropped. Whole-caption dropout is caption_dropout_rate (§4.4.1).")],
    "network_dim": [_m(
        "net_dim", "This setting determines the number of hidden units in the model's network architecture.",
        "It is the LoRA rank r: the inner dimension of the low-rank update (lora_down r x in, lora_up out x r). "
        "The base model is unchanged; it sets the adapter's capacity and file size (PEFT `r`) (§6.3).")],
    "network_alpha": [
        _m("alpha", "This setting determines the learning rate used during training.",
           "Alpha is not a learning rate: the LoRA output is scaled by alpha/dim (PEFT lora_alpha). It acts "
           "like a constant multiplier of the update, so with Adam it interacts with the learning rate but is "
           "fixed at construction. Default is the int 1 (scale 1/dim), not dim (§6.3, §1.7)."),
        _m("network_alpha", "Default alpha equals the rank (alpha = dim, scale 1.0)",
           "sd-scripts' default is the int 1, so an omitted alpha gives scale 1/dim and int64 `.alpha` tensors. "
           "Only 0 or None inside networks.lora means alpha = dim.", source=REF12, dialect=None),
    ],
    "lr_scheduler": [_m(
        "scheduler", "Common choices include \"step\", \"cosine\", and \"plateau\".",
        "sd-scripts has no `step` or `plateau` scheduler (no validation loss drives the LR). Valid names: "
        "constant, constant_with_warmup, linear, cosine, cosine_with_restarts, polynomial, inverse_sqrt, "
        "cosine_with_min_lr, warmup_stable_decay, piecewise_constant, adafactor (§4.11).")],
    "lr_scheduler_num_cycles": [_m(
        "cosine_restarts", "The number of times the cosine annealing schedule should restart.",
        "It is the number of cosine CYCLES of cosine_with_restarts (N cycles = N-1 restarts; 1 = no restart). "
        "Plain `cosine` ignores it, cosine_with_min_lr and warmup_stable_decay use it divided by 2 (§4.11).")],
    "lr_scheduler_power": [_m(
        "scheduler_power", "A larger power value means that the learning rate changes more slowly.",
        "Only the polynomial schedule uses it: factor ((1-p)^power) from 1 to lr_end. A larger power makes the "
        "LR fall FASTER early and flatten near the end; 1 is linear decay (§4.11).")],
    "lr_warmup_steps": [
        _m("warmup_lr_ratio",
           "The ratio of the maximum learning rate to the initial learning rate during the warm-up period.",
           "It is the fraction of the total training STEPS spent in linear warmup from 0 to the learning rate "
           "(Derrian converts it to lr_warmup_steps = int(steps x ratio)). It is not a ratio of learning rates "
           "(§4.11)."),
        _m("lr_warmup_steps", "lr_warmup_steps = 1.0 means one warmup step",
           "A TOML float is a ratio of the total steps: 1.0 means 100 % warmup; the int 1 means one step. On the "
           "command line `1.0` is an argparse error (§1.5, §2.3).", source=REF12, dialect=None),
    ],
    "learning_rate": [_m(
        "learning_rate", "The default value is 0.0001.",
        "sd-scripts' default learning_rate is 2e-6; 1e-4 is only the Derrian/kohya_ss front-end default. It is "
        "also the fallback for unet_lr and text_encoder_lr (§1.5).")],
    "max_data_loader_n_workers": [_m(
        "num_workers", "Specifies the number of worker threads to load data.",
        "These are DataLoader worker PROCESSES (effective value min(N, cpu count)); Derrian also fills it from "
        "the kohya key num_cpu_threads_per_process, which is an accelerate CPU-thread setting (§1.4, "
        "legacy-dialects §3.1).")],
    "persistent_data_loader_workers": [_m(
        "persistent_workers", "Persistent worker threads maintain a queue of data samples",
        "It keeps the DataLoader worker processes alive between epochs (no restart cost, no per-epoch dataset "
        "copy); it also changes the epoch/step lag seen by caption dropout and token warmup (§4.4.4).")],
    "shuffle_caption": [_m(
        "shuffle_captions", "Specifies whether the training data should be shuffled between epochs.",
        "It shuffles the comma-separated TAGS inside each caption every time the sample is drawn (the first "
        "keep_tokens tags stay in place). The order of images is shuffled anyway, with or without it (§4.4.1).")],
    "keep_tokens": [_m(
        "keep_tokens",
        "The number of the most frequent tokens to keep in the text corpus for training.",
        "It is the number of LEADING comma-separated tags of each caption that stay fixed when tags are "
        "shuffled, warmed up or dropped. Nothing is replaced by <unk>, no vocabulary is built; without "
        "shuffle_caption, token warmup or tag dropout it has no effect at all (§4.4.1, §1.12).")],
    "max_train_steps": [_m(
        "max_steps", "Training will stop once the model has seen max_steps batches of data.",
        "It counts OPTIMIZER steps (one step = gradient_accumulation_steps batches), and max_train_epochs, when "
        "set, overrides it (§1.4, §4.7).")],
    "min_bucket_reso": [_m(
        "min_bucket_resolution", "A smaller bucket size can result in a faster training process",
        "It is the smallest width or height a bucket may have; buckets all keep roughly the `resolution` area, "
        "so it limits how extreme an aspect ratio can be, not speed. Ignored with bucket_no_upscale (§4.6.1).")],
    "max_bucket_reso": [_m(
        "max_bucket_resolution",
        "The training data will be downsampled if its resolution is larger than max_bucket_resolution.",
        "It is the largest width or height a bucket may have (limits extreme aspect ratios). Every image is "
        "resized to cover its bucket, whose area is about resolution^2, whatever this value is (§4.6).")],
    "network_weights": [_m(
        "lora_model_for_resume",
        "Specifies the path to a pre-trained LoRA model that will be used to resume training from a previous "
        "checkpoint.",
        "It only loads LoRA weights as the starting point (strict=False, missing keys silently tolerated); the "
        "optimizer, scheduler and step count start fresh, and the scale keeps the command-line alpha/dim. True "
        "resuming is `resume` with a saved state (§1.7, §6.5).")],
    "save_state": [_m(
        "save_state", "the training state will be saved in the lora_model_for_resume file",
        "It saves an accelerate state FOLDER (optimizer, scheduler, RNG, weights) next to each saved LoRA and at "
        "the end; it never writes into the network_weights file. Resume from it with `resume` (§1.4).")],
    "resume": [_m(
        "load_previous_save_state",
        "If the previous saved state is not available or is corrupted, training will not be able to resume and "
        "the training will start from scratch",
        "A missing or broken state folder makes accelerate's load_state fail (the run stops). Without "
        "skip_until_initial_step the restored step only picks the start epoch and global_step restarts at 0 "
        "(§1.4).")],
    "training_comment": [_m(
        "training_comment", "Specifies a comment that will be added to the name of the saved model.",
        "It does not change any file name: it is stored in the LoRA file's metadata as ss_training_comment "
        "(§7.1).")],
    "network_train_text_encoder_only": [_m(
        "text_only", "Determines if the model should be trained only on text or on both text and images.",
        "Training always uses images and captions. This flag only decides which LoRA modules exist: only the "
        "text-encoder LoRA is created and trained, no UNet LoRA (§1.7).")],
    "reg_data_dir": [_m(
        "reg_img_folder", "The path to the directory containing the images to be used for training.",
        "It holds REGULARIZATION (class / prior-preservation) images in `<repeats>_<class>` sub-folders. They "
        "are mixed into the batches with loss weight prior_loss_weight and balanced to the training-image count "
        "(§4.1, §4.9).")],
    "clip_skip": [_m(
        "clip_skip", "Determines if the model should skip over clipped images in the training data.",
        "It is an integer, not a boolean, and has nothing to do with images: the text conditioning is taken from "
        "the N-th CLIP text-encoder layer from the end (1 = last, 2 = the common anime setting). Ignored on SDXL "
        "(§4.5.3).")],
    "seed": [_m(
        "test_seed", "Specifies the random seed for test data generation and evaluation.",
        "It is the seed of the TRAINING run (noise, timesteps, shuffling, dropout, bucket order); None means a "
        "random seed recorded in ss_seed (§1.4).")],
    "prior_loss_weight": [_m(
        "prior_loss_weight",
        "The prior loss term is used to encourage the model to generate outputs that are similar to the prior "
        "distribution of the training data.",
        "It is only a per-sample loss weight for regularization images inside mixed batches (1.0 for training "
        "images); there is no separate prior term. Without regularization images it does nothing (§4.9).")],
    "gradient_accumulation_steps": [_m(
        "gradient_acc_steps", "Increasing this value can reduce memory usage",
        "It does not reduce memory per step: it accumulates the gradients of N batches before one optimizer "
        "step (effective batch = batch size x N, fewer optimizer steps per epoch). Derrian A1 only passed it when "
        "gradient_checkpointing was also on (§4.9, legacy-dialects §3.3).")],
    "mixed_precision": [_m(
        "mixed_precision", "Specifies whether to use mixed precision training",
        "It is a string choice `no`, `fp16` or `bf16`, not a boolean; the frozen base model is cast to that "
        "dtype while the LoRA weights stay fp32 unless full_fp16/full_bf16 (§1.4).")],
    "save_precision": [_m(
        "save_precision", "It is typically set to 32 or 16 depending on the precision used during training.",
        "It is a string: `float`, `fp16` or `bf16` (or None = keep the training dtype); numbers are not "
        "accepted. It also sets the dtype of the `.alpha` tensors (§1.4, §6.5).")],
    "save_model_as": [_m(
        "save_as", "Supported formats are: ckpt, safetensors, pt, bin.",
        "Only ckpt, pt and safetensors are accepted (no bin, no diffusers). ckpt/pt are torch.save pickles "
        "without metadata; safetensors is the safe default. The choice does not depend on the base model "
        "(§1.7).")],
    "max_token_length": [_m(
        "max_clip_token_length", "Captions that exceed this length will be skipped during training.",
        "Captions are never skipped: they are truncated to the limit. The value selects 75 (None), 150 or 225 "
        "tokens, encoded as chunks of 75 tokens; any other value is an argparse error (§4.5.2).")],
    "enable_bucket": [_m(
        "buckets", "Specifies the size of the bucketing algorithm.",
        "It is a boolean that enables aspect-ratio bucketing of IMAGES (buckets of width x height near the "
        "`resolution` area); it has nothing to do with token lengths and takes no list (§4.6).")],
    "xformers": [_m(
        "xformers", "Specifies the transformers to use during training.",
        "It is a boolean switch for the xformers memory-efficient attention kernel: same math, less memory; it "
        "does no data augmentation and takes no list (§1.4).")],
    "vae": [_m(
        "vae", "Specifies whether to use a Variational Autoencoder (VAE) as the backbone of the model.",
        "It is a path (string) to a replacement VAE used to encode the training images into latents; nothing is "
        "trained as a VAE and it is not a boolean (§1.2).")],
    "no_metadata": [_m(
        "no_meta",
        "Specifies whether to exclude meta data (e.g., class labels, attributes, etc.) from the training process.",
        "It only affects the OUTPUT file: the ss_* training metadata is not written into the LoRA (modelspec and "
        "hashes still are). Training is identical (§7).")],
    "logging_dir": [_m(
        "log_dir", "the training may overwrite previous logs stored in that directory",
        "Each run logs into a new sub-folder `<log_prefix><YYYYmmddHHMMSS>`, so earlier logs are not "
        "overwritten (§1.4).")],
    "bucket_reso_steps": [_m(
        "bucket_reso_steps",
        "The image resolution starts from the max_bucket_resolution and increases by a factor of 2 after each "
        "step.",
        "It is the pixel granularity of bucket widths/heights (64 = sizes are multiples of 64); nothing doubles "
        "and there are no resolution stages. SD1/SD2 require a multiple of 64, SDXL of 32 (§1.3, §4.6.1).")],
    "v_parameterization": [_m(
        "v_parameterization", "This setting determines how the model's parameters are regularized during training.",
        "It is a boolean that switches the training target to v-prediction (for SD2 768-v models and other "
        "v-pred bases); it is not a normalization/regularization method (§1.2, §4.8).")],
    "caption_extension": [_m(
        "caption_extension", "Default is .txt",
        "sd-scripts' default caption_extension is `.caption`, not `.txt` (front-ends pass .txt explicitly) "
        "(§1.3).", source=REF12, dialect=None)],
    "network_dropout": [_m(
        "network_dropout", "network_dropout is the same as PEFT lora_dropout",
        "kohya drops the r-dimensional activations after lora_down (inverted dropout); PEFT lora_dropout drops "
        "the input x. They are not interchangeable (§6.4, §11).", source=REF12, dialect=None)],
    "text_encoder_lr": [_m(
        "text_encoder_lr", "text_encoder_lr = 0 trains the text encoder with learning rate 0",
        "An lr of 0 removes the text-encoder group from the optimizer (its LoRA stays zero); only the first value "
        "of the list is used and both SDXL encoders share it (§4.10).", source=REF12, dialect=None)],
}


# Replacement for the reference table text where one table row covers several options (the shared text
# would be wrong for some of them) or where it only repeats WHAT. "" drops the table text.
MEANING_OVERRIDE: dict[str, str] = {
    "console_log_file": "The file is opened in mode `w` (overwritten).",
    "console_log_simple": "",
    "debug_dataset": "",
    "lowram": "",
    "save_state_on_train_end": "",
    "skip_until_initial_step": "The data order is reproduced by loading and discarding the skipped batches; "
                               "with --resume, global_step then continues (§1.4).",
    "mem_eff_attn": "An attention implementation: small numerical differences only, no change of semantics.",
    "xformers": "An attention implementation: small numerical differences only, no change of semantics.",
    "sdpa": "An attention implementation: small numerical differences only, no change of semantics.",
    "log_prefix": "Logs go to `logging_dir/<log_prefix><YYYYmmddHHMMSS>`.",
    "log_tracker_name": "Defaults to `network_train`.",
    "wandb_run_name": "Lost when log_tracker_config is given (that file replaces the tracker init kwargs).",
    "log_tracker_config": "It REPLACES the tracker init kwargs, so wandb_run_name is lost.",
    "wandb_api_key": "Used to log in to wandb before training.",
    "save_state_to_huggingface": "",
    "resume_from_huggingface": "Then `--resume` has the format `{repo_id}/{path}:{revision}:{repo_type}`.",
    "async_upload": "",
    "base_weights": "",
    "training_comment": "Stored as `ss_training_comment`; no effect on training.",
    "save_precision": "It also sets the dtype of the `.alpha` tensors. None keeps the training dtype (§6.5).",
    "output_name": "None gives `epoch-NNNNNN`, `at-stepNNNNNNNN`, `last` (§4.12).",
    "offload_optimizer_nvme_path": "",
    "offload_param_nvme_path": "",
    "caption_extention": "If set, `prepare_dataset_args` copies it into `caption_extension`.",
    "conditioning_data_dir": "Command-line fallback for the ControlNet subset key of the same name; in practice "
                             "it has no effect, because the key is required inside each such subset (§1.8).",
    "fp8_base_unet": "The text encoders stay fp16/bf16 (§1.4).",
    "no_half_vae": "",
    "lr_scheduler_power": "Used by the polynomial schedule only.",
    "lr_scheduler_timescale": "Used by inverse_sqrt only. None means transformers uses `num_warmup_steps or "
                              "10000` (§4.11).",
    "lr_decay_steps": "Parsed like lr_warmup_steps. Used only by `warmup_stable_decay`.",
    "use_8bit_adam": "Asserts it is not combined with `use_lion_optimizer` or `optimizer_type`.",
    "use_lion_optimizer": "Asserts no `optimizer_type`.",
    "learning_rate": "The optimizer's default lr and the fallback for `unet_lr` and `text_encoder_lr`; it is "
                     "also lr_init of the polynomial schedule. sd-scripts' default is 2e-6 (front-ends pass "
                     "1e-4).",
    "lr_scheduler_type": "Built only from `lr_scheduler_args`. Warmup must be 0 or None, otherwise ValueError.",
    "network_args": "Split on the first `=`; values stay strings and each network module parses them (§6.8).",
    "save_model_as": "ckpt and pt use `torch.save` (pickle) and have no metadata.",
    "dataset_class": "MinimalDataset API. Bypasses the dataset config; no validation set.",
    "enable_wildcard": "Command-line fallback for the dataset-config key of the same name (subset, dataset and "
                       "[general] values win, §3.3). Details: §4.4.",
    "enable_bucket": "Command-line fallback for the dataset-config key of the same name (subset, dataset and "
                     "[general] values win, §3.3). Details: §4.6.",
    "caption_dropout_rate": "Command-line fallback for the dataset-config key of the same name (subset, dataset "
                            "and [general] values win, §3.3). Caption dropout is applied after the prefix/suffix "
                            "and removes them too (§4.4).",
    "vae_batch_size": "Also the chunk size for encoding on the fly.",
    "skip_cache_check": "The existence of cache files is still checked.",
    "log_config": "The logged copy is filtered (credentials and paths removed).",
    "highvram": "Sets the global `HIGH_VRAM` (fewer cache clears).",
}

DOCS9 = "sd-scripts docs (paraphrased; sd-scripts-reference.md §9 lists where the docs disagree with the code)"


def _issue(source: str) -> str:
    return f"user reports {source} (paraphrased; peers-and-users.md §1f)"


# Further wrong beliefs, from sd-scripts' own docs (§9) and user threads (peers-and-users §1f).
MORE_MISCONCEPTIONS: dict[str, list[dict]] = {
    "keep_tokens": [_m(
        "keep_tokens", "keep_tokens counts CLIP tokens (sub-word tokens)",
        "It counts comma-separated TAGS (split on caption_separator), not CLIP tokens (§4.4.1).",
        source=_issue("bmaltais/kohya_ss #70"), dialect=None)],
    "network_alpha": [_m(
        "network_alpha", "a lower alpha makes the LoRA stronger",
        "The update is scaled by alpha/dim: a lower alpha (same dim) makes each step's effect smaller, i.e. "
        "weaker/slower learning. With Adam-like optimizers (step size independent of the gradient scale) "
        "halving alpha is close to halving the learning rate; with plain SGD the gradients shrink as well, so it "
        "is closer to a quarter (§6.3).", source=_issue("bmaltais/kohya_ss #1919, #1511"), dialect=None)],
    "text_encoder_lr": [_m(
        "text_encoder_lr1", "SDXL uses --text_encoder_lr1 / --text_encoder_lr2 for its two text encoders",
        "These options do not exist (argparse error). Use text_encoder_lr; for networks.lora its first value "
        "applies to both SDXL text encoders (§9, §4.10).", source=DOCS9, dialect=None)],
    "clip_skip": [_m(
        "clip_skip", "clip_skip = 2 also applies when training SDXL",
        "SDXL ignores clip_skip (warning 'clip_skip will be unexpected'): it always uses the penultimate layer "
        "of both encoders without the final LayerNorm (§4.5.3).",
        source=_issue("derrian-distro/LoRA_Easy_Training_Scripts #239, Akegarasu/lora-scripts #341"),
        dialect=None)],
    "cache_latents": [_m(
        "cache_latents", "cache_latents disables color_aug, flip_aug and random_crop",
        "flip_aug works with cached latents (flipped latents are cached too); color_aug and random_crop are not "
        "disabled but make sd-scripts stop with an assertion (§9, §1.3).", source=DOCS9, dialect=None)],
    "max_token_length": [_m(
        "max_token_length", "--max_token_length accepts 75, 150 or 225",
        "The command line accepts only 150 or 225; leave the option out for 75 (from a TOML 75 behaves like "
        "unset) (§9).", source=DOCS9, dialect=None)],
    "save_model_as": [_m(
        "save_model_as", "--save_model_as accepts diffusers / diffusers_safetensors",
        "train_network.py only accepts ckpt, pt and safetensors (§9).", source=DOCS9, dialect=None)],
    "noise_offset": [_m(
        "noise_offset", "SDXL training applies a recommended noise offset (0.0357) by default",
        "No default is applied: noise_offset is off unless set (the automatic SDXL code is commented out) (§9).",
        source=DOCS9, dialect=None)],
    "lr_warmup_steps": [_m(
    "lr_warmup", "the GUI's lr_warmup and sd-scripts' lr_warmup_steps mean the same thing",
    "kohya_ss GUI lr_warmup is a PERCENT of the total steps (0-100), Derrian warmup_ratio a ratio (0-1), "
    "sd-scripts lr_warmup_steps an int step count or a float ratio below 1 (peers-and-users Appendix, §4.11).",
    source=_issue("derrian-distro/LoRA_Easy_Training_Scripts #272"), dialect="kohya-gui")],
}
for _name, _extra in MORE_MISCONCEPTIONS.items():
    MISCONCEPTIONS.setdefault(_name, []).extend(_extra)

ARCH["v2"] = ["sd1", "sd2"]  # a train_network.py (SD1/SD2) option; SDXL asserts it is unset

# Values accepted from a --config_file TOML (no argparse choices there, §2.1) and harmless in sd-scripts,
# although the command line refuses them: added to the JSON `enum`, not to x-cli choices.
ENUM_EXTRA: dict[str, list] = {
    # kohya_ss GUI writes accelerate's dynamo_backend "no" (its default) into the TOML (legacy-dialects §2.4);
    # sd-scripts only passes dynamo_backend to accelerate when torch_compile is set.
    # "tensorrt" is accelerate's name (DynamoBackend.TENSORRT); sd-scripts' argparse list misspells it
    # "tensort", which accelerate refuses with torch_compile (lint LC115). From a TOML the right name works.
    "dynamo_backend": ["no", "tensorrt"],
}
EXTRA_TEXT["dynamo_backend"] = ("Only used together with torch_compile. The kohya_ss GUI writes accelerate's "
                                "value `no` (its default) into the TOML; harmless without torch_compile, but "
                                "`--dynamo_backend no` on the command line is an argparse error. sd-scripts' "
                                "choices misspell TensorRT as `tensort`, a name accelerate refuses once "
                                "torch_compile is on; accelerate's `tensorrt` works from a TOML (the command "
                                "line's choices refuse it).")

# Options whose value is re-checked by voluptuous `float` (rejects ints) when the dataset blueprint is built
# (CU sanitize_argparse_namespace, §2.3): a TOML `validation_split = 0` fails.
STRICT_FLOAT_OPTIONS = ("validation_split",)
EXTRA_TEXT["validation_split"] = ("In a --config_file TOML write a float: `validation_split = 0` (an int) fails "
                                  "sd-scripts' argparse sanitizer (§2.3).")


# x-misconception[].trigger: raw values shaped like the wrong belief (as_written key -> JSON Schema fragment).
TRIGGERS: dict[tuple[str, str], dict] = {
    ("output_name", "change_output_name"): {"type": "boolean"},
    ("network_alpha", "alpha"): {"type": "number", "exclusiveMinimum": 0, "maximum": 0.01},
    ("lr_scheduler", "scheduler"): {"enum": ["step", "plateau", "reduce_lr_on_plateau", "reducelronplateau"]},
    ("keep_tokens", "keep_tokens"): {"type": "integer", "minimum": 100},
    ("clip_skip", "clip_skip"): {"type": "boolean"},
    ("mixed_precision", "mixed_precision"): {"type": "boolean"},
    ("save_precision", "save_precision"): {"type": "number"},
    ("save_model_as", "save_as"): {"enum": ["bin", "diffusers", "diffusers_safetensors"]},
    ("max_token_length", "max_clip_token_length"): {"type": "integer", "not": {"enum": [75, 150, 225]}},
    ("enable_bucket", "buckets"): {"type": "array"},
    ("xformers", "xformers"): {"type": "array"},
    ("vae", "vae"): {"type": "boolean"},
    ("v_parameterization", "v_parameterization"): {"type": "string"},
    ("network_train_text_encoder_only", "text_only"): {"const": True},
    ("lr_warmup_steps", "lr_warmup_steps"): {"const": 1.0},
    ("text_encoder_lr", "text_encoder_lr1"): {},
}
for (_opt, _written), _trig in TRIGGERS.items():
    for _entry in MISCONCEPTIONS.get(_opt, []):
        if _entry["as_written"] == _written and _trig:
            _entry["trigger"] = _trig
