"""The FLUX.1 part of a plan: ``flux_train_network.py``'s model files, flow-matching options, memory options and
``networks.lora_flux`` adapter set, resolved from a canonical config (no torch import).

The module set comes from the one function that holds sd-scripts' rules,
:func:`lora_compat.arch.flux.sd_scripts_flux_network` (tested against every case of golden
``flux_lora_keys.json``), restricted to the base model's block and layer counts (the tiny models have fewer blocks
than FLUX.1's 19 double + 38 single); the optimizer groups come from
:func:`lora_compat.semantics.param_groups.flux_param_groups`. The base model is read as far as it can be without
loading it (a tiny model's name, a diffusers folder's ``config.json`` files, a ``.safetensors`` header) for FLUX.1
dev vs schnell and the block counts: sd-scripts decides the T5 token length (512 dev / 256 schnell) and the
guidance embedder from the checkpoint too.

Adapters are per model part: ``transformer`` (``lora_unet_``), ``clip_l`` (``lora_te1_``), ``t5xxl``
(``lora_te3_``). A fused BFL projection is one kohya module over several diffusers modules: ``img_attn.qkv`` ->
``attn.to_q/to_k/to_v``, ``txt_attn.qkv`` -> ``attn.add_q/k/v_proj``, ``single_blocks.N.linear1`` ->
``attn.to_q/to_k/to_v`` + ``proj_mlp``; in an :class:`~lora_compat.plan.parts.AdapterPlan` those paths map to the
same kohya name in ``kohya_names`` and the engine ties their ``lora_A`` to one shared ``lora_down``
(:mod:`lora_compat.train.flux.lora`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from lora_compat.arch import flux as arch_flux
from lora_compat.config.model import CanonicalConfig
from lora_compat.plan.parts import AdapterPlan, ParamGroupPlan, Unsupported
from lora_compat.semantics.args import pattern_values
from lora_compat.semantics.flux_options import FluxOptions

#: The families ``flux_train_network.py`` trains.
FLUX_FAMILIES = ("flux1", "chroma")
FLUX_NETWORK_MODULE = "networks.lora_flux"
#: plan part -> kohya prefix (sd-scripts lora_flux: CLIP-L is te1, T5-XXL te3 "for ComfyUI")
KOHYA_PREFIXES = {"clip_l": "lora_te1", "t5xxl": "lora_te3", "transformer": "lora_unet"}
#: arch.flux part -> plan part
ARCH_TO_PLAN = {"te1": "clip_l", "te3": "t5xxl", "transformer": "transformer"}
PART_ORDER = ("clip_l", "t5xxl", "transformer")   # sd-scripts' state-dict (and optimizer group) order
#: The FLUX.1 real topology (the arch tables' block and layer counts).
REAL_BLOCKS = (arch_flux.FLUX_WIDTHS.double, arch_flux.FLUX_WIDTHS.single)
CLIP_L_LAYERS, T5_XXL_LAYERS = arch_flux.CLIP_L.layers, arch_flux.T5_XXL.layers

#: train_network.py options flux_train_network.py reads but never uses in its FLUX loss path (sd-scripts
#: FluxNetworkTrainer.get_noise_pred_and_target / post_process_loss); ``max_token_length`` it warns about.
IGNORED_BY_FLUX: dict[str, str] = dict.fromkeys(
    ("noise_offset", "noise_offset_random_strength", "adaptive_noise_scale", "multires_noise_iterations",
     "multires_noise_discount", "min_snr_gamma", "scale_v_pred_loss_like_noise_pred", "v_pred_like_loss",
     "debiased_estimation_loss", "zero_terminal_snr", "v_parameterization", "min_timestep", "max_timestep",
     "clip_skip"),
    "has no effect on FLUX.1 training (flux_train_network.py's flow-matching loss does not read it)")
IGNORED_BY_FLUX["controlnet_model_name_or_path"] = ("a FLUX ControlNet (flux_train_control_net.py); the LoRA engine "
                                                    "does not load it")
IGNORED_BY_FLUX["text_encoder_batch_size"] = ("the batch size of text-encoder output caching; no effect on the "
                                              "result (captions are cached one batch of the dataset at a time)")
IGNORED_BY_FLUX["full_fp16"] = ("the FLUX.1 network trains in float32 under fp16 autocast here (sd-scripts casts it "
                                "to fp16 with a patched grad scaler; full_bf16 is supported)")
IGNORED_BY_FLUX["max_token_length"] = ("not used by FLUX.1 (sd-scripts warns); the T5 length is "
                                       "t5xxl_max_token_length and CLIP-L always takes 77 tokens")
#: ENGINE_IGNORED entries the FLUX family does run.
FLUX_RUNS = frozenset({"fp8_base", "fp8_base_unet", "cpu_offload_checkpointing", "cache_text_encoder_outputs",
                       "cache_text_encoder_outputs_to_disk"})


@dataclass
class FluxTopology:
    """What the base model says without loading it: variant (``flux1-dev`` / ``flux1-schnell`` / ``chroma``,
    None when it cannot be read here), block and text-encoder layer counts, and where that came from."""

    variant: str | None
    double_blocks: int = REAL_BLOCKS[0]
    single_blocks: int = REAL_BLOCKS[1]
    clip_l_layers: int = CLIP_L_LAYERS
    t5_layers: int = T5_XXL_LAYERS
    source: str = "not read (FLUX.1's 19 double + 38 single blocks assumed)"


@dataclass
class FluxPlan:
    """The FLUX.1 settings the engine runs (plain data; ``Plan.flux``).

    ``options`` are :class:`lora_compat.semantics.flux_options.FluxOptions`' fields (noise, timesteps, guidance,
    prediction type, loss); ``t5xxl_max_token_length`` is resolved (None while the variant is unknown);
    ``network_*`` are ``lora_flux.create_network``'s inputs as sd-scripts holds them; ``modules`` counts the
    planned kohya modules per prefix.
    """

    variant: str | None
    topology_from: str
    double_blocks: int
    single_blocks: int
    clip_l_layers: int
    t5_layers: int
    ae: str | None = None
    clip_l: str | None = None
    t5xxl: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    t5xxl_max_token_length: int | None = None
    fp8_base: bool = False
    fp8_base_unet: bool = False
    blocks_to_swap: int | None = None
    cpu_offload_checkpointing: bool = False
    cache_text_encoder_outputs: bool = False
    cache_text_encoder_outputs_to_disk: bool = False
    network_dim: int | None = None
    network_alpha: float | int | None = 1
    network_args: dict[str, str] = field(default_factory=dict)
    network_dropout: float | None = None
    network_train_unet_only: bool = False
    network_train_text_encoder_only: bool = False
    split_qkv: bool = False
    train_t5xxl: bool = False
    text_encoder_lr: Any = None
    unet_lr: float | None = None
    learning_rate: float | None = None
    modules: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FluxNetworkPlan:
    """What :func:`plan_flux` returns to ``make_plan``."""

    flux: FluxPlan
    adapters: list[AdapterPlan]
    param_groups: list[ParamGroupPlan]


# ---------------------------------------------------------------------------------------------------------
# the base model, read without loading it

def _variant_of_keys(keys: Any) -> str:
    markers = ("guidance_in.", "time_text_embed.guidance_embedder.")
    dev = any(k.startswith(markers) or any("." + m in k for m in markers) for k in keys)
    return "flux1-dev" if dev else "flux1-schnell"


def _count(keys: Any, marker: str) -> int:
    ids = set()
    for k in keys:
        head, sep, rest = k.partition(marker)
        if sep and (not head or head.endswith(".")):
            first = rest.split(".", 1)[0]
            if first.isdigit():
                ids.add(int(first))
    return max(ids) + 1 if ids else 0


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def flux_topology(base_model: str | None, family: str) -> FluxTopology:
    """Variant and block counts of ``base_model`` (``tiny:flux1-dev``/``tiny:flux1-schnell``, a diffusers folder or
    a DiT ``.safetensors`` file), read from names, configs or the safetensors header only."""
    if family == "chroma":
        return FluxTopology("chroma", source="Chroma (model_type chroma)")
    spec = str(base_model or "")
    if spec.startswith("tiny:"):
        variant = spec.removeprefix("tiny:")
        if variant.removeprefix("flux1-") not in arch_flux.TINY_VARIANTS:
            return FluxTopology(None, source=f"{spec!r} is not a tiny FLUX.1 model")
        return FluxTopology(variant, arch_flux.TINY_DOUBLE_BLOCKS, arch_flux.TINY_SINGLE_BLOCKS, CLIP_L_LAYERS,
                            T5_XXL_LAYERS, f"tiny model {spec}")
    if spec and os.path.isdir(spec):
        cfg = _read_json(os.path.join(spec, "transformer", "config.json"))
        if cfg is None:
            return FluxTopology(None, source=f"{spec}: no transformer/config.json")
        clip = _read_json(os.path.join(spec, "text_encoder", "config.json")) or {}
        t5 = _read_json(os.path.join(spec, "text_encoder_2", "config.json")) or {}
        return FluxTopology("flux1-dev" if cfg.get("guidance_embeds") else "flux1-schnell",
                            int(cfg.get("num_layers", REAL_BLOCKS[0])),
                            int(cfg.get("num_single_layers", REAL_BLOCKS[1])),
                            int(clip.get("num_hidden_layers", CLIP_L_LAYERS)),
                            int(t5.get("num_layers", T5_XXL_LAYERS)), f"{spec}: transformer/config.json")
    if spec and os.path.isfile(spec):
        from lora_compat.arch.families import read_safetensors_keys

        found = read_safetensors_keys(spec)
        if found is None:
            return FluxTopology(None, source=f"{spec}: not a readable .safetensors file")
        keys = list(found[0])
        double = _count(keys, "double_blocks.") or _count(keys, "transformer_blocks.")
        single = _count(keys, "single_blocks.") or _count(keys, "single_transformer_blocks.")
        if not double and not single:
            return FluxTopology(None, source=f"{os.path.basename(spec)}: no FLUX.1 blocks in its header")
        return FluxTopology(_variant_of_keys(keys), double, single, source=f"{os.path.basename(spec)} (header)")
    return FluxTopology(None)


# ---------------------------------------------------------------------------------------------------------
# the plan

def _number(value: Any) -> Any:
    from lora_compat.plan.steps import _number as number

    return number(value)


def flux_options(cfg: CanonicalConfig) -> dict[str, Any]:
    """The :class:`~lora_compat.semantics.flux_options.FluxOptions` fields of ``cfg`` (sd-scripts' defaults for what
    is unset), unvalidated."""
    return asdict(FluxOptions.from_options(cfg.effective))


def plan_flux(cfg: CanonicalConfig, family: str, module: str, net_args: dict[str, str], base_model: str | None,
              blueprints: list[Any], mixed_precision: str, unsupported: list[Unsupported],
              notes: list[str]) -> FluxNetworkPlan:
    """The FLUX part of ``make_plan``: model files, options, memory options, adapters and optimizer groups.

    What sd-scripts refuses (its asserts and errors in ``flux_train_network.py`` / ``lora_flux``) is added to
    ``unsupported`` as refused, with sd-scripts' own message where it has one.
    """
    from lora_compat.semantics.param_groups import flux_param_groups

    get = cfg.effective
    topo = flux_topology(base_model, family)
    variant = topo.variant or ("chroma" if family == "chroma" else "flux1-dev")
    opts = flux_options(cfg)
    try:
        FluxOptions(**opts).validate()
    except (TypeError, ValueError) as exc:
        unsupported.append(Unsupported("flux options", str(exc), refused=True))
    fp8_unet = bool(get("fp8_base_unet"))
    fp8 = bool(get("fp8_base")) or fp8_unet   # flux_train_network.py: fp8_base_unet turns fp8_base on
    cache_te_disk = bool(get("cache_text_encoder_outputs_to_disk"))
    cache_te = bool(get("cache_text_encoder_outputs")) or cache_te_disk
    swap = _number(get("blocks_to_swap"))
    given = None if get("blocks_to_swap") is None else int(swap or 0)
    swap = arch_flux.split_mode_blocks_to_swap(given, bool(get("split_mode"))) or None
    if get("split_mode") and given is None:
        notes.append(f"split_mode is deprecated: sd-scripts sets blocks_to_swap {swap} instead")
    offload = bool(get("cpu_offload_checkpointing"))
    dim = _number(cfg.get("network_dim"))
    alpha = cfg.get("network_alpha")
    alpha = 1 if alpha is None else alpha   # argparse's int default: int64 .alpha tensors
    unet_only = bool(get("network_train_unet_only"))
    te_only = bool(get("network_train_text_encoder_only"))
    dropout = _number(get("network_dropout"))
    lr = _number(get("learning_rate"))
    unet_lr = _number(cfg.get("unet_lr"))
    te_lr = cfg.get("text_encoder_lr")
    t5_len = opts.get("t5xxl_max_token_length")
    if t5_len is None and topo.variant is not None:
        t5_len = 256 if topo.variant == "flux1-schnell" else 512
    flux = FluxPlan(variant=topo.variant, topology_from=topo.source, double_blocks=topo.double_blocks,
                    single_blocks=topo.single_blocks, clip_l_layers=topo.clip_l_layers, t5_layers=topo.t5_layers,
                    ae=cfg.get("ae"), clip_l=cfg.get("clip_l"), t5xxl=cfg.get("t5xxl"), options=opts,
                    t5xxl_max_token_length=None if t5_len is None else int(t5_len), fp8_base=fp8,
                    fp8_base_unet=fp8_unet, blocks_to_swap=swap, cpu_offload_checkpointing=offload,
                    cache_text_encoder_outputs=cache_te, cache_text_encoder_outputs_to_disk=cache_te_disk,
                    network_dim=None if dim is None else int(dim), network_alpha=alpha,
                    network_args=dict(net_args), network_dropout=dropout, network_train_unet_only=unet_only,
                    network_train_text_encoder_only=te_only, text_encoder_lr=te_lr, unet_lr=unet_lr,
                    learning_rate=lr)
    _check(cfg, flux, module, topo, base_model, blueprints, mixed_precision, unsupported)

    spec = arch_flux.FluxNetworkSpec(variant=variant, network_dim=flux.network_dim, network_alpha=alpha,
                                     network_args=dict(net_args), network_train_unet_only=unet_only,
                                     network_train_text_encoder_only=te_only, cache_text_encoder_outputs=cache_te,
                                     apply_t5_attn_mask=bool(opts.get("apply_t5_attn_mask")))
    try:
        network = arch_flux.sd_scripts_flux_network(spec)
    except arch_flux.FluxNetworkError as exc:
        unsupported.append(Unsupported("network_args", f"sd-scripts stops with {exc.sd_scripts_error}", refused=True))
        return FluxNetworkPlan(flux, [], [])
    flux.split_qkv, flux.train_t5xxl = network.split_qkv, network.train_t5xxl
    if network.crash_at_48d368f:
        notes.append(f"split_qkv=True: sd-scripts 48d368f (v0.10.1) crashes creating this network "
                     f"({network.crash_at_48d368f}, issue #2220); lora-compat trains it as fixed by PR #2396")
    modules = [m for m in network.modules if _fits(m.module, topo)]
    flux.modules = {prefix: sum(1 for m in modules if KOHYA_PREFIXES[ARCH_TO_PLAN[m.module.part]] == prefix)
                    for prefix in ("lora_te1", "lora_te3", "lora_unet")}
    reg_lrs = _reg_lrs(net_args.get("network_reg_lrs"))
    groups = flux_param_groups([(ARCH_TO_PLAN[m.module.part], m.module.kohya_name) for m in modules], te_lr,
                               unet_lr, lr, reg_lrs=reg_lrs,
                               loraplus_lr_ratio=_ratio(net_args, "loraplus_lr_ratio", unsupported),
                               loraplus_unet_lr_ratio=_ratio(net_args, "loraplus_unet_lr_ratio", unsupported),
                               loraplus_text_encoder_lr_ratio=_ratio(net_args, "loraplus_text_encoder_lr_ratio",
                                                                     unsupported))
    plain_lr = {g.part: g.lr for g in groups if g.pattern is None and not g.lora_plus}
    adapters = []
    for part in PART_ORDER:
        mods = [m for m in modules if ARCH_TO_PLAN[m.module.part] == part]
        if mods:
            adapters.append(_adapter(part, mods, plain_lr.get(part)))
    param_groups = [ParamGroupPlan(g.part, g.lr, lora_plus=g.lora_plus, pattern=g.pattern) for g in groups]
    return FluxNetworkPlan(flux, adapters, param_groups)


def _fits(m: Any, topo: FluxTopology) -> bool:
    """A module of the real topology that the base model has (tiny models have fewer blocks and layers)."""
    if m.part == "te1":
        return m.block is None or m.block < topo.clip_l_layers
    if m.part == "te3":
        return m.block is None or m.block < topo.t5_layers
    if m.group == "double":
        return m.block < topo.double_blocks
    if m.group == "single":
        return m.block < topo.single_blocks
    return True


def _reg_lrs(text: str | None) -> dict[str, float] | None:
    if text is None:
        return None
    return pattern_values(text, as_int=False)


def _ratio(net_args: dict[str, str], key: str, unsupported: list[Unsupported]) -> float | None:
    raw = net_args.get(key)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        unsupported.append(Unsupported("network_args", f"{key}={raw!r} is not a number (sd-scripts' lora_flux fails "
                                       "on it)", refused=True))
        return None


def _adapter(part: str, modules: list[Any], lr: float | None) -> AdapterPlan:
    """PEFT kwargs of one part: the most common (rank, alpha) as defaults, the others as exact-path patterns;
    every diffusers path of a fused module maps to its one kohya name."""
    ranks: dict[str, tuple[int, float | int]] = {}
    names: dict[str, str] = {}
    for m in modules:
        for p in m.module.parts:
            path = p.te_path(5) if p.part == "te1" else p.diffusers_path
            ranks[path] = (m.rank, m.alpha)
            names[path] = m.module.kohya_name
    counts: dict[tuple[int, float | int], int] = {}
    for ra in ranks.values():
        counts[ra] = counts.get(ra, 0) + 1
    r, a = max(counts, key=lambda k: counts[k])
    kwargs: dict[str, Any] = {
        "r": r, "lora_alpha": a, "target_modules": list(ranks),
        "rank_pattern": {p: ra[0] for p, ra in ranks.items() if ra[0] != r},
        "alpha_pattern": {p: ra[1] for p, ra in ranks.items() if ra[1] != a},
        "lora_dropout": 0.0, "use_rslora": False, "use_dora": False, "init_lora_weights": True, "bias": "none"}
    return AdapterPlan(part=part, kind="lora", kohya_prefix=KOHYA_PREFIXES[part], peft_kwargs=kwargs,
                       kohya_names=names, lr=lr, peft_config_class="LoraConfig")


def _check(cfg: CanonicalConfig, flux: FluxPlan, module: str, topo: FluxTopology, base_model: str | None,
           blueprints: list[Any], mixed_precision: str, unsupported: list[Unsupported]) -> None:
    """sd-scripts' asserts for these options (flux_train_network.py ``assert_extra_args``, train_network.py)."""
    def refuse(option: str, why: str) -> None:
        unsupported.append(Unsupported(option, why, refused=True))

    if module != FLUX_NETWORK_MODULE:
        refuse("network_module", f"{module!r} on FLUX.1: lora-compat trains FLUX.1 with sd-scripts' "
               f"{FLUX_NETWORK_MODULE} only")
    if flux.blocks_to_swap and flux.cpu_offload_checkpointing:
        refuse("blocks_to_swap", "blocks_to_swap is not supported with cpu_offload_checkpointing (sd-scripts "
               "asserts this)")
    if flux.blocks_to_swap:
        double = flux.blocks_to_swap // 2
        single = (flux.blocks_to_swap - double) * 2
        if double > topo.double_blocks - 2 or single > topo.single_blocks - 2:
            refuse("blocks_to_swap", f"{flux.blocks_to_swap} would swap {double} double and {single} single blocks; "
                   f"this model has {topo.double_blocks} and {topo.single_blocks} and keeps at least 2 of each")
    if flux.fp8_base and mixed_precision not in ("fp16", "bf16"):
        refuse("fp8_base", "fp8_base requires mixed_precision fp16 or bf16 (sd-scripts asserts this)")
    if flux.cache_text_encoder_outputs:
        random_captions = ("caption_dropout_rate", "shuffle_caption", "token_warmup_step", "caption_tag_dropout_rate")
        if any(sub.get(k) for bp in blueprints for sub in bp.subsets for k in random_captions):
            refuse("cache_text_encoder_outputs", "cannot be used with caption_dropout_rate, shuffle_caption, "
                   "token_warmup_step or caption_tag_dropout_rate (sd-scripts asserts this)")
    if topo.variant == "chroma" or cfg.effective("model_type") == "chroma":
        refuse("model_type", "Chroma training is not supported yet (its DiT is not loaded by lora-compat)")
    base = str(base_model or "")
    if base and os.path.isfile(base):
        missing = [k for k in ("ae", "clip_l", "t5xxl") if not getattr(flux, k)]
        if missing:
            refuse(missing[0], f"a single-file FLUX.1 DiT needs the other parts as files too; set "
                   f"{', '.join(missing)}")
