"""``make_plan``: resolve a canonical config into the :class:`~lora_compat.plan.parts.Plan` the engine runs.

Every option ``train`` uses is read here, once: the network, the steps, the optimizer and scheduler, precision,
noise and loss, the dataset blueprint, outputs and metadata. Options the engine does not run are listed in
``Plan.ignored``; what it cannot run as sd-scripts would is in ``Plan.unsupported`` (``refused`` ones stop
``train`` with exit 2, never a silently different run).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from dataclasses import dataclass
from typing import Any

from lora_compat.config.dataset import ResolvedDataset, resolve_subsets
from lora_compat.config.dialects.native import network_kind, parse_network_args
from lora_compat.config.model import CanonicalConfig
from lora_compat.plan import network as net
from lora_compat.plan.metadata import FAMILY_SPECS, modelspec, option_metadata
from lora_compat.plan.options import ENGINE_IGNORED, ignored_options
from lora_compat.plan.parts import (
    DatasetBlueprint,
    DatasetPlan,
    ModelPlan,
    NoisePlan,
    OptimizerPlan,
    OutputPlan,
    Plan,
    PrecisionPlan,
    SchedulerPlan,
    StepPlan,
    Unsupported,
    is_text_encoder_part,
)
from lora_compat.plan.samples import sample_plan, validation_plan
from lora_compat.plan.steps import _number, plan_steps
from lora_compat.semantics.args import literal_args
from lora_compat.semantics.optimizers import EffectiveOptimizer, effective_optimizer
from lora_compat.semantics.schedules import effective_scheduler, lr_lambda, warmup_refusal
from lora_compat.semantics.trackers import missing_tracker_packages


def trainable(family: str) -> bool:
    """Whether the engine trains ``family`` (the registry's ``train`` stage, :mod:`lora_compat.arch.families`)."""
    from lora_compat.arch.families import FAMILIES, TRAIN

    return family in FAMILIES and FAMILIES[family].supports(TRAIN)

SAVE_FORMATS = ("safetensors", "ckpt", "pt")
_BUCKET_OPTIONS = ("enable_bucket", "min_bucket_reso", "max_bucket_reso", "bucket_reso_steps", "bucket_no_upscale")


@dataclass(frozen=True)
class RunOverrides:
    """What ``train``'s command line replaces: ``--base-model``, ``--train-data`` (a kohya folder replacing the
    config's datasets), ``--output``, ``--max-steps``."""

    base_model: str | None = None
    train_data: str | None = None
    output_dir: str | None = None
    max_steps: int | None = None


def plan_family(cfg: CanonicalConfig) -> str:
    """The model family of ``cfg``: the spine's ``family`` when it has one, else its sd1/sd2/sdxl flags."""
    family = getattr(cfg, "family", None)
    return family if isinstance(family, str) and family else cfg.arch()


def _with_train_data(cfg: CanonicalConfig, folder: str) -> CanonicalConfig:
    """A copy of ``cfg`` whose subsets are the kohya folder ``folder``; dataset-level settings (``[general]``:
    resolution, batch size, buckets) stay. The caller's config is not modified."""
    copy = dataclasses.replace(cfg, options=dict(cfg.options), datasets=[], notes=list(cfg.notes))
    copy.options.pop("dataset_config", None)
    copy.set("train_data_dir", str(folder))
    return copy


def make_plan(cfg: CanonicalConfig, image_counts: dict[str, int] | None = None, *,
              overrides: RunOverrides | None = None) -> Plan:
    """Resolve ``cfg`` (with ``train``'s command-line ``overrides``) into a :class:`Plan`.

    ``image_counts`` maps a subset ``image_dir`` (or a kohya ``N_name`` folder name) to its number of images
    for folders not on this machine; folders that exist are read. Without them, epoch-based lengths stay
    unknown (None) in the step plan.
    """
    from lora_compat.config.family import require_family

    require_family(cfg, "plan")  # a family plan does not handle yet is refused by name, never planned as SD1
    ov = overrides or RunOverrides()
    if ov.train_data is not None:
        cfg = _with_train_data(cfg, ov.train_data)
    get = cfg.effective
    family = plan_family(cfg)
    unsupported: list[Unsupported] = []
    notes: list[str] = []
    engine: dict[str, Any] = {}

    # ---- network ----------------------------------------------------------------------------------------
    from lora_compat.plan.flux import FLUX_FAMILIES, FLUX_NETWORK_MODULE

    is_flux = family in FLUX_FAMILIES
    module = get("network_module")
    # sd-scripts has no default (it needs --network_module); every front-end writes networks.lora (FLUX:
    # networks.lora_flux)
    module = str(module) if module is not None else (FLUX_NETWORK_MODULE if is_flux else "networks.lora")
    net_args = parse_network_args(cfg.get("network_args"))
    base_model = ov.base_model or cfg.get("pretrained_model_name_or_path")
    can_train = trainable(family)
    if not can_train:
        unsupported.append(Unsupported("family", f"{family}: lora-compat does not train this model family yet",
                                       refused=True))
    flux_planned = None
    if is_flux:
        kind = "lora"
        weights = cfg.get("network_weights")
        blueprints = resolve_subsets(cfg)
        from lora_compat.plan.flux import plan_flux

        flux_planned = plan_flux(cfg, family, module, net_args, base_model, blueprints,
                                 str(get("mixed_precision")), unsupported, notes)
        adapters, groups = flux_planned.adapters, flux_planned.param_groups
        _flux_engine_options(cfg, engine, unsupported)
    else:
        kind, adapters, groups, weights = _sd_network(cfg, family, module, net_args, can_train, engine, unsupported,
                                                      notes)
    if can_train and not adapters and not (is_flux and any(u.refused for u in unsupported)):
        unsupported.append(Unsupported("network_train_unet_only", "nothing to train: network_train_unet_only and "
                                       "network_train_text_encoder_only exclude every part", refused=True))
    elif adapters and not groups:
        unsupported.append(Unsupported("learning_rate", "every parameter group has learning rate 0 or none: "
                                       "nothing would be trained", refused=True))

    # ---- data and steps ---------------------------------------------------------------------------------
    seed = _int_or_none(cfg.get("seed"))
    base_dir = os.path.dirname(os.path.abspath(cfg.source)) if cfg.source else None
    blueprints = resolve_subsets(cfg)
    dataset_problems: list[str] = []
    steps = plan_steps(cfg, image_counts, blueprints=blueprints, base_dir=base_dir, seed=seed,
                       max_steps=ov.max_steps, problems=dataset_problems)
    for problem in dataset_problems:
        unsupported.append(Unsupported("dataset", problem, refused=True))
    dataset = _dataset_plan(cfg, blueprints, base_dir)

    # ---- optimizer and schedule -------------------------------------------------------------------------
    choice = effective_optimizer(get("optimizer_type"), cfg.get("optimizer_args"),
                                 use_8bit_adam=get("use_8bit_adam"), use_lion_optimizer=get("use_lion_optimizer"))
    optimizer = optimizer_plan(choice, _number(get("learning_rate")), _number(get("max_grad_norm")), unsupported)
    scheduler = _scheduler_plan(cfg, choice, steps, unsupported)

    # ---- model, precision, noise ------------------------------------------------------------------------
    v_param = bool(get("v_parameterization")) and not is_flux
    train_te_any = any(is_text_encoder_part(a.part) and a.lr for a in adapters)
    model = ModelPlan(
        family=family, base_model=base_model, v_parameterization=v_param, clip_skip=_int_or_none(get("clip_skip")),
        max_token_length=_int_or_none(get("max_token_length")),
        attention="sdpa" if (get("xformers") or get("mem_eff_attn") or get("sdpa")) else None,
        gradient_checkpointing=bool(get("gradient_checkpointing")),
        tokenizer_dir=cfg.get("tokenizer_cache_dir"),
        # train_network.py (SD1/SD2) has no such option; sdxl_train_network.py and flux_train_network.py do
        cache_text_encoder_outputs=(bool(get("cache_text_encoder_outputs") or get("cache_text_encoder_outputs_to_disk"))
                                    and family == "sdxl") or bool(
            flux_planned and flux_planned.flux.cache_text_encoder_outputs),
        cache_text_encoder_outputs_to_disk=(bool(get("cache_text_encoder_outputs_to_disk")) and family == "sdxl")
        or bool(flux_planned and flux_planned.flux.cache_text_encoder_outputs_to_disk),
        train_text_encoders=train_te_any, highvram=bool(get("highvram")))
    if not is_flux:
        _check_model(cfg, model, blueprints, unsupported)
    precision = _precision_plan(cfg, family, unsupported, is_flux)
    noise = _noise_plan(cfg, v_param)

    # ---- outputs ----------------------------------------------------------------------------------------
    outputs = _output_plan(cfg, ov, family, v_param, module, kind, net_args, choice, optimizer, scheduler, seed,
                           dataset, blueprints, base_model, unsupported,
                           flux_planned.flux if flux_planned is not None else None)
    samples = sample_plan(cfg, outputs.output_dir, base_dir, notes, unsupported, family=family)
    validation = validation_plan(cfg, blueprints, noise, notes, unsupported, family=family)
    if ov.train_data is not None and not os.path.isdir(ov.train_data):
        unsupported.append(Unsupported("train_data_dir", f"training data folder {ov.train_data!r} not found",
                                       refused=True))
    if cfg.get("dataset_class"):
        unsupported.append(Unsupported("dataset_class", f"{cfg.get('dataset_class')!r}: sd-scripts would import this "
                                       "class; a config never makes lora-compat import code", refused=True))
    if cfg.get("resume"):
        unsupported.append(Unsupported("resume", f"resume {cfg.get('resume')!r} comes from the config file; state "
                                       "folders hold pickles, so lora-compat resumes only when asked on the command "
                                       "line: pass --resume DIR", refused=True))
    return Plan(arch=family, base_model=base_model, v_parameterization=v_param, adapters=adapters, steps=steps,
                param_groups=groups, engine_options=engine, unsupported=unsupported, source=cfg.source,
                dialect=cfg.dialect, network_module=module, notes=notes, family=family, seed=seed, model=model,
                precision=precision, noise=noise, optimizer=optimizer, scheduler=scheduler, dataset=dataset,
                outputs=outputs, network_weights=str(weights) if weights else None,
                ignored=ignored_options(cfg, family), samples=samples, validation=validation,
                flux=flux_planned.flux if flux_planned is not None else None)


def _sd_network(cfg: CanonicalConfig, family: str, module: str, net_args: dict[str, str], can_train: bool,
                engine: dict[str, Any], unsupported: list[Unsupported], notes: list[str]
                ) -> tuple[str, list[Any], list[Any], Any]:
    """(kind, adapters, parameter groups, network_weights) of an SD-UNet family (sd-scripts' networks.lora)."""
    get = cfg.effective
    kind = network_kind(module, net_args)
    if kind is None:
        unsupported.append(Unsupported(
            "network_module", f"{module!r}" + (f" with algo={net_args.get('algo')!r}" if "algo" in net_args else "")
            + " is not a network lora-compat can train (networks.lora, LoCon, LyCORIS LoHa / LoKr only); it is "
            "never imported", refused=True))
        kind = "lora"
    net._check_numeric_args(net_args, kind, unsupported)
    try:
        lr_weights = net.block_lr_weights(net_args, family == "sdxl") if can_train else None
    except ValueError as exc:
        unsupported.append(Unsupported("network_args", f"block LR weights: {exc} (sd-scripts fails as well)"))
        lr_weights = None
    unet_lr, te_lr = net._part_lrs(cfg)
    train_unet = not get("network_train_text_encoder_only")
    train_te = not get("network_train_unet_only")
    adapters = net._plan_adapters(cfg, family, kind, net_args, lr_weights, unet_lr if train_unet else None,
                                  te_lr if train_te else None, train_unet, train_te, unsupported,
                                  notes) if can_train else []
    groups = net._plan_param_groups(family, adapters, net_args, lr_weights, unet_lr, te_lr, engine, unsupported)
    net._plan_engine_options(cfg, net_args, engine, unsupported, kind)
    if module == "lycoris.kohya":
        notes.append("LyCORIS chooses its modules by preset (" + net_args.get("preset", "full") + "); this plan "
                     "wraps the module set of sd-scripts' networks.lora (plus convolutions when conv_dim is set)")
    weights = cfg.get("network_weights")
    if weights and kind in ("loha", "lokr"):
        unsupported.append(Unsupported("network_weights", "starting a LoHa / LoKr network from a file is not "
                                       "supported", refused=True))
    return kind, adapters, groups, weights


def _flux_engine_options(cfg: CanonicalConfig, engine: dict[str, Any], unsupported: list[Unsupported]) -> None:
    """The kohya behaviours the FLUX network implements itself (dropouts, max-norm, a starting file)."""
    nd = net._float_option(cfg, "network_dropout")
    if nd:
        engine["network_dropout"] = {"p": float(nd), "why": "kohya drops rank activations after lora_down "
                                     "(inverted dropout), once per fused module"}
    swn = net._float_option(cfg, "scale_weight_norms")
    if swn:
        engine["scale_weight_norms"] = {"max_norm": float(swn), "why": "max-norm regularization of each fused "
                                        "module's delta after each step (lora_flux apply_max_norm_regularization)"}
    weights = cfg.get("network_weights")
    if weights:
        engine["network_weights"] = {"value": weights, "why": "loaded like create_network_from_weights + "
                                     "load_state_dict(strict=False); ranks and alphas must match this network"}


def _int_or_none(value: Any) -> int | None:
    n = _number(value)
    return None if n is None else int(n)


def _dataset_plan(cfg: CanonicalConfig, blueprints: list[ResolvedDataset], base_dir: str | None) -> DatasetPlan:
    get = cfg.effective
    datasets = []
    for bp in blueprints:
        params = dict(bp.params)
        if bp.is_dreambooth:
            params["prior_loss_weight"] = get("prior_loss_weight")
        datasets.append(DatasetBlueprint(bp.kind, params, [dict(s) for s in bp.subsets]))
    workers = _int_or_none(get("max_data_loader_n_workers"))
    return DatasetPlan(datasets=datasets, base_dir=base_dir, loader_workers=8 if workers is None else workers,
                       persistent_workers=bool(get("persistent_data_loader_workers")),
                       cache_latents=bool(get("cache_latents") or get("cache_latents_to_disk")),
                       cache_latents_to_disk=bool(get("cache_latents_to_disk")),
                       vae_batch_size=_int_or_none(get("vae_batch_size")) or 1,
                       dataset_config=bool(cfg.get("dataset_config")))


def optimizer_plan(choice: EffectiveOptimizer, learning_rate: float | None, max_grad_norm: float | None = None,
                   unsupported: list[Unsupported] | None = None) -> OptimizerPlan:
    """The plan of an effective optimizer; what keeps it from running goes to ``unsupported`` (refused)."""
    if unsupported is None:
        unsupported = []
    spec = choice.spec
    plan = OptimizerPlan(name=choice.name, source=choice.source, kwargs=dict(choice.kwargs),
                         call_kwargs=choice.call_kwargs, relative_step=choice.relative_step,
                         learning_rate=None if choice.relative_step else learning_rate,
                         max_grad_norm=max_grad_norm, ss_optimizer=choice.ss_optimizer())
    if spec is None:
        unsupported.append(Unsupported(choice.source, f"optimizer {choice.name!r} is not supported: it is not one "
                                       "sd-scripts maps by name, so sd-scripts would import it; a config never makes "
                                       "lora-compat import code", refused=True))
        return plan
    plan.class_path, plan.module, plan.cls = spec.class_path, spec.module, spec.cls
    plan.package, plan.schedule_free = spec.package, spec.schedule_free
    if spec.package is not None:
        plan.package_installed = importlib.util.find_spec(spec.module.split(".")[0]) is not None
        if not plan.package_installed:
            unsupported.append(Unsupported(choice.source, f"{choice.name} needs the Python package "
                                           f"{spec.package!r}, which is not installed here (pip install "
                                           f"{spec.package})", refused=True))
    if choice.conflict:
        unsupported.append(Unsupported(choice.source, choice.conflict, refused=True))
    for problem in choice.problems:
        unsupported.append(Unsupported("optimizer_args", f"{problem.item!r}: {problem.reason}", refused=True))
    for key in choice.unknown_keywords:
        unsupported.append(Unsupported("optimizer_args", f"{key!r} is not an argument of {spec.cls} (sd-scripts "
                                       "stops with TypeError)", refused=True))
    if choice.relative_step:
        unsupported.append(Unsupported("learning_rate", "Adafactor with relative_step=True (its default) "
                                       "discards every configured learning rate"))
    return plan


def _scheduler_plan(cfg: CanonicalConfig, choice: EffectiveOptimizer, steps: StepPlan,
                    unsupported: list[Unsupported]) -> SchedulerPlan:
    get = cfg.effective
    name = get("lr_scheduler")
    name = name if isinstance(name, str) else "constant"
    lr = _number(get("learning_rate"))
    schedule_free = bool(choice.spec and choice.spec.schedule_free)
    args, problems = literal_args(cfg.get("lr_scheduler_args"))
    for problem in problems:
        unsupported.append(Unsupported("lr_scheduler_args", f"{problem.item!r}: {problem.reason}", refused=True))
    # a warmup the front-end computed from its own step estimate reaches sd-scripts as a step count
    warmup = steps.warmup_steps if cfg.get("lr_warmup_steps") is None and steps.warmup_steps else \
        get("lr_warmup_steps")
    plan = SchedulerPlan(name=effective_scheduler(name, relative_step=choice.relative_step, learning_rate=lr),
                         lr_warmup_steps=warmup, lr_decay_steps=get("lr_decay_steps"),
                         num_cycles=_int_or_none(get("lr_scheduler_num_cycles")),
                         power=_number(get("lr_scheduler_power")),
                         timescale=_int_or_none(get("lr_scheduler_timescale")),
                         min_lr_ratio=_number(get("lr_scheduler_min_lr_ratio")), args=args,
                         learning_rate=lr if lr is not None else 2e-6)
    custom = cfg.get("lr_scheduler_type")
    if custom:
        # sd-scripts imports this dotted class name; a config must never choose code to import
        unsupported.append(Unsupported("lr_scheduler_type", f"{custom!r}: custom scheduler classes are not loaded "
                                       "(a config never imports code); use one of the lr_scheduler names",
                                       refused=True))
    why = warmup_refusal(name, steps.warmup_steps, lr_scheduler_type=custom, relative_step=choice.relative_step,
                         schedule_free=schedule_free)
    if why:
        unsupported.append(Unsupported("lr_warmup_steps", f"{steps.warmup_steps} warmup steps with {why}: sd-scripts "
                                       "raises ValueError (use constant_with_warmup, or no warmup)", refused=True))
    elif not (custom or schedule_free or choice.relative_step) and steps.max_train_steps:
        try:
            lr_lambda(plan.name, steps.max_train_steps, lr_warmup_steps=plan.lr_warmup_steps,
                      lr_decay_steps=plan.lr_decay_steps, lr_scheduler_num_cycles=plan.num_cycles,
                      lr_scheduler_power=plan.power, lr_scheduler_timescale=plan.timescale,
                      lr_scheduler_min_lr_ratio=plan.min_lr_ratio, lr_scheduler_args=plan.args,
                      learning_rate=plan.learning_rate)
        except (ValueError, TypeError, KeyError) as exc:
            unsupported.append(Unsupported("lr_scheduler", f"{plan.name!r}: {exc}", refused=True))
    return plan


def _check_model(cfg: CanonicalConfig, model: ModelPlan, blueprints: list[ResolvedDataset],
                 unsupported: list[Unsupported]) -> None:
    if model.max_token_length not in (None, 75, 150, 225):
        unsupported.append(Unsupported("max_token_length", f"{model.max_token_length!r}: sd-scripts accepts 150 or "
                                       "225 (leave it out for 75)", refused=True))
    if not model.cache_text_encoder_outputs:
        return
    # sdxl_train_network.py: frozen text encoders, captions that never change (reference §4.4.5)
    if model.train_text_encoders:
        unsupported.append(Unsupported("cache_text_encoder_outputs", "needs network_train_unet_only (sd-scripts "
                                       "asserts this): the text encoders cannot be trained from cached outputs",
                                       refused=True))
    random_captions = ("caption_dropout_rate", "shuffle_caption", "token_warmup_step", "caption_tag_dropout_rate")
    if any(sub.get(k) for bp in blueprints for sub in bp.subsets for k in random_captions):
        unsupported.append(Unsupported("cache_text_encoder_outputs", "cannot be used with caption_dropout_rate, "
                                       "shuffle_caption, token_warmup_step or caption_tag_dropout_rate (sd-scripts "
                                       "asserts this)", refused=True))


def _precision_plan(cfg: CanonicalConfig, family: str, unsupported: list[Unsupported],
                    is_flux: bool = False) -> PrecisionPlan:
    """Mixed precision and sd-scripts' precision memory options, with sd-scripts' assertions as refusals.

    FLUX.1's fp8 options are checked by :func:`lora_compat.plan.flux.plan_flux` (refused there, not twice)."""
    get = cfg.effective
    out = PrecisionPlan(mixed_precision=str(get("mixed_precision")), full_bf16=bool(get("full_bf16")),
                        save_precision=get("save_precision"), full_fp16=bool(get("full_fp16")),
                        fp8_base=bool(get("fp8_base") or get("fp8_base_unet")),
                        fp8_base_unet=bool(get("fp8_base_unet")))
    for option, want in (("full_bf16", "bf16"), ("full_fp16", "fp16")):
        if getattr(out, option) and out.mixed_precision != want:
            unsupported.append(Unsupported(option, f"{option} requires mixed_precision = \"{want}\" (sd-scripts "
                                           "asserts this)", refused=True))
    if out.full_bf16 and out.full_fp16:
        unsupported.append(Unsupported("full_fp16", "full_fp16 and full_bf16 exclude each other", refused=True))
    if out.fp8_base and out.mixed_precision == "no" and not is_flux:
        option = "fp8_base" if get("fp8_base") else "fp8_base_unet"
        unsupported.append(Unsupported(option, f"{option} requires mixed_precision fp16 or bf16 (sd-scripts asserts "
                                       "this): the fp8 weights are computed in that dtype", refused=True))
    return out


def _noise_plan(cfg: CanonicalConfig, v_param: bool) -> NoisePlan:
    out = NoisePlan(v_parameterization=v_param)
    for f in dataclasses.fields(NoisePlan):
        if f.name == "v_parameterization":
            continue
        value = cfg.effective(f.name)
        if value is not None:
            setattr(out, f.name, value)
    return out


#: sd-scripts' ``get_sanitized_config_or_none``: options never sent to a tracker (credentials, then paths).
SENSITIVE_OPTIONS = ("wandb_api_key", "huggingface_token")
SENSITIVE_PATH_OPTIONS = ("pretrained_model_name_or_path", "vae", "tokenizer_cache_dir", "train_data_dir",
                          "conditioning_data_dir", "reg_data_dir", "output_dir", "logging_dir")


def tracker_config(cfg: CanonicalConfig) -> dict[str, Any]:
    """The run configuration sd-scripts gives the trackers with ``log_config`` (``get_sanitized_config_or_none``):
    every option's effective value but the credentials and the paths above (and any other credential-named
    option), None/bool/str/int/float as they are, anything else as its ``str()`` (what accelerate accepts)."""
    from lora_compat.config.options import option_names
    from lora_compat.config.secrets import is_secret_key

    out: dict[str, Any] = {}
    for key in option_names():
        if key in SENSITIVE_OPTIONS or key in SENSITIVE_PATH_OPTIONS or is_secret_key(key):
            continue
        value = cfg.effective(key)
        out[key] = value if value is None or isinstance(value, (bool, str, int, float)) else f"{value}"
    return out


def _output_plan(cfg: CanonicalConfig, ov: RunOverrides, family: str, v_param: bool, module: str, kind: str,
                 net_args: dict[str, str], choice: EffectiveOptimizer, optimizer: OptimizerPlan,
                 scheduler: SchedulerPlan, seed: int | None, dataset: DatasetPlan,
                 blueprints: list[ResolvedDataset], base_model: str | None,
                 unsupported: list[Unsupported], flux: Any = None) -> OutputPlan:
    get = cfg.effective
    fmt = str(get("save_model_as"))
    if fmt not in SAVE_FORMATS:
        unsupported.append(Unsupported("save_model_as", f"{fmt!r} is not one of {', '.join(SAVE_FORMATS)}",
                                       refused=True))
    out = OutputPlan(
        # sd-scripts needs output_dir; lora-compat writes into the working folder without one
        output_dir=str(ov.output_dir or get("output_dir") or "."), output_name=get("output_name"), extension="." + fmt,
        save_every_n_epochs=_int_or_none(get("save_every_n_epochs")),
        save_every_n_steps=_int_or_none(get("save_every_n_steps")),
        save_n_epoch_ratio=_int_or_none(get("save_n_epoch_ratio")),
        save_last_n_epochs=_int_or_none(get("save_last_n_epochs")),
        save_last_n_steps=_int_or_none(get("save_last_n_steps")),
        save_state=bool(get("save_state")), save_state_on_train_end=bool(get("save_state_on_train_end")),
        no_metadata=bool(get("no_metadata")), logging_dir=get("logging_dir"), log_tracker_name=get("log_tracker_name"),
        log_with=get("log_with"), log_prefix=get("log_prefix"), wandb_run_name=get("wandb_run_name"),
        wandb_api_key=get("wandb_api_key") or None, log_tracker_config=get("log_tracker_config"),
        tracker_config=tracker_config(cfg) if get("log_config") else None)
    if out.log_with in ("tensorboard", "all") and not out.logging_dir:
        unsupported.append(Unsupported("log_with", f"log_with = {out.log_with!r} needs logging_dir (sd-scripts raises "
                                       "ValueError)", refused=True))
    for package in missing_tracker_packages(out.log_with, out.logging_dir):
        unsupported.append(Unsupported("log_with" if out.log_with else "logging_dir", f"logging to {package} needs "
                                       f"the Python package {package!r}, which is not installed here (pip install "
                                       f"{package})", refused=True))
    if family not in FAMILY_SPECS:
        return out
    relative = choice.relative_step
    out.metadata = option_metadata(
        get, family=family, v_parameterization=v_param, network_module=module, kind=kind,
        network_args=net_args if cfg.get("network_args") else None,
        learning_rate=None if relative else get("learning_rate"), unet_lr=None if relative else cfg.get("unet_lr"),
        lr_scheduler=scheduler.name, lr_warmup_steps=scheduler.lr_warmup_steps, ss_optimizer=optimizer.ss_optimizer,
        seed=seed, dataset_config=dataset.dataset_config and ov.train_data is None,
        # the one command-line dataset (its options when the folders are not here)
        dataset_params=blueprints[0].params if blueprints else {k: get(k) for k in _BUCKET_OPTIONS},
        base_model=base_model, flux_options=flux.options if flux is not None else None)
    out.modelspec = modelspec(get, family, v_param, flux.variant if flux is not None else None)
    return out


__all__ = ["ENGINE_IGNORED", "RunOverrides", "make_plan", "optimizer_plan", "plan_family", "trainable"]
