"""The parts of a :class:`Plan`: plain, typed, JSON-serializable data (no torch, no config access).

``make_plan`` (:mod:`lora_compat.plan.build`) fills them from a canonical config once; the training engine
runs them and reads nothing else; ``lora-compat plan --format json`` prints :meth:`Plan.to_json`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

# The PEFT config class for each adapter kind (names only: peft is never imported here).
PEFT_CONFIG_CLASS = {"lora": "LoraConfig", "locon": "LoraConfig", "loha": "LoHaConfig", "lokr": "LoKrConfig"}
KINDS = tuple(PEFT_CONFIG_CLASS)


def is_text_encoder_part(part: str) -> bool:
    """Plan parts are diffusers component names: text encoders are ``text_encoder``, ``text_encoder_2`` ...; the
    other part is the denoiser (``unet``; a DiT family names its own). Parameter groups share one
    ``text_encoder`` group for every text encoder (sd-scripts' order: text encoders first). FLUX.1's parts are
    named as sd-scripts names its encoders: ``clip_l`` and ``t5xxl`` (denoiser: ``transformer``)."""
    return part.startswith("text_encoder") or part in ("clip_l", "t5xxl")


@dataclass
class AdapterPlan:
    """One adapter on one model part.

    ``peft_kwargs`` are keyword arguments of the PEFT config class named by ``peft_config_class``
    (``LoraConfig(**peft_kwargs)``); ``target_modules`` holds exact module paths of the diffusers /
    transformers model, and ``kohya_names`` maps each of those paths to the kohya module name
    (``lora_unet_down_blocks_0_attentions_0_proj_in`` ...) so files can be saved in kohya layout. Several paths
    with one kohya name are one fused module: FLUX.1's ``img_attn_qkv`` / ``txt_attn_qkv`` (q, k, v) and
    ``linear1`` (q, k, v, proj_mlp) share one ``lora_down`` and stack their ``lora_up`` rows in path order.
    ``lr`` is the learning rate of this part's parameter group (None: the part is not trained; its modules
    still exist and are saved, as sd-scripts does for an lr of 0).
    """

    part: str                      # "unet" | "text_encoder" | "text_encoder_2"; FLUX: transformer | clip_l | t5xxl
    kind: str                      # "lora" | "locon" | "loha" | "lokr"
    kohya_prefix: str              # "lora_unet" | "lora_te" | "lora_te1" | "lora_te2"
    peft_kwargs: dict[str, Any] = field(default_factory=dict)
    kohya_names: dict[str, str] = field(default_factory=dict)
    lr: float | None = None
    peft_config_class: str = "LoraConfig"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StepPlan:
    """Step arithmetic as sd-scripts does it on one process (reference §4.7, §4.11).

    ``steps_per_epoch`` is the number of batches per epoch (None when the images cannot be counted);
    ``optimizer_steps_per_epoch`` divides it by gradient accumulation. ``max_train_steps`` is what training
    stops at. ``max_train_epochs`` is set when the length is given in epochs: the engine then recomputes the
    steps for its number of processes (``accelerate launch``), which equals ``max_train_steps`` on one.
    ``length_from`` says where the length came from; ``dataset_batch_sizes`` are the batch sizes the
    datasets really use (a dataset-level ``batch_size`` overrides ``train_batch_size``).
    """

    epochs: int | None
    max_train_steps: int | None
    steps_per_epoch: int | None
    warmup_steps: int | None
    effective_batch_size: int
    gradient_accumulation_steps: int
    train_batch_size: int = 1
    optimizer_steps_per_epoch: int | None = None
    decay_steps: int | None = None
    explanation: list[str] = field(default_factory=list)   # the arithmetic, one line per derived number
    max_train_epochs: int | None = None
    length_from: str = "max_train_steps"
    dataset_batch_sizes: list[int] = field(default_factory=list)
    steps_per_epoch_exact: bool = False    # counted bucket by bucket from the images (not a lower bound)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ParamGroupPlan:
    """One optimizer parameter group (reference §4.10): text-encoder groups first, then UNet groups.

    ``block`` is set for block-LR groups (UNet block index); ``lora_plus`` marks the LoRA+ group holding
    the ``lora_up`` / PEFT ``lora_B`` weights; ``pattern`` is the FLUX ``network_reg_lrs`` regex whose modules
    the group holds (None: the part's other modules).
    """

    part: str                      # "text_encoder" (TEs share one group) | "unet"; FLUX: clip_l | t5xxl | transformer
    lr: float | None
    block: int | None = None
    lora_plus: bool = False
    pattern: str | None = None

    @property
    def description(self) -> str:
        """sd-scripts' name of the group in logs (``lr/<description>``): ``textencoder``, ``unet``,
        ``unet_block<N>``, with `` plus`` for the LoRA+ group (``networks/lora.py`` lr_descriptions)."""
        base = "unet" if self.part == "unet" else "textencoder"
        if self.part == "unet" and self.block is not None:
            base = f"unet_block{self.block}"
        return base + (" plus" if self.lora_plus else "")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Unsupported:
    """An option the engine cannot run as sd-scripts would, and why. ``refused``: ``train`` stops on it
    (exit 2) instead of warning."""

    option: str
    why: str
    refused: bool = False

    def __iter__(self) -> Iterator[str]:  # lets callers unpack ``option, why = item``
        return iter((self.option, self.why))

    def to_json(self) -> dict[str, Any]:
        return {"option": self.option, "why": self.why, "refused": self.refused}


@dataclass
class ModelPlan:
    """The base model and how the engine runs it.

    ``family``: sd1 / sd2 / sdxl (the family axis: what differs per family lives in the engine's family
    module). ``attention``: ``"sdpa"`` when xformers / mem_eff_attn / sdpa is asked for (all three map to
    PyTorch SDPA), None for diffusers' default. ``tokenizer_dir``: where a single-file model's tokenizer
    folders are (``tokenizer_cache_dir``, else the model file's folder); ``train_text_encoders``: any
    text-encoder adapter has a learning rate.
    """

    family: str
    base_model: str | None
    v_parameterization: bool = False
    clip_skip: int | None = None
    max_token_length: int | None = None
    attention: str | None = None
    gradient_checkpointing: bool = False
    tokenizer_dir: str | None = None
    cache_text_encoder_outputs: bool = False
    train_text_encoders: bool = True
    cache_text_encoder_outputs_to_disk: bool = False   # sd-scripts' <image>_te_outputs.npz beside each image
    highvram: bool = False                             # fewer device cache clears (no effect on results)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PrecisionPlan:
    """``mixed_precision`` ("no" | "fp16" | "bf16") as configured (without a GPU the engine runs fp16 as fp32
    and records that), ``full_bf16`` / ``full_fp16`` (the network itself in bf16 / fp16), ``save_precision``
    (None: as trained), ``fp8_base`` (the frozen denoiser, and the text encoders unless ``fp8_base_unet``, stored
    in float8_e4m3fn and computed in the mixed-precision dtype)."""

    mixed_precision: str = "no"
    full_bf16: bool = False
    save_precision: str | None = None
    full_fp16: bool = False
    fp8_base: bool = False
    fp8_base_unet: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class NoisePlan:
    """Noise, timestep and loss options (sd-scripts names, reference §4.8, §4.9), defaults filled in."""

    noise_offset: float | None = None
    noise_offset_random_strength: bool = False
    adaptive_noise_scale: float | None = None
    multires_noise_iterations: int | None = None
    multires_noise_discount: float = 0.3
    ip_noise_gamma: float | None = None
    ip_noise_gamma_random_strength: bool = False
    min_timestep: int | None = None
    max_timestep: int | None = None
    v_parameterization: bool = False
    zero_terminal_snr: bool = False
    min_snr_gamma: float | None = None
    scale_v_pred_loss_like_noise_pred: bool = False
    v_pred_like_loss: float | None = None
    debiased_estimation_loss: bool = False
    loss_type: str = "l2"
    huber_c: float = 0.1
    huber_scale: float = 1.0
    huber_schedule: str = "snr"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class OptimizerPlan:
    """The optimizer the engine builds (:func:`lora_compat.semantics.effective_optimizer`).

    ``kwargs`` are recorded in ``ss_optimizer``; ``call_kwargs`` are all the constructor gets.
    ``package_installed`` is None when no extra package is needed. ``learning_rate`` is what the constructor
    gets (None with Adafactor's relative_step, which discards every LR). ``ss_optimizer`` is predicted from the
    catalogue's class path (the engine writes the imported class's own path, the same string).
    """

    name: str
    source: str = "optimizer_type"
    class_path: str | None = None
    module: str | None = None
    cls: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    call_kwargs: dict[str, Any] = field(default_factory=dict)
    package: str | None = None
    package_installed: bool | None = None
    relative_step: bool = False
    schedule_free: bool = False
    learning_rate: float | None = None
    max_grad_norm: float | None = None
    ss_optimizer: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SchedulerPlan:
    """The learning-rate schedule (``get_scheduler_fix``): the effective name (``adafactor:<lr>`` with
    Adafactor's relative_step; ``constant`` for schedule-free optimizers, which get a dummy scheduler), and
    :func:`lora_compat.semantics.lr_lambda`'s inputs. ``lr_warmup_steps`` / ``lr_decay_steps`` are as the
    scheduler receives them (an int is steps; a float a ratio of steps x processes)."""

    name: str = "constant"
    lr_warmup_steps: int | float | None = None
    lr_decay_steps: int | float | None = None
    num_cycles: int | None = 1
    power: float | None = 1.0
    timescale: int | None = None
    min_lr_ratio: float | None = None
    args: dict[str, Any] = field(default_factory=dict)
    learning_rate: float = 2e-6        # polynomial decays from it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DatasetBlueprint:
    """One dataset as sd-scripts' blueprint generator resolves it: kind, dataset params, each subset's params."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    subsets: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DatasetPlan:
    """What the engine's dataset is built from.

    ``base_dir``: relative folders are tried against it (the config file's folder). ``loader_workers`` /
    ``persistent_workers``: the DataLoader worker lag the engine emulates (it runs no worker processes;
    sd-scripts' default is 8 workers, capped at the CPU count at run time). ``dataset_config``: the datasets
    came from a dataset config (then ``ss_datasets`` describes them in the metadata).
    """

    datasets: list[DatasetBlueprint] = field(default_factory=list)
    base_dir: str | None = None
    loader_workers: int = 8
    persistent_workers: bool = False
    cache_latents: bool = False
    cache_latents_to_disk: bool = False
    vae_batch_size: int = 1
    dataset_config: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class OutputPlan:
    """Where and how results are written, and the metadata written into them.

    ``metadata`` holds every ``ss_*`` value known before the run, as the string sd-scripts writes; None marks
    a key the run fills in (counts, seed when drawn, session id, hashes). ``modelspec`` likewise
    (``modelspec.date`` is the save time).
    """

    output_dir: str = "."
    output_name: str | None = None
    extension: str = ".safetensors"
    save_every_n_epochs: int | None = None
    save_every_n_steps: int | None = None
    save_n_epoch_ratio: int | None = None
    save_last_n_epochs: int | None = None
    save_last_n_steps: int | None = None
    save_state: bool = False
    save_state_on_train_end: bool = False
    no_metadata: bool = False
    logging_dir: str | None = None
    log_tracker_name: str | None = None
    log_with: str | None = None        # tensorboard | wandb | all (None: tensorboard when logging_dir is set)
    log_prefix: str | None = None      # logs go to <logging_dir>/<log_prefix><YYYYmmddHHMMSS>, as sd-scripts
    wandb_run_name: str | None = None
    wandb_api_key: str | None = field(default=None, repr=False)   # never shown: REDACTED in to_json
    log_tracker_config: str | None = None   # a TOML file whose tables replace the trackers' init arguments
    tracker_config: dict[str, Any] | None = None   # log_config: the options sent to the trackers (sanitized)
    metadata: dict[str, str | None] = field(default_factory=dict)
    modelspec: dict[str, str | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        from lora_compat.config.secrets import redact

        out = asdict(self)
        out["wandb_api_key"] = redact("wandb_api_key", self.wandb_api_key)
        return out


@dataclass
class SamplePlan:
    """Sample images during training (``sample_prompts`` and its options, read when the plan is made).

    ``prompts`` are the prompt file's entries as sd-scripts reads them (values None = the family default);
    ``every_n_steps`` / ``every_n_epochs`` are None when off (0 or less disables them, as sd-scripts);
    ``sampler`` is ``sample_sampler`` (each prompt's ``--ss`` overrides it); images go to ``output_dir``
    (``<output_dir>/sample``).
    """

    prompt_file: str | None = None
    prompts: list[Any] = field(default_factory=list)   # lora_compat.semantics.samples.SamplePrompt
    every_n_steps: int | None = None
    every_n_epochs: int | None = None
    at_first: bool = False
    sampler: str = "ddim"
    output_dir: str = "sample"
    #: FLUX.1: each prompt as the sampler runs it (:func:`~lora_compat.semantics.flux_sampling.flux_sample_settings`:
    #: size, steps, guidance, CFG scale, the negative prompt when used, token count, ``mu``); empty for SD
    resolved: list[dict[str, Any]] = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        """Whether any image is ever made."""
        return bool(self.prompts) and (self.at_first or self.every_n_steps is not None
                                       or self.every_n_epochs is not None)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["prompts"] = [p.to_json() for p in self.prompts]
        out["enabled"] = self.enabled
        return out


@dataclass
class ValidationPlan:
    """Validation loss as sd-scripts computes it (``train_network.py``): the held-out part of each dataset
    (``splits``: each dataset's ``validation_split``), every ``every_n_steps`` optimizer steps and at the end of
    every ``every_n_epochs``-th epoch (None: every epoch), at most ``max_steps`` batches per pass, each batch at the
    fixed ``timesteps``, with torch and Python's RNG seeded by ``seed`` (``validation_seed``, else the run's seed:
    None) for the pass."""

    splits: list[float] = field(default_factory=list)   # validation_split of each dataset (0: none held out)
    every_n_steps: int | None = None
    every_n_epochs: int | None = None
    max_steps: int | None = None
    seed: int | None = None
    timesteps: list[int] = field(default_factory=list)
    #: False for FLUX.1: flux_train_network.py runs each batch once per timestep but draws its sigma with
    #: ``timestep_sampling`` (it ignores the fixed timestep); the pass's reseeding makes every pass draw the same
    fixed_timesteps: bool = True

    @property
    def enabled(self) -> bool:
        """Whether any dataset holds images out (sd-scripts skips a split outside (0, 1])."""
        return any(0.0 < s <= 1.0 for s in self.splits)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "enabled": self.enabled}


@dataclass
class Plan:
    """Everything the engine needs, resolved; plain data, JSON-serializable via :meth:`to_json`."""

    arch: str                      # "sd1" | "sd2" | "sdxl" (the family, under its historical name)
    base_model: str | None
    v_parameterization: bool
    adapters: list[AdapterPlan]
    steps: StepPlan
    param_groups: list[ParamGroupPlan]
    engine_options: dict[str, Any]
    unsupported: list[Unsupported]
    source: str = ""
    dialect: str = ""
    network_module: str = "networks.lora"
    notes: list[str] = field(default_factory=list)
    family: str = ""
    seed: int | None = None
    model: ModelPlan | None = None
    precision: PrecisionPlan = field(default_factory=PrecisionPlan)
    noise: NoisePlan = field(default_factory=NoisePlan)
    optimizer: OptimizerPlan = field(default_factory=lambda: OptimizerPlan("AdamW"))
    scheduler: SchedulerPlan = field(default_factory=SchedulerPlan)
    dataset: DatasetPlan = field(default_factory=DatasetPlan)
    outputs: OutputPlan = field(default_factory=OutputPlan)
    network_weights: str | None = None
    ignored: list[Unsupported] = field(default_factory=list)
    flux: Any = None               # FLUX.1: lora_compat.plan.flux.FluxPlan (model files, options, memory, network)
    samples: SamplePlan = field(default_factory=SamplePlan)
    validation: ValidationPlan = field(default_factory=ValidationPlan)

    def adapter(self, part: str) -> AdapterPlan | None:
        for a in self.adapters:
            if a.part == part:
                return a
        return None

    @property
    def refusals(self) -> list[Unsupported]:
        """The entries ``train`` stops on."""
        return [u for u in self.unsupported if u.refused]

    def to_json(self) -> dict[str, Any]:
        """The ``plan --format json`` object (a stable contract, see docs/cli.md)."""
        return {
            "source": self.source,
            "dialect": self.dialect,
            "arch": self.arch,
            "family": self.family or self.arch,
            "base_model": self.base_model,
            "v_parameterization": self.v_parameterization,
            "network_module": self.network_module,
            "seed": self.seed,
            "steps": self.steps.to_json(),
            "param_groups": [g.to_json() for g in self.param_groups],
            "adapters": [a.to_json() for a in self.adapters],
            "engine_options": self.engine_options,
            "unsupported": [u.to_json() for u in self.unsupported],
            "ignored": [{"option": u.option, "why": u.why} for u in self.ignored],
            "notes": list(self.notes),
            "model": self.model.to_json() if self.model else None,
            "precision": self.precision.to_json(),
            "noise": self.noise.to_json(),
            "optimizer": self.optimizer.to_json(),
            "scheduler": self.scheduler.to_json(),
            "dataset": self.dataset.to_json(),
            "outputs": self.outputs.to_json(),
            "network_weights": self.network_weights,
            "flux": self.flux.to_json() if self.flux is not None else None,
            "samples": self.samples.to_json(),
            "validation": self.validation.to_json(),
        }
