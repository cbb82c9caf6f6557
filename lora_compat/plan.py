"""The training plan: what the engine will run, resolved from a canonical config.

A :class:`Plan` is plain data (no torch import): the architecture, the step arithmetic sd-scripts would do,
the optimizer parameter groups, and for the UNet and each text encoder the PEFT config kwargs whose target
set equals the module set sd-scripts' ``networks/lora.py`` would wrap. Options PEFT cannot express are listed
in ``engine_options`` (the engine implements them itself) or in ``unsupported`` (with the reason).

``make_plan(cfg)`` is the only constructor used by ``lora-compat plan`` and by the training engine.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from lora_compat.config.dialects.native import (
    network_arg_float, network_arg_int, network_kind, parse_network_args,
)
from lora_compat.config.model import CanonicalConfig
from lora_compat.semantics.optimizers import EffectiveOptimizer, effective_optimizer
from lora_compat.semantics.schedules import warmup_refusal, warmup_steps
from lora_compat.semantics.steps import (
    derrian_a1_max_train_steps, kohya_gui_max_train_steps, kohya_gui_warmup_steps,
)

__all__ = [
    "AdapterPlan", "ParamGroupPlan", "Plan", "StepPlan", "Unsupported", "block_index", "block_lr_weights",
    "make_plan", "network_kind", "parse_network_args", "plan_steps",
]

PARTS = ("unet", "text_encoder", "text_encoder_2")
KINDS = ("lora", "locon", "loha", "lokr")
# kohya name prefix of each trained part, per architecture (sd-scripts networks/lora.py)
KOHYA_PREFIXES = {
    ("sd1", "unet"): "lora_unet", ("sd2", "unet"): "lora_unet", ("sdxl", "unet"): "lora_unet",
    ("sd1", "text_encoder"): "lora_te", ("sd2", "text_encoder"): "lora_te",
    ("sdxl", "text_encoder"): "lora_te1", ("sdxl", "text_encoder_2"): "lora_te2",
}
# The PEFT config class for each adapter kind (names only: peft is never imported here).
PEFT_CONFIG_CLASS = {"lora": "LoraConfig", "locon": "LoraConfig", "loha": "LoHaConfig", "lokr": "LoKrConfig"}


@dataclass
class AdapterPlan:
    """One adapter on one model part.

    ``peft_kwargs`` are keyword arguments of the PEFT config class named by ``peft_config_class``
    (``LoraConfig(**peft_kwargs)``); ``target_modules`` holds exact module paths of the diffusers /
    transformers model, and ``kohya_names`` maps each of those paths to the kohya module name
    (``lora_unet_down_blocks_0_attentions_0_proj_in`` ...) so files can be saved in kohya layout.
    ``lr`` is the learning rate of this part's parameter group (None: the part is not trained; its modules
    still exist and are saved, as sd-scripts does for an lr of 0).
    """

    part: str                      # "unet" | "text_encoder" | "text_encoder_2"
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
    """Step arithmetic as sd-scripts does it (reference §4.7, §4.11).

    ``steps_per_epoch`` is the number of batches per epoch (None when the images cannot be counted);
    ``optimizer_steps_per_epoch`` divides it by gradient accumulation. ``max_train_steps`` is what training
    stops at (sd-scripts recomputes it from ``max_train_epochs`` when that is set).
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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ParamGroupPlan:
    """One optimizer parameter group (reference §4.10): text-encoder groups first, then UNet groups.

    ``block`` is set for block-LR groups (UNet block index); ``lora_plus`` marks the LoRA+ group holding
    the ``lora_up`` / PEFT ``lora_B`` weights.
    """

    part: str                      # "text_encoder" (all TEs share one group) | "unet"
    lr: float | None
    block: int | None = None
    lora_plus: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Unsupported:
    """An option the engine cannot run as sd-scripts would, and why."""

    option: str
    why: str

    def __iter__(self):  # lets callers unpack ``option, why = item``
        return iter((self.option, self.why))


@dataclass
class Plan:
    """Everything the engine needs, resolved; plain data, JSON-serializable via :meth:`to_json`."""

    arch: str                      # "sd1" | "sd2" | "sdxl"
    base_model: str | None
    v_parameterization: bool
    adapters: list[AdapterPlan]
    steps: StepPlan
    param_groups: list[ParamGroupPlan]
    engine_options: dict[str, Any]
    unsupported: list[Unsupported]
    canonical: CanonicalConfig
    network_module: str = "networks.lora"
    notes: list[str] = field(default_factory=list)

    def adapter(self, part: str) -> AdapterPlan | None:
        for a in self.adapters:
            if a.part == part:
                return a
        return None

    def to_json(self) -> dict[str, Any]:
        """The ``plan --format json`` object (a stable contract, see docs/cli.md)."""
        return {
            "source": self.canonical.source,
            "dialect": self.canonical.dialect,
            "arch": self.arch,
            "base_model": self.base_model,
            "v_parameterization": self.v_parameterization,
            "network_module": self.network_module,
            "steps": self.steps.to_json(),
            "param_groups": [g.to_json() for g in self.param_groups],
            "adapters": [a.to_json() for a in self.adapters],
            "engine_options": self.engine_options,
            "unsupported": [{"option": u.option, "why": u.why} for u in self.unsupported],
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------------------------------------------------
# network_args parsing (values stay strings in sd-scripts; each network module converts them, reference §6.8)

# parse_network_args / network_kind live in the config layer (lora_compat.config.dialects.native) and are
# re-exported here for the engine.


# ---------------------------------------------------------------------------------------------------------
# typed option access: the spine validates types, but the plan must not crash on a value it could not check

def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _int_option(cfg: CanonicalConfig, name: str, default: int) -> int:
    v = _number(cfg.effective(name))
    return default if v is None or not v else (int(v) or default)


def _float_option(cfg: CanonicalConfig, name: str) -> float | None:
    v = _number(cfg.get(name))
    return None if v is None else float(v)


# ---------------------------------------------------------------------------------------------------------
# steps

def _image_count(folder: str, image_counts: dict[str, int] | None) -> int | None:
    """Images in ``folder``: from ``image_counts`` (by path or by folder name), else counted on disk."""
    import os

    from lora_compat.config.kohya_folder import count_images

    if image_counts:
        for key in (folder, os.path.normpath(folder), os.path.basename(os.path.normpath(folder))):
            if key in image_counts:
                return int(image_counts[key])
    return count_images(folder) if os.path.isdir(folder) else None


def _subset_images(cfg: CanonicalConfig, image_counts: dict[str, int] | None) -> list[tuple[bool, int, int, int]] | None:
    """(is_reg, images, num_repeats, dataset index) per subset, or None when any subset cannot be counted."""
    rows = []
    for di, _si, ds, sub in cfg.iter_subsets():
        image_dir = sub.get("image_dir")
        n = _image_count(str(image_dir), image_counts) if image_dir is not None else None
        if n is None:
            return None
        repeats = _number(cfg.subset_value(ds, sub, "num_repeats", None))
        if repeats is None:
            repeats = _number(cfg.get("dataset_repeats", 1)) or 1
        rows.append((bool(sub.get("is_reg", False)), n, int(repeats), di))
    return rows or None


def _steps_per_epoch(cfg: CanonicalConfig, image_counts: dict[str, int] | None,
                     explain: list[str]) -> int | None:
    rows = _subset_images(cfg, image_counts)
    if rows is None:
        if cfg.datasets or not cfg.get("train_data_dir") or not image_counts:
            return None
        # kohya folders not on this machine: sub-folder image counts given by name ("10_sks dog": 25)
        samples = _folder_total(None, image_counts)
        if samples is None:
            return None
        bs = _int_option(cfg, "train_batch_size", 1)
        batches = math.ceil(samples / bs)
        explain.append(f"train_data_dir sub-folders (given counts): {samples} samples (images x repeats) / batch "
                       f"{bs} = {batches} batches (regularization folders not included)")
        return batches
    total = 0
    for di, ds in enumerate(cfg.datasets):
        train = sum(n * r for is_reg, n, r, d in rows if d == di and not is_reg)
        reg_images = sum(n for is_reg, n, _r, d in rows if d == di and is_reg)
        # sd-scripts balances regularization samples to the number of training samples (reference §4.1)
        samples = train + (train if reg_images else 0)
        bs = _number(ds.get("batch_size", None))
        if bs is None and "batch_size" in cfg.general:
            bs = _number(cfg.general["batch_size"].value)
        if bs is None:
            bs = _int_option(cfg, "train_batch_size", 1)
        bs = int(bs) or 1  # sd-scripts would fail on 0; keep the arithmetic defined
        batches = math.ceil(samples / bs) if samples else 0
        explain.append(f"dataset {di}: {train} training samples (images x repeats)"
                       + (f" + {train} balanced regularization samples" if reg_images else "")
                       + f" / batch {bs} = {batches} batches (lower bound: sd-scripts counts partial"
                       " batches per bucket)")
        total += batches
    return total


def _folder_total(root: Any, image_counts: dict[str, int] | None) -> int | None:
    """Σ repeats x images over the ``<repeats>_<name>`` sub-folders of a kohya image folder (the front-ends'
    own estimate, bucket-agnostic). Sub-folders come from disk, else from ``image_counts`` keyed by name."""
    import os

    from lora_compat.config.kohya_folder import parse_folder_name

    names: dict[str, int] = {}
    if root and os.path.isdir(str(root)):
        for entry in sorted(os.listdir(str(root))):
            full = os.path.join(str(root), entry)
            if os.path.isdir(full):
                names[entry] = _image_count(full, image_counts) or 0
    elif image_counts:
        names = {os.path.basename(os.path.normpath(k)): v for k, v in image_counts.items()}
    total, found = 0, False
    for name, count in names.items():
        parsed = parse_folder_name(name)
        if parsed is not None:
            total += parsed[0] * int(count)
            found = True
    return total if found else None


def _length_notes(cfg: CanonicalConfig) -> tuple[Any, Any]:
    """(kohya_ss GUI, Derrian A1) notes of a training length the front-end derived from image counts that its
    reader could not make (folders absent); None for each when there is none."""
    gui = next((n for n in cfg.notes if n.code == "kohya-gui-epoch-steps-unresolved"), None)
    a1 = next((n for n in cfg.notes if n.code == "derrian-a1-epochs-to-steps"
               and n.data.get("max_train_steps") is None), None)
    return gui, a1


# reader notes of a warmup the front-end derived from its own step estimate, unresolved by the reader
_WARMUP_NOTES = ("kohya-gui-warmup-unresolved", "derrian-warmup-unresolved", "derrian-toml-warmup-unresolved")


def _gui_epoch_steps(cfg: CanonicalConfig, image_counts: dict[str, int] | None,
                     explain: list[str]) -> int | None:
    """The front-end's own max_train_steps from its epoch count when the reader could not count the images.

    kohya_ss GUI (legacy-dialects.md §2.6): ceil(images x repeats / batch / grad_acc x epoch x reg_factor);
    Derrian A1 before 2023-02-04 (§3.4): int(images x repeats / batch x epochs).
    """
    gui, a1 = _length_notes(cfg)
    if gui is not None:
        d = gui.data
        total = _folder_total(d.get("train_data_dir"), image_counts)
        if total is None:
            return None
        epoch, bs = int(d.get("epoch") or 1), int(d.get("train_batch_size") or 1)
        ga, reg = int(d.get("gradient_accumulation_steps") or 1), int(d.get("reg_factor") or 1)
        steps = kohya_gui_max_train_steps(total, bs, ga, epoch, reg)
        explain.append(f"kohya_ss GUI epoch {epoch}: ceil({total} images x repeats / batch {bs} / grad_accum {ga} "
                       f"x {epoch} x reg_factor {reg}) = max_train_steps {steps}")
        return steps
    if a1 is not None:
        total = _folder_total(cfg.get("train_data_dir"), image_counts)
        if total is None:
            return None
        epochs, bs = int(a1.data.get("epochs") or 1), int(a1.data.get("train_batch_size") or 1)
        steps = derrian_a1_max_train_steps(total, bs, epochs)
        explain.append(f"Derrian A1 num_epochs {epochs}: int({total} images x repeats / batch {bs} x {epochs}) = "
                       f"max_train_steps {steps}")
        return steps
    return None


def _frontend_warmup(cfg: CanonicalConfig, mts: int | None, image_counts: dict[str, int] | None,
                     explain: list[str]) -> int | None:
    """Warmup a front-end computed from its own step estimate, when the reader could not (image folders)."""
    if cfg.get("lr_warmup_steps") is not None:
        return None
    gui = next((n for n in cfg.notes if n.code == "kohya-gui-warmup-unresolved"), None)
    if gui is not None and not cfg.get("dataset_config") and mts is not None:
        pct = float(gui.data.get("percent") or 0)
        warmup = kohya_gui_warmup_steps(pct, mts)
        explain.append(f"kohya_ss GUI lr_warmup {pct:g}% of {mts} steps: round({pct:g} x {mts} / 100) = "
                       f"{warmup} warmup steps")
        return warmup
    der = next((n for n in cfg.notes if n.code == "derrian-warmup-unresolved"), None)
    if der is not None:
        total = _folder_total(cfg.get("train_data_dir"), image_counts)
        if total is None:
            return None
        epochs, bs = int(der.data.get("epochs") or 1), int(der.data.get("train_batch_size") or 1)
        estimate = derrian_a1_max_train_steps(total, bs, epochs)
        ratio = float(der.data.get("ratio") or 0)
        warmup = int(estimate * ratio)
        explain.append(f"Derrian warmup_lr_ratio {ratio:g} of its estimate int({total} / {bs} x {epochs}) = "
                       f"{estimate} steps: {warmup} warmup steps")
        return warmup
    return None


def _warmup_steps(value: Any, max_train_steps: int | None, explain: list[str], name: str) -> int | None:
    """sd-scripts' W: int(r x steps) for a float r (a ratio), the int itself otherwise (reference §4.11)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if max_train_steps is None:
            return None
        w = warmup_steps(value, max_train_steps)
        explain.append(f"{name} {value!r} is a ratio: int({value!r} x {max_train_steps}) = {w} steps")
        return w
    if isinstance(value, int):
        return value
    return None


def plan_steps(cfg: CanonicalConfig, image_counts: dict[str, int] | None = None) -> StepPlan:
    """Resolve epochs, steps, warmup and batch sizes as sd-scripts would on one process (reference §4.7).

    The kohya_ss GUI's ``epoch`` and percent warmup, when its reader could not count the images, are
    resolved here from ``image_counts`` / the folders (legacy-dialects.md §2.6).
    """
    explain: list[str] = []
    ga = _int_option(cfg, "gradient_accumulation_steps", 1)
    bs = _int_option(cfg, "train_batch_size", 1)
    spe = _steps_per_epoch(cfg, image_counts, explain)
    opt_spe = math.ceil(spe / ga) if spe is not None else None
    epochs_opt = _number(cfg.get("max_train_epochs"))
    if epochs_opt:
        epochs: int | None = int(epochs_opt)
        if opt_spe is not None:
            mts: int | None = epochs * opt_spe
            explain.append(f"max_train_epochs {epochs} x ceil({spe} batches / grad_accum {ga}) = {mts} steps"
                           " (overrides max_train_steps)")
        else:
            mts = None
            explain.append(f"max_train_epochs {epochs}: steps unknown until the images are counted")
    else:
        gui = _gui_epoch_steps(cfg, image_counts, explain)
        pending = [n for n in _length_notes(cfg) if n is not None]
        if gui is not None:
            mts = gui
        elif pending:
            # not sd-scripts' 1600: the front-end ran its own count, which needs the images
            mts = None
            explain.append(f"{pending[0].message}: max_train_steps unknown until the images are counted "
                           "(give --images FOLDER=COUNT)")
        else:
            mts = _int_option(cfg, "max_train_steps", 1600)
        epochs = math.ceil(mts / opt_spe) if opt_spe and mts is not None else None
        if epochs is not None:
            explain.append(f"ceil(max_train_steps {mts} / {opt_spe} steps per epoch) = {epochs} epochs")
    warmup = _warmup_steps(cfg.get("lr_warmup_steps"), mts, explain, "lr_warmup_steps")
    frontend = _frontend_warmup(cfg, mts, image_counts, explain)
    if frontend is not None:
        warmup = frontend
    elif cfg.get("lr_warmup_steps") is None and any(n.code in _WARMUP_NOTES for n in cfg.notes):
        warmup = None
        explain.append("the front-end's warmup is a share of its own step estimate: unknown until the images "
                       "are counted")
    decay = _warmup_steps(cfg.get("lr_decay_steps"), mts, explain, "lr_decay_steps")
    return StepPlan(epochs=epochs, max_train_steps=mts, steps_per_epoch=spe, warmup_steps=warmup,
                    effective_batch_size=bs * ga, gradient_accumulation_steps=ga, train_batch_size=bs,
                    optimizer_steps_per_epoch=opt_spe, decay_steps=decay, explanation=explain)


# ---------------------------------------------------------------------------------------------------------
# adapters

# plan part names <-> lora_compat.arch part names
ARCH_PART = {"unet": "unet", "text_encoder": "te1", "text_encoder_2": "te2"}


def module_rows(arch: str, part: str) -> list[Any]:
    """Every module of ``part`` that sd-scripts' networks.lora may wrap (pinned tables of lora_compat.arch)."""
    from lora_compat.arch import kohya_modules

    return [m for m in kohya_modules(arch, "locon") if m.part == ARCH_PART[part]]


def module_path(info: Any) -> str:
    """The PEFT target path of a module: text-encoder paths in their transformers-5 form.

    transformers 5 dropped ``text_model.`` from ``CLIPTextModel`` paths; PEFT also matches a target as a
    ``.``-suffix, so the short path selects exactly the same single module under transformers 4.
    """
    return info.te_path(5)


def _part_lrs(cfg: CanonicalConfig) -> tuple[float | None, float | None]:
    """(unet lr, text-encoder lr) as networks.lora resolves them (reference §4.10)."""
    base = _number(cfg.effective("learning_rate"))
    unet = _number(cfg.get("unet_lr"))
    te = cfg.get("text_encoder_lr")
    if isinstance(te, (list, tuple)):
        te = te[0] if te else None  # only the first value is used; SDXL's two encoders share it
    te = _number(te)
    return (base if unet is None else unet), (base if te is None else te)


def make_plan(cfg: CanonicalConfig, image_counts: dict[str, int] | None = None) -> Plan:
    """Resolve ``cfg`` into a :class:`Plan`.

    ``image_counts`` maps a subset ``image_dir`` to its number of images; folders not listed are counted on
    disk when they exist. Without counts, epoch-based lengths stay unknown (None) in the step plan.
    """
    arch = cfg.arch()
    unsupported: list[Unsupported] = []
    notes: list[str] = []
    engine: dict[str, Any] = {}
    module = str(cfg.effective("network_module") or "networks.lora")
    net_args = parse_network_args(cfg.get("network_args"))
    kind = network_kind(module, net_args)
    if kind is None:
        unsupported.append(Unsupported("network_module", f"{module!r}"
                                       + (f" with algo={net_args.get('algo')!r}" if "algo" in net_args else "")
                                       + " has no PEFT equivalent in lora-compat (lora, locon, loha, lokr only)"))
        kind = "lora"
    _check_numeric_args(net_args, kind, unsupported)
    try:
        lr_weights = block_lr_weights(net_args, arch == "sdxl")
    except ValueError as exc:
        unsupported.append(Unsupported("network_args", f"block LR weights: {exc} (sd-scripts fails as well)"))
        lr_weights = None
    steps = plan_steps(cfg, image_counts)
    unet_lr, te_lr = _part_lrs(cfg)
    train_unet = not cfg.effective("network_train_text_encoder_only")
    train_te = not cfg.effective("network_train_unet_only")
    adapters = _plan_adapters(cfg, arch, kind, net_args, lr_weights, unet_lr if train_unet else None,
                              te_lr if train_te else None, train_unet, train_te, unsupported, notes)
    groups = _plan_param_groups(cfg, adapters, net_args, lr_weights, unet_lr, te_lr, engine, unsupported)
    _plan_engine_options(cfg, net_args, engine, unsupported, kind)
    _check_schedule(cfg, steps, unsupported)
    if module == "lycoris.kohya":
        notes.append("LyCORIS chooses its modules by preset (" + net_args.get("preset", "full") + "); this plan "
                     "wraps the module set of sd-scripts' networks.lora (plus convolutions when conv_dim is set)")
    return Plan(arch=arch, base_model=cfg.get("pretrained_model_name_or_path"),
                v_parameterization=bool(cfg.effective("v_parameterization")), adapters=adapters, steps=steps,
                param_groups=groups, engine_options=engine, unsupported=unsupported, canonical=cfg,
                network_module=module, notes=notes)


# ---------------------------------------------------------------------------------------------------------
# block-wise dims and LR weights (sd-scripts networks/lora.py, reference §6.6)

SD_BLOCKS, SD_MID_BLOCKS = 12, 1
SDXL_BLOCKS, SDXL_MID_BLOCKS = 9, 3
_RE_UPDOWN = re.compile(r"(up|down)_blocks_(\d+)_(resnets|upsamplers|downsamplers|attentions)_(\d+)_")


def block_index(kohya_name: str, is_sdxl: bool) -> int:
    """The block index of a kohya UNet module name (positions of block_dims / block LR weights)."""
    if not is_sdxl:
        m = _RE_UPDOWN.search(kohya_name)
        if m:
            i, kind, j = int(m.group(2)), m.group(3), int(m.group(4))
            idx = 3 * i + 2 if kind in ("upsamplers", "downsamplers") else 3 * i + j
            return 1 + idx if m.group(1) == "down" else SD_BLOCKS + 1 + idx
        if "mid_block_" in kohya_name:
            return SD_BLOCKS
        return -1
    if not kohya_name.startswith("lora_unet_"):
        return -1
    name = kohya_name[len("lora_unet_"):]
    if name.startswith(("time_embed_", "label_emb_")):
        return 0
    for prefix, base in (("input_blocks_", 1), ("middle_block_", 10), ("output_blocks_", 13)):
        if name.startswith(prefix):
            return base + int(name.split("_")[2])
    return 22 if name.startswith("out_") else -1


def _lr_weight_preset(value: str, n: int) -> list[float] | None:
    name, _, base = value.partition("+")
    b = float(base) if base else 0.0
    steps = [i / (n - 1) for i in range(n)]
    if name == "cosine":
        return [math.sin(math.pi * s / 2) + b for s in reversed(steps)]
    if name == "sine":
        return [math.sin(math.pi * s / 2) + b for s in steps]
    if name == "linear":
        return [s + b for s in steps]
    if name == "reverse_linear":
        return [s + b for s in reversed(steps)]
    if name == "zeros":
        return [0.0 + b] * n
    return None  # sd-scripts logs an error and treats the weight as not given


def _float_list(value: str) -> list[float]:
    return [float(x) if x.strip() else 0.0 for x in value.split(",")]


def block_lr_weights(net_args: dict[str, str], is_sdxl: bool) -> list[float] | None:
    """Per-block UNet LR weights from down/mid/up_lr_weight (None when none is given)."""
    n, n_mid = (SDXL_BLOCKS, SDXL_MID_BLOCKS) if is_sdxl else (SD_BLOCKS, SD_MID_BLOCKS)
    raw = {k: net_args.get(k) for k in ("down_lr_weight", "mid_lr_weight", "up_lr_weight")}
    raw = {k: v for k, v in raw.items() if v not in (None, "")}
    if not raw:
        return None
    thr = network_arg_float(net_args, "block_lr_zero_threshold") or 0.0

    def updown(v: str | None) -> list[float] | None:
        if v is None:
            return None
        lst = _float_list(v) if "," in v else _lr_weight_preset(v, n)
        if lst is None:
            return None
        return (lst + [1.0] * n)[:n]

    down = updown(raw.get("down_lr_weight"))
    up = updown(raw.get("up_lr_weight"))
    mid = _float_list(raw["mid_lr_weight"]) if "mid_lr_weight" in raw else None
    if mid is not None:
        mid = (mid + [1.0] * n_mid)[:n_mid]
    if down is None and up is None and mid is None:
        return None

    def zeroed(lst: list[float] | None, size: int) -> list[float]:
        return [1.0] * size if lst is None else [w if w > thr else 0.0 for w in lst]

    weights = zeroed(down, n) + zeroed(mid, n_mid) + zeroed(up, n)
    return [1.0] + weights + [1.0] if is_sdxl else weights


def _block_list(net_args: dict[str, str], key: str, size: int, cast: Any) -> list[Any] | None:
    raw = net_args.get(key)
    if raw in (None, ""):
        return None
    values = [cast(float(x)) for x in raw.split(",")]
    if len(values) != size:
        raise ValueError(f"{key} must have {size} values, got {len(values)}")
    return values


# ---------------------------------------------------------------------------------------------------------
# adapters, parameter groups, engine options

def _dim_alpha(cfg: CanonicalConfig) -> tuple[int, float]:
    dim = _number(cfg.effective("network_dim"))
    alpha = _number(cfg.effective("network_alpha"))
    return (4 if not dim else int(dim)), (1 if alpha is None else alpha)


def _plan_adapters(cfg: CanonicalConfig, arch: str, kind: str, net_args: dict[str, str],
                   lr_weights: list[float] | None, unet_lr: float | None, te_lr: float | None, train_unet: bool, train_te: bool,
                   unsupported: list[Unsupported], notes: list[str]) -> list[AdapterPlan]:
    is_sdxl = arch == "sdxl"
    dim, alpha = _dim_alpha(cfg)
    conv_dim = network_arg_int(net_args, "conv_dim")
    conv_alpha = network_arg_float(net_args, "conv_alpha") if conv_dim is not None else None
    if conv_dim is not None and conv_alpha is None:
        conv_alpha = 1.0
    n_blocks = 1 + 2 * SDXL_BLOCKS + SDXL_MID_BLOCKS + 1 if is_sdxl else 2 * SD_BLOCKS + SD_MID_BLOCKS
    try:
        block_dims = _block_list(net_args, "block_dims", n_blocks, int)
        block_alphas = _block_list(net_args, "block_alphas", n_blocks, float)
        conv_block_dims = _block_list(net_args, "conv_block_dims", n_blocks, int)
        conv_block_alphas = _block_list(net_args, "conv_block_alphas", n_blocks, float)
    except ValueError as exc:
        unsupported.append(Unsupported("network_args", f"{exc} (sd-scripts fails with an AssertionError)"))
        block_dims = block_alphas = conv_block_dims = conv_block_alphas = None
    block_mode = block_dims is not None or lr_weights is not None
    if block_mode:
        block_dims = block_dims or [dim] * n_blocks
        block_alphas = block_alphas or [alpha] * n_blocks
        if conv_block_dims is not None:
            conv_block_alphas = conv_block_alphas or [conv_alpha or 1.0] * n_blocks
        elif conv_dim is not None:
            conv_block_dims, conv_block_alphas = [conv_dim] * n_blocks, [conv_alpha] * n_blocks
        if lr_weights is not None:
            block_dims = [0 if w == 0 else d for d, w in zip(block_dims, lr_weights)]
            if conv_block_dims is not None:
                conv_block_dims = [0 if w == 0 else d for d, w in zip(conv_block_dims, lr_weights)]
    with_conv = conv_dim is not None or conv_block_dims is not None
    parts = ["unet", "text_encoder"] + (["text_encoder_2"] if is_sdxl else [])
    adapters: list[AdapterPlan] = []
    for part in parts:
        if part == "unet" and not train_unet:
            continue
        if part != "unet" and not train_te:
            continue
        rows = module_rows(arch, part)
        ranks: dict[str, tuple[int, float]] = {}
        names: dict[str, str] = {}
        for row in rows:
            path = module_path(row)
            if part != "unet":
                ranks[path], names[path] = (dim, alpha), row.kohya_name  # TEs always use network_dim/alpha
                continue
            if row.group in ("resnet", "sampler") and not with_conv:
                continue  # ResnetBlock2D / Down- / Upsample2D are only searched when conv dims are given
            idx = block_index(row.kohya_name, is_sdxl)
            if row.is_conv3x3:
                if block_mode and conv_block_dims is not None:
                    r, a = conv_block_dims[idx], conv_block_alphas[idx]  # type: ignore[index]
                else:
                    r, a = (conv_dim or 0), conv_alpha
            elif block_mode:
                r, a = block_dims[idx], block_alphas[idx]  # type: ignore[index]
            else:
                r, a = dim, alpha  # Linear and 1x1 conv, also those inside ResnetBlock2D
            if not r:
                continue  # dim 0 or None: sd-scripts skips the module
            ranks[path], names[path] = (int(r), a), row.kohya_name
        user_targets = cfg.get("peft.target_modules")
        if user_targets is not None:
            ranks, names = _user_targets(user_targets, arch, part, ranks, names, dim, alpha)
            if not ranks:
                notes.append(f"{part}: no module of peft.target_modules belongs to it; no adapter")
                continue
        adapter = _adapter(part, arch, kind, ranks, names, dim, alpha, unet_lr if part == "unet" else te_lr,
                           net_args)
        _apply_peft_fields(cfg, adapter)
        adapters.append(adapter)
    return adapters


# network_args that networks.lora converts with int() / float(): a bad value stops sd-scripts
_NUMERIC_ARGS = {"conv_dim": int, "conv_alpha": float, "rank_dropout": float, "module_dropout": float,
                 "block_lr_zero_threshold": float, "loraplus_lr_ratio": float, "loraplus_unet_lr_ratio": float,
                 "loraplus_text_encoder_lr_ratio": float}


def _check_numeric_args(net_args: dict[str, str], kind: str, unsupported: list[Unsupported]) -> None:
    for key, cast in _NUMERIC_ARGS.items():
        raw = net_args.get(key)
        if raw in (None, "", "None"):
            continue
        try:
            cast(raw)
        except ValueError:
            unsupported.append(Unsupported("network_args", f"{key}={raw!r} is not {'an int' if cast is int else 'a number'}"
                                           " (sd-scripts' networks.lora fails on it); it is ignored here"))


def _user_targets(targets: Any, arch: str, part: str, ranks: dict[str, tuple[int, float]], names: dict[str, str],
                  dim: int, alpha: float) -> tuple[dict[str, tuple[int, float]], dict[str, str]]:
    """Native ``target_modules``: the listed module paths of this part (or those a PEFT regex fully matches,
    as PEFT does with ``re.fullmatch``) instead of the kohya module set. Resolved here against the pinned
    tables so the plan always holds exact paths."""
    from lora_compat.arch import all_modules, lookup_path

    infos = []
    if isinstance(targets, str):
        try:
            pattern = re.compile(targets)
        except re.error:
            return {}, {}  # the native reader reports the bad regex
        for info in all_modules(arch):
            if info.part == ARCH_PART[part] and (pattern.fullmatch(module_path(info))
                                                 or pattern.fullmatch(info.diffusers_path)):
                infos.append(info)
    elif isinstance(targets, (list, tuple)):
        infos = [i for i in (lookup_path(str(t), ARCH_PART[part], arch) for t in targets) if i is not None]
    out_r: dict[str, tuple[int, float]] = {}
    out_n: dict[str, str] = {}
    for info in infos:
        path = module_path(info)
        out_r[path] = ranks.get(path, (dim, alpha))
        out_n[path] = info.kohya_name
    return out_r, out_n


def _apply_peft_fields(cfg: CanonicalConfig, adapter: AdapterPlan) -> None:
    """PEFT-only fields of a native config (``peft.*`` canonical options) on top of the kohya-derived kwargs."""
    kw = adapter.peft_kwargs
    lora_only = ("lora_dropout", "use_rslora", "use_dora", "init_lora_weights", "loftq_config")
    for f in lora_only:
        v = cfg.get("peft." + f)
        if v is not None and adapter.kind in ("lora", "locon"):
            kw[f] = v
    for f in ("rank_pattern", "alpha_pattern"):
        v = cfg.get("peft." + f)
        if isinstance(v, dict):
            kw[f] = {**kw.get(f, {}), **v}  # the user's patterns win


def _truthy(text: str | None) -> bool:
    return str(text).strip().lower() in ("true", "1", "yes")


def _lycoris_kwargs(kind: str, net_args: dict[str, str]) -> dict[str, Any]:
    """LoHa / LoKr options of LyCORIS ``network_args`` under PEFT's LoHaConfig / LoKrConfig names.

    PEFT's LoHa/LoKr layers come from LyCORIS, so rank/module dropout have the same meaning there.
    """
    kw: dict[str, Any] = {"rank_dropout": network_arg_float(net_args, "rank_dropout") or 0.0,
                          "module_dropout": network_arg_float(net_args, "module_dropout") or 0.0,
                          "use_effective_conv2d": _truthy(net_args.get("use_tucker")) or _truthy(net_args.get("use_cp"))}
    if kind == "lokr":
        kw["decompose_both"] = _truthy(net_args.get("decompose_both"))
        kw["decompose_factor"] = network_arg_int(net_args, "factor") or -1
        kw["rank_dropout_scale"] = _truthy(net_args.get("rank_dropout_scale"))
    return kw


def _adapter(part: str, arch: str, kind: str, ranks: dict[str, tuple[int, float]], names: dict[str, str],
             dim: int, alpha: float, lr: float | None, lycoris_args: dict[str, str] | None = None) -> AdapterPlan:
    """Build PEFT kwargs: the most common (rank, alpha) is the default, the others go to the patterns."""
    targets = sorted(ranks)
    counts: dict[tuple[int, float], int] = {}
    for ra in ranks.values():
        counts[ra] = counts.get(ra, 0) + 1
    r, a = max(counts, key=lambda k: (counts[k], k == (dim, alpha))) if counts else (dim, alpha)
    rank_pattern = {p: ra[0] for p, ra in sorted(ranks.items()) if ra[0] != r}
    alpha_pattern = {p: ra[1] for p, ra in sorted(ranks.items()) if ra[1] != a}
    alpha_key = "lora_alpha" if kind in ("lora", "locon") else "alpha"
    kwargs: dict[str, Any] = {"r": r, alpha_key: a, "target_modules": targets,
                              "rank_pattern": rank_pattern, "alpha_pattern": alpha_pattern}
    if kind in ("lora", "locon"):
        # kohya's dropouts act elsewhere than PEFT's lora_dropout: the engine implements them (engine_options)
        kwargs.update({"lora_dropout": 0.0, "use_rslora": False, "use_dora": False,
                       "init_lora_weights": True, "bias": "none"})
    else:
        kwargs.update(_lycoris_kwargs(kind, lycoris_args or {}))
    return AdapterPlan(part=part, kind=kind, kohya_prefix=KOHYA_PREFIXES[(arch, part)], peft_kwargs=kwargs,
                       kohya_names=dict(sorted(names.items())), lr=lr, peft_config_class=PEFT_CONFIG_CLASS[kind])


def _plan_param_groups(cfg: CanonicalConfig, adapters: list[AdapterPlan], net_args: dict[str, str],
                       weights: list[float] | None, unet_lr: float | None, te_lr: float | None, engine: dict[str, Any],
                       unsupported: list[Unsupported]) -> list[ParamGroupPlan]:
    """Optimizer groups in sd-scripts' order: text encoders (shared), then UNet; lr 0/None groups dropped."""
    groups: list[ParamGroupPlan] = []
    ratio = network_arg_float(net_args, "loraplus_lr_ratio")
    te_ratio = network_arg_float(net_args, "loraplus_text_encoder_lr_ratio") or ratio
    unet_ratio = network_arg_float(net_args, "loraplus_unet_lr_ratio") or ratio
    if any(a.part != "unet" for a in adapters) and te_lr:
        groups.append(ParamGroupPlan("text_encoder", te_lr))
        if te_ratio:
            groups.append(ParamGroupPlan("text_encoder", te_lr * te_ratio, lora_plus=True))
    if any(a.part == "unet" for a in adapters) and unet_lr:
        if weights is None:
            groups.append(ParamGroupPlan("unet", unet_lr))
            if unet_ratio:
                groups.append(ParamGroupPlan("unet", unet_lr * unet_ratio, lora_plus=True))
        else:
            unet = next(a for a in adapters if a.part == "unet")
            is_sdxl = cfg.arch() == "sdxl"
            seen: list[int] = []
            for name in unet.kohya_names.values():
                idx = block_index(name, is_sdxl)
                if idx not in seen:
                    seen.append(idx)
            for idx in sorted(seen):
                lr = unet_lr * weights[idx]
                if lr:
                    groups.append(ParamGroupPlan("unet", lr, block=idx))
                    if unet_ratio:
                        groups.append(ParamGroupPlan("unet", lr * unet_ratio, block=idx, lora_plus=True))
            engine["block_lr_weights"] = weights
    if _optimizer(cfg).relative_step:
        unsupported.append(Unsupported("learning_rate", "Adafactor with relative_step=True (its default) "
                                       "discards every configured learning rate"))
    if ratio or te_ratio or unet_ratio:
        engine["loraplus"] = {"lora_B_params_in_separate_groups": True, "text_encoder_ratio": te_ratio,
                              "unet_ratio": unet_ratio}
    return groups


def _optimizer(cfg: CanonicalConfig) -> EffectiveOptimizer:
    return effective_optimizer(cfg.effective("optimizer_type"), cfg.get("optimizer_args"),
                               use_8bit_adam=cfg.effective("use_8bit_adam"),
                               use_lion_optimizer=cfg.effective("use_lion_optimizer"))


def _check_schedule(cfg: CanonicalConfig, steps: StepPlan, unsupported: list[Unsupported]) -> None:
    """sd-scripts' get_scheduler_fix refuses a warmup with these schedulers (reference §4.11, E20)."""
    sched = cfg.effective("lr_scheduler")
    opt = _optimizer(cfg)
    why = warmup_refusal(sched if isinstance(sched, str) else "", steps.warmup_steps,
                         lr_scheduler_type=cfg.get("lr_scheduler_type"), relative_step=opt.relative_step,
                         schedule_free=bool(opt.spec and opt.spec.schedule_free))
    if why:
        unsupported.append(Unsupported("lr_warmup_steps", f"{steps.warmup_steps} warmup steps with {why}: "
                                       "sd-scripts raises ValueError (use constant_with_warmup, or no warmup)"))


def _plan_engine_options(cfg: CanonicalConfig, net_args: dict[str, str], engine: dict[str, Any],
                         unsupported: list[Unsupported], kind: str = "lora") -> None:
    """kohya behaviours with no PEFT field; the engine implements each itself."""
    nd = _float_option(cfg, "network_dropout")
    if nd:
        engine["network_dropout"] = {"p": float(nd), "why": "kohya drops rank activations after lora_down "
                                     "(inverted dropout); PEFT lora_dropout acts on the input"}
    for key in ("rank_dropout", "module_dropout"):
        v = network_arg_float(net_args, key)
        if v and kind in ("lora", "locon"):  # LoHa/LoKr: PEFT fields of the same meaning (peft_kwargs)
            engine[key] = {"p": v, "why": "no PEFT equivalent (kohya LoRAModule.forward)"}
    swn = _float_option(cfg, "scale_weight_norms")
    if swn:
        engine["scale_weight_norms"] = {"max_norm": float(swn), "why": "max-norm regularization after each "
                                        "micro-batch (kohya apply_max_norm_regularization)"}
    alpha = cfg.effective("network_alpha")
    if isinstance(alpha, int) and not isinstance(alpha, bool):
        engine["alpha_dtype"] = {"value": "int64", "why": "an int network_alpha is saved as int64 .alpha "
                                 "tensors by sd-scripts"}
    if cfg.get("dim_from_weights"):
        unsupported.append(Unsupported("dim_from_weights", "the module set and ranks come from a weights file; "
                                       "plan them with lora-compat inspect on that file"))
    for key in ("network_weights",):
        if cfg.get(key):
            engine[key] = {"value": cfg.get(key), "why": "loaded with strict=False; the file's alpha replaces "
                           "the buffer but not the scale in use (sd-scripts §6.5)"}
