"""Every :class:`~lora_compat.config.model.Note` code the dialect readers emit, with a one-line description.

A note records how a legacy front-end really ran a file where that differs from what the file seems to say
(a value dropped, changed, or derived). The "lint" wing turns these codes into rules; ``Normalizer.note``
refuses codes that are not listed here.
"""

from __future__ import annotations

NOTE_CODES: dict[str, str] = {
    # ---- any dialect (emitted by lora_compat.config.load from the parsed document) ---------------------
    "duplicate-key":
        "A key (JSON) or option (command line) is written more than once: the front-end's json.load / "
        "sd-scripts' argparse keeps only the last value, the earlier ones have no effect.",
    # ---- the model family (emitted by lora_compat.config.family for every dialect) --------------------------
    "family-conflict":
        "Two things in the config name different model families (e.g. networks.lora_flux without the FLUX.1 "
        "checkbox): the stronger one (script > network_module > family-only options) decides; sd-scripts would "
        "run the weaker one on the wrong model.",
    "family-base-model-conflict":
        "The base model's files (diffusers folder or safetensors header) are another family than the config "
        "trains: sd-scripts would load it as the config's family and fail.",
    "family-base-model-name":
        "The base model's name suggests another family than the config trains (a hint: names can lie).",
    "family-switch-missing":
        "The family comes from the base model, but the config lacks the switch sd-scripts needs for it "
        "(v2 for SD2.x, model_type = \"chroma\" for Chroma).",
    "family-ambiguous":
        "Only options that several families share name the family (t5xxl: FLUX.1 or SD3); the first is taken.",
    # ---- sd-scripts command lines, --config_file and --dataset_config files (the spine's readers) ----------
    "command-line-launcher":
        "The training script is started through a launcher (accelerate launch, python -m ...); its options "
        "are recorded as front-end-only keys.",
    "accelerate-mixed-precision":
        "accelerate launch --mixed_precision does not reach sd-scripts, which builds its Accelerator with its "
        "own --mixed_precision (default 'no').",
    "config-file-nested-table":
        "A --config_file TOML sub-table ([a.b]): sd-scripts flattens one level only, so the option receives a dict.",
    "text-encoder-lr-list":
        "text_encoder_lr is a list: sd-scripts' networks.lora uses only the first value (for both SDXL encoders); "
        "networks.lora_flux reads [CLIP-L, T5-XXL].",
    "dataset-config-missing":
        "The referenced dataset config is not on this machine: its datasets and subsets are unknown (show, lint, "
        "migrate and plan read the rest; only train needs the file).",
    "config-file-missing":
        "The --config_file TOML is not on this machine: the options it sets are unknown (only train needs it).",
    "shell-expression-unresolved":
        "A shell expression the script does not define ($(date), a variable set outside the script or inside a "
        "branch decided at run time, the script's own arguments): the option's value is unknown and left unset.",
    "several-training-commands":
        "The script runs several training commands; the last one is read and the others are listed.",
    "dataset-config-found-by-name":
        "The dataset config path does not exist as written; a file of the same name next to the config was used.",
    "dataset-config-bad-suffix":
        "The dataset config does not end in .toml or .json: sd-scripts refuses to read it.",
    "image-folder-unset":
        "A subset whose image folder is empty (the Derrian UI's template): its images are unknown; the UI and train "
        "need a folder, show, lint, migrate and plan read the rest.",
    "dataset-needs-masked-loss":
        "Subsets with conditioning_data_dir are accepted by sd-scripts only together with --masked_loss.",
    # ---- kohya image folders (emitted by lora_compat.config.kohya_folder, listed here so lint knows them) ----
    "kohya-folder-missing":
        "train_data_dir / reg_data_dir does not exist here: repeats, class tokens and image counts are unknown.",
    "kohya-folder-skipped":
        "A sub-folder whose name does not start with '<int>_' (or with repeats < 1) is skipped by sd-scripts.",
    "kohya-folder-empty":
        "The image folder has no <repeats>_<name> sub-folders: sd-scripts finds no images in it.",
    # ---- kohya_ss GUI JSON -------------------------------------------------------------------------
    "kohya-gui-zero-dropped":
        "The kohya_ss GUI drops values that are 0, false or empty, so this explicit zero never reached "
        "sd-scripts; sd-scripts' own default was used instead.",
    "kohya-gui-partial-preset":
        "A partial preset: the GUI overlays it on its current fields, so absent keys took the GUI's defaults.",
    "kohya-gui-epoch-to-steps":
        "The GUI turned 'epoch' into max_train_steps with its own bucket-agnostic formula "
        "(images x repeats / batch / grad-acc x epoch x 2 with regularisation images).",
    "kohya-gui-epoch-steps-unresolved":
        "max_train_steps comes from the GUI's epoch formula, but neither the epoch field nor the image folders are "
        "here; the numbers needed are recorded in the note's data.",
    "kohya-gui-epoch-as-max-train-epochs":
        "The GUI turned 'epoch' into max_train_steps by counting the images, which are not here: the epoch count "
        "is carried as sd-scripts' max_train_epochs (same samples per epoch, counted per bucket, so the step "
        "count can differ by partial batches); --images FOLDER=COUNT resolves the GUI's own number.",
    "kohya-gui-epoch-ignored":
        "max_train_steps is set (the GUI default is 1600 since 2024-04-19), so the GUI's 'epoch' had no effect.",
    "kohya-gui-max-train-epochs-wins":
        "max_train_epochs is set, so sd-scripts recomputes the length from it and the GUI's step count is moot.",
    "kohya-gui-dataset-config-no-steps":
        "With dataset_config and max_train_steps 0 the GUI passes no length: sd-scripts trains its default "
        "1600 steps and percent warmup becomes 0.",
    "kohya-gui-warmup-percent":
        "lr_warmup is a percentage of the GUI's estimated steps; it was converted to lr_warmup_steps.",
    "kohya-gui-warmup-dropped-dataset-config":
        "lr_warmup is a percentage of the GUI's step count, which it cannot compute with a dataset_config and "
        "max_train_steps 0: the GUI passed no warmup.",
    "kohya-gui-warmup-dropped-constant":
        "GUIs of 2023-05-07 to 2024-02-02 dropped the warmup when lr_scheduler is 'constant'.",
    "kohya-gui-warmup-steps-override":
        "lr_warmup_steps > 0 overrides the percentage in lr_warmup (GUI v25+).",
    "kohya-gui-caption-extension-empty":
        "caption_extension is empty: the GUI passes nothing and sd-scripts uses its default '.caption', not '.txt'.",
    "kohya-gui-train-part-from-lr":
        "A zero text-encoder or UNet learning rate made the GUI pass network_train_unet_only / "
        "network_train_text_encoder_only.",
    "kohya-gui-all-lr-zero":
        "learning_rate, text_encoder_lr and unet_lr are all 0: the GUI refuses to start training.",
    "kohya-gui-stop-te-ignored":
        "stop_text_encoder_training is ignored by the GUI for LoRA training ('not yet supported').",
    "kohya-gui-use-wandb-dropped":
        "use_wandb: true is silently dropped by the GUI's migration (it only accepts the string \"True\").",
    "kohya-gui-key-ignored":
        "The GUI's loader silently ignores this key (stale or hand-added), so it had no effect.",
    "kohya-gui-locon-bool-ignored":
        "'locon': true (Feb 2023) is never migrated: the file loads as a Standard LoRA.",
    "kohya-gui-conv-ignored":
        "conv_dim/conv_alpha are not passed for this LoRA_type (only LoCon, LyCORIS and DyLoRA types use them).",
    "kohya-gui-save-model-as-forced":
        "save_model_as is not safetensors/ckpt: the GUI's LoRA tab forces safetensors.",
    "kohya-gui-args-string-split":
        "An args string was split like the GUI does (double quotes removed, split on whitespace); values "
        "containing spaces fall apart.",
    "kohya-gui-args-flag-repeated":
        "An args field starts with its own flag (--optimizer_args ...): command-line-era GUIs passed the flag "
        "twice and argparse kept the list after the second one, so the arguments did apply.",
    "kohya-gui-args-refused":
        "An args field is not 'key=value key=value' (e.g. it starts with --optimizer_args): GUIs since "
        "2024-04-20 refuse to start training (validate_args_setting).",
    "kohya-gui-truthy-string":
        "A string such as \"False\" in a text field is truthy: the GUI passes it on as a value.",
    "kohya-gui-sample-prompts-text":
        "sample_prompts holds prompt text; the GUI writes it to <output_dir>/sample/prompt.txt and passes that path.",
    "kohya-gui-noise-type-inactive":
        "This noise setting is not passed because noise_offset_type selects the other noise method.",
    "kohya-gui-chroma-t5-mask":
        "Chroma (model_type chroma): the GUI forces apply_t5_attn_mask on, as flux_train_network.py requires.",
    "kohya-gui-flux-train-blocks-ignored":
        "The FLUX.1 train_blocks dropdown is never passed to networks.lora_flux (only split_mode forces "
        "train_blocks=single): every block is trained.",
    "kohya-gui-sdxl-only-ignored":
        "This SDXL-only setting is ignored because the sdxl checkbox is off.",
    "kohya-gui-accelerate-options":
        "These keys are `accelerate launch` options (processes, threads, dynamo ...), not sd-scripts arguments.",
    "kohya-gui-not-lora-tab":
        "The file comes from a GUI tab other than LoRA (DreamBooth, Finetune, Textual Inversion ...): "
        "its tab-specific keys have no LoRA equivalent.",
    "kohya-gui-other-architecture":
        "The file trains another architecture (Flux, SD3, ...) that lora-compat's SD1/SD2/SDXL LoRA "
        "training does not cover.",
    "kohya-gui-additional-parameters":
        "additional_parameters were appended to the command line and override the GUI's values.",
    "kohya-gui-cmdline-era-condition":
        "In the command-line era (before 2024-04-14) the GUI passed this option only under a condition "
        "(e.g. clip_skip > 1, max_token_length > 75, min_snr_gamma truncated to int).",
    "kohya-gui-xformers-bool":
        "xformers stored as a boolean (before 2023-08-04) is read as 'xformers' / 'none'.",
    "kohya-gui-lr-scheduler-cycles-epoch":
        "lr_scheduler_num_cycles is empty: the GUI passes the epoch count instead.",
    "kohya-gui-wandb-run-name-default":
        "wandb_run_name is empty: the GUI passes output_name as the run name.",
    "kohya-gui-t5xxl-lr-needs-te":
        "t5xxl_lr is set while text_encoder_lr is 0: the GUI refuses to start training.",
    "kohya-gui-inpainting-no-cache":
        "train_inpainting makes the GUI switch cache_latents / cache_latents_to_disk off.",
    "kohya-gui-loraplus-ignored":
        "GUIs of 2024-05 to 2025 wrote the LoRA+ ratios as top-level TOML keys; sd-scripts reads them only from "
        "network_args, so LoRA+ was not applied.",
    "kohya-gui-constrain-spelling":
        "GUIs before 2024-10-06 passed Diag-OFT's constraint as 'constrain=', a name LyCORIS does not read.",
    "kohya-gui-t5xxl-lr":
        "text_encoder_lr is passed as a two-element list (second element t5xxl_lr or the same rate).",
    # ---- Derrian ArgStore JSON (A1/A2/XTI) ----------------------------------------------------------
    "derrian-a1-drops-gradient-acc":
        "Derrian A1 passes gradient_acc_steps only when gradient_checkpointing is on; it was dropped.",
    "derrian-a1-unet-wins":
        "Derrian A1: with unet_only and text_only both set, only unet_only is passed.",
    "derrian-a1-random-crop-dropped":
        "Derrian A1 silently drops random_crop when cache_latents is on.",
    "derrian-a1-color-aug-aborts":
        "Derrian A1 refuses to start with color_aug and cache_latents both on.",
    "derrian-a1-epochs-to-steps":
        "Derrian A1 before 2023-02-04 turned num_epochs into max_train_steps with a folder-count estimate.",
    "derrian-a1-save-every-default":
        "Derrian A1: save_every_n_epochs null is passed as 999999 (no intermediate saves).",
    "derrian-a1-condition-dropped":
        "Derrian A1 passes this option only under a condition that is not met (e.g. cosine_restarts only with "
        "cosine_with_restarts, scheduler_power only with polynomial, v_parameterization only with v2, LRs > 0).",
    "derrian-a1-lion-ignored":
        "Derrian A1 ignores use_lion when use_8bit_adam is also on.",
    "derrian-a1-warmup-ratio-truncated":
        "Derrian loaders of 2023-02-02 to 2023-02-10 turned warmup_lr_ratio into an int (0.05 -> 0).",
    "derrian-a2-falsy-dropped":
        "Derrian A2 drops every falsy value (0, false, empty): this explicit zero never reached sd-scripts.",
    "derrian-a2-both-train-parts":
        "Derrian A2 passes both unet_only and text_only; sd-scripts then trains neither part correctly.",
    "derrian-optimizer-flag":
        "use_8bit_adam / use_lion select the optimizer through sd-scripts' legacy flags (optimizer_type blanked).",
    "derrian-a2-betas-dropped":
        "Derrian A2 drops 'betas' from optimizer_args for AdaFactor / SGDNesterov optimizers.",
    "derrian-a2-decouple-added":
        "Derrian A2 appends decouple=True to optimizer_args for DAdaptation.",
    "derrian-a2-network-module-ignored":
        "Derrian A2 ignores the stored network_module and recomputes it (lyco / unit / locon).",
    "derrian-a2-random-crop-with-cache":
        "Derrian A2 passes random_crop together with cache_latents; sd-scripts refuses that combination.",
    "derrian-key-ignored":
        "The Derrian loader ignores this key (not an ArgStore field of this generation), so it had no effect.",
    "derrian-warmup-ratio":
        "warmup_lr_ratio (0-1) was converted to lr_warmup_steps with the script's own step estimate.",
    "derrian-warmup-unresolved":
        "warmup_lr_ratio needs the script's step estimate, which needs the image folders (absent here).",
    "derrian-kohya-alias":
        "A kohya_ss GUI key was loaded through Derrian's alias table.",
    "derrian-kohya-warmup-percent":
        "Derrian's alias table copies kohya's lr_warmup percent into warmup_lr_ratio unchanged (x100 warmup).",
    "derrian-xformers-string-truthy":
        "xformers holds the string \"none\" (from a kohya file): truthy, so Derrian passed --xformers.",
    "derrian-xti-not-lora":
        "A Derrian XTI file trains Extended Textual Inversion, not a LoRA.",
    # ---- Derrian UI TOML (U1/U2) --------------------------------------------------------------------
    "derrian-toml-falsy-dropped":
        "The Derrian UI drops falsy values (0, false, empty) before training: this setting never reached sd-scripts.",
    "derrian-toml-warmup-ratio":
        "warmup_ratio (0-1) was converted to steps with the UI's own step estimate.",
    "derrian-toml-warmup-unresolved":
        "warmup_ratio needs the UI's step estimate, which needs the image folders (absent here).",
    "derrian-toml-custom-scheduler":
        "lr_scheduler_type names a scheduler class shipped with Derrian's UI (LoraEasyCustomOptimizer), not "
        "available in sd-scripts.",
    "derrian-toml-custom-optimizer":
        "The optimizer name is remapped by the Derrian UI to a bundled optimizer class.",
    "derrian-toml-clip-skip-sdxl":
        "The Derrian UI removes clip_skip for SDXL.",
    "derrian-toml-cache-latents-disables-aug":
        "With cache_latents the Derrian UI disables random_crop / color_aug in subsets.",
    "derrian-toml-dim-from-weights-path":
        "dim_from_weights holds a file path in the Derrian UI; it only acts as the boolean flag.",
    "derrian-toml-not-lora":
        "The file trains Textual Inversion (train_mode / textual_inversion_args), not a LoRA.",
    "derrian-flux-shift-not-passed":
        "FluxUI stores discrete_flow_shift as false unless timestep_sampling is \"shift\"; the backend drops it, "
        "but sigma sampling also reads the shift, so sd-scripts' default 3.0 is used.",
    "derrian-flux-guidance-zero":
        "guidance_scale 0 is falsy: the backend drops it (sd-scripts uses 3.5) and no longer selects "
        "networks.lora_flux.",
    "derrian-toml-ui-only":
        "A UI-only setting (tag files, saved TOML copies, easy_name ...) with no sd-scripts effect.",
    "derrian-toml-constrain-misspelt":
        "network_args 'constrain' (2024-01 to 2024-07 spelling) is passed as is; LyCORIS reads 'constraint'.",
    "derrian-toml-network-module":
        "network_module was chosen by the UI from the network args (fa / algo / unit / Flux).",
    "derrian-toml-easy-name":
        "easy_name replaced the literal ${replace} in output_dir, output_name, resume and log_prefix.",
    "derrian-toml-u2-quoting":
        "The U2 backend writes strings in double quotes without escaping: a value with a quote or backslash "
        "(outside the paths it normalises) produced a broken or altered TOML.",
    "derrian-toml-precision-forced":
        "full_fp16 / full_bf16 force mixed_precision fp16 / bf16 in the Derrian UI.",
}

# ---- native lora-compat TOML (PEFT rules; the texts live with the native reader) -------------------------
from lora_compat.config.dialects.native import NATIVE_NOTE_CODES as _NATIVE_NOTE_CODES  # noqa: E402

NOTE_CODES.update(_NATIVE_NOTE_CODES)
