"""The network: adapters per model part, block-wise dims / LR weights, optimizer parameter groups, and the kohya
behaviours the engine implements itself (sd-scripts ``networks/lora.py``, reference §4.10, §6).

For the UNet and each text encoder the PEFT config kwargs hold a target set equal to the module set
sd-scripts' ``networks.lora`` would wrap (pinned tables of :mod:`lora_compat.arch`).
"""

from __future__ import annotations

import math
import re
from typing import Any

from lora_compat.arch import component_part, kohya_prefix, model_parts
from lora_compat.config.model import CanonicalConfig
from lora_compat.plan.parts import PEFT_CONFIG_CLASS, AdapterPlan, ParamGroupPlan, Unsupported
from lora_compat.plan.steps import _number
from lora_compat.semantics.args import arg_float as network_arg_float
from lora_compat.semantics.args import arg_int as network_arg_int


def _float_option(cfg: CanonicalConfig, name: str) -> float | None:
    v = _number(cfg.get(name))
    return None if v is None else float(v)


def module_rows(arch: str, part: str) -> list[Any]:
    """Every module of plan part ``part`` (a diffusers component name) that sd-scripts' networks.lora may wrap
    (pinned tables of :mod:`lora_compat.arch`)."""
    from lora_compat.arch import kohya_modules

    return [m for m in kohya_modules(arch, "locon") if m.part == component_part(part)]


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
    mid_raw = raw.get("mid_lr_weight")
    mid = _float_list(mid_raw) if mid_raw is not None else None
    if mid is not None:
        mid = (mid + [1.0] * n_mid)[:n_mid]
    if down is None and up is None and mid is None:
        return None

    def zeroed(lst: list[float] | None, size: int) -> list[float]:
        return [1.0] * size if lst is None else [w if w > thr else 0.0 for w in lst]

    weights = zeroed(down, n) + zeroed(mid, n_mid) + zeroed(up, n)
    return [1.0, *weights, 1.0] if is_sdxl else weights


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
                   lr_weights: list[float] | None, unet_lr: float | None, te_lr: float | None, train_unet: bool,
                   train_te: bool,
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
            block_dims = [0 if w == 0 else d for d, w in zip(block_dims, lr_weights, strict=False)]
            if conv_block_dims is not None:
                conv_block_dims = [0 if w == 0 else d for d, w in zip(conv_block_dims, lr_weights, strict=False)]
    with_conv = conv_dim is not None or conv_block_dims is not None
    parts = [p.component for p in model_parts(arch)]
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
            unsupported.append(Unsupported("network_args",
                                           f"{key}={raw!r} is not {'an int' if cast is int else 'a number'}"
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
            if info.part == component_part(part) and (pattern.fullmatch(module_path(info))
                                                 or pattern.fullmatch(info.diffusers_path)):
                infos.append(info)
    elif isinstance(targets, (list, tuple)):
        infos = [i for i in (lookup_path(str(t), component_part(part), arch) for t in targets) if i is not None]
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
                          "use_effective_conv2d": (_truthy(net_args.get("use_tucker"))
                                                   or _truthy(net_args.get("use_cp")))}
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
    return AdapterPlan(part=part, kind=kind, kohya_prefix=kohya_prefix(component_part(part), arch), peft_kwargs=kwargs,
                       kohya_names=dict(sorted(names.items())), lr=lr, peft_config_class=PEFT_CONFIG_CLASS[kind])


def _plan_param_groups(arch: str, adapters: list[AdapterPlan], net_args: dict[str, str],
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
            is_sdxl = arch == "sdxl"
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
    if ratio or te_ratio or unet_ratio:
        engine["loraplus"] = {"lora_B_params_in_separate_groups": True, "text_encoder_ratio": te_ratio,
                              "unet_ratio": unet_ratio}
    return groups


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
