"""LoRA / LoCon on the UNet and text encoders through PEFT, with sd-scripts' module set and dropouts.

The module set, ranks and alphas come from the plan (:func:`lora_compat.plan.make_plan`), whose targets equal
what sd-scripts' ``networks/lora.py`` wraps; when a plan adapter carries no targets the set is computed from
the pinned tables in :mod:`lora_compat.arch` with the same rules.  Every target keeps its kohya name so the
trained weights can be written in kohya layout without a second lookup (see :mod:`lora_compat.train.saving`).

PEFT's ``lora_dropout`` acts on the *input* of ``lora_A``; kohya's ``network_dropout``, ``rank_dropout`` and
``module_dropout`` act elsewhere (reference §6.4), so they are installed as forward hooks on PEFT's
``lora_A`` / ``lora_B`` sub-modules instead.

LoHa / LoKr (LyCORIS ``algo=loha|lokr``) go through PEFT's ``LoHaConfig`` / ``LoKrConfig``, whose layers are
ports of LyCORIS' modules (same factor shapes; rank / module dropout with LyCORIS' meaning).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lora_compat.errors import UserError

ADAPTER = "default"
LYCORIS_KINDS = ("loha", "lokr")
# The trainable tensors of each PEFT layer kind, as attribute names of ParameterDicts / ModuleDicts.
LYCORIS_PARAMS = {
    "loha": ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2"),
    "lokr": ("lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2"),
}


@dataclass(frozen=True)
class TargetModule:
    """One wrapped module: kohya name, path inside its model, rank and alpha (alpha keeps its Python type)."""

    kohya_name: str
    path: str
    rank: int
    alpha: float | int


@dataclass
class PartNetwork:
    """The LoRA modules injected into one model part (``unet``, ``text_encoder``, ``text_encoder_2``)."""

    part: str
    model: Any
    targets: list[TargetModule]
    lr: float | None = None
    kind: str = "lora"             # "lora" | "locon" | "loha" | "lokr" (the plan's AdapterPlan.kind)


def _module_paths(model: Any) -> set[str]:
    return {name for name, _ in model.named_modules()}


def _locate(info: Any, paths: set[str]) -> str | None:
    """The path of an arch-table module inside ``model`` (transformers 4 and 5 spell TE paths differently)."""
    for cand in (info.te_path(5), info.diffusers_path, info.diffusers_path.removeprefix("text_model.")):
        if cand in paths:
            return cand
    return None


def targets_from_plan(adapter: Any, arch: str, model: Any) -> list[TargetModule]:
    """Targets of a plan :class:`~lora_compat.plan.AdapterPlan`, resolved against the real ``model``."""
    from lora_compat import arch as arch_tables

    kw = adapter.peft_kwargs
    r, a = kw.get("r"), kw.get("lora_alpha", kw.get("alpha"))
    rank_pattern, alpha_pattern = kw.get("rank_pattern") or {}, kw.get("alpha_pattern") or {}
    paths = _module_paths(model)
    part = arch_tables.component_part(adapter.part)
    out = []
    for path in kw.get("target_modules") or []:
        kohya = adapter.kohya_names.get(path)
        info = arch_tables.lookup_path(path, part, arch)
        if kohya is None and info is not None:
            kohya = info.kohya_name
        real = path if path in paths else (_locate(info, paths) if info is not None else None)
        if real is None or kohya is None:
            raise ValueError(f"{adapter.part}: planned target {path!r} does not exist in the {arch} model")
        out.append(TargetModule(kohya, real, int(rank_pattern.get(path, r)), alpha_pattern.get(path, a)))
    return out


def inject_lora(model: Any, targets: list[TargetModule]) -> None:
    """Inject PEFT LoRA layers for ``targets`` into ``model`` (in place); base weights are frozen."""
    from peft import LoraConfig, inject_adapter_in_model

    if not targets:
        return
    counts: dict[tuple[int, float], int] = {}
    for t in targets:
        counts[(t.rank, float(t.alpha))] = counts.get((t.rank, float(t.alpha)), 0) + 1
    r, a = max(counts, key=counts.__getitem__)
    # PEFT matches pattern keys as regex suffixes; anchored full paths select exactly one module.
    rank_pattern = {f"^{_re(t.path)}$": t.rank for t in targets if t.rank != r}
    alpha_pattern = {f"^{_re(t.path)}$": float(t.alpha) for t in targets if float(t.alpha) != a}
    config = LoraConfig(r=r, lora_alpha=a, target_modules=[t.path for t in targets], rank_pattern=rank_pattern,
                        alpha_pattern=alpha_pattern, lora_dropout=0.0, init_lora_weights=True, bias="none",
                        use_rslora=False, use_dora=False)
    model.requires_grad_(False)
    inject_adapter_in_model(config, model, adapter_name=ADAPTER)
    for t in targets:
        layer = model.get_submodule(t.path)
        # Sanity: rank/scale must be exactly kohya's (alpha / rank); patterns failing would train wrongly.
        if layer.r[ADAPTER] != t.rank or abs(layer.scaling[ADAPTER] - float(t.alpha) / t.rank) > 1e-12:
            raise AssertionError(f"PEFT rank/alpha mismatch on {t.path}")
        for p in (layer.lora_A[ADAPTER].weight, layer.lora_B[ADAPTER].weight):
            p.requires_grad_(True)


def inject(model: Any, targets: list[TargetModule], kind: str = "lora",
           peft_kwargs: dict[str, Any] | None = None) -> None:
    """Inject the adapter of plan kind ``kind`` for ``targets`` (LoRA/LoCon, or LoHa/LoKr with the plan's
    LyCORIS options from ``peft_kwargs``)."""
    if kind in LYCORIS_KINDS:
        inject_lycoris(model, targets, kind, peft_kwargs or {})
    else:
        inject_lora(model, targets)


# Plan kwargs rebuilt from the resolved targets (exact anchored patterns) rather than copied.
_REBUILT = ("r", "alpha", "lora_alpha", "target_modules", "rank_pattern", "alpha_pattern")


def inject_lycoris(model: Any, targets: list[TargetModule], kind: str, peft_kwargs: dict[str, Any]) -> None:
    """Inject PEFT LoHa / LoKr layers for ``targets``; the other LyCORIS options (dropouts, Tucker,
    ``decompose_both``, ``decompose_factor``...) come from the plan's ``peft_kwargs``."""
    from peft import LoHaConfig, LoKrConfig, inject_adapter_in_model

    if not targets:
        return
    counts: dict[tuple[int, float], int] = {}
    for t in targets:
        counts[(t.rank, float(t.alpha))] = counts.get((t.rank, float(t.alpha)), 0) + 1
    r, a = max(counts, key=counts.__getitem__)
    rank_pattern = {f"^{_re(t.path)}$": t.rank for t in targets if t.rank != r}
    alpha_pattern = {f"^{_re(t.path)}$": float(t.alpha) for t in targets if float(t.alpha) != a}
    extra = {k: v for k, v in peft_kwargs.items() if k not in _REBUILT}
    config_class = LoHaConfig if kind == "loha" else LoKrConfig
    config = config_class(r=r, alpha=a, target_modules=[t.path for t in targets], rank_pattern=rank_pattern,
                          alpha_pattern=alpha_pattern, init_weights=True, **extra)
    model.requires_grad_(False)
    inject_adapter_in_model(config, model, adapter_name=ADAPTER)
    for t in targets:
        layer = model.get_submodule(t.path)
        if layer.r[ADAPTER] != t.rank or abs(layer.scaling[ADAPTER] - float(t.alpha) / t.rank) > 1e-12:
            raise AssertionError(f"PEFT rank/alpha mismatch on {t.path}")
        for p in adapter_tensors(layer, kind).values():
            p.requires_grad_(True)


def adapter_tensors(layer: Any, kind: str) -> dict[str, Any]:
    """The trainable tensors of one injected layer by PEFT attribute name (``lora_A``, ``hada_w1_a``...)."""
    if kind in LYCORIS_KINDS:
        return {n: getattr(layer, n)[ADAPTER] for n in LYCORIS_PARAMS[kind] if ADAPTER in getattr(layer, n)}
    return {"lora_A": layer.lora_A[ADAPTER].weight, "lora_B": layer.lora_B[ADAPTER].weight}


def layer_params(net: PartNetwork, layer: Any) -> tuple[list[Any], list[Any]]:
    """(parameters of the normal group, parameters LoRA+ moves to its own group) of one layer of ``net``.

    LoRA+ raises the LR of ``lora_B`` (kohya ``lora_up``); LoHa / LoKr have no such factor here, so all
    their tensors stay in the normal group.
    """
    tensors = adapter_tensors(layer, net.kind)
    if net.kind in LYCORIS_KINDS:
        return list(tensors.values()), []
    return [tensors["lora_A"]], [tensors["lora_B"]]


def cast_adapters(net: PartNetwork, dtype: Any) -> None:
    """Cast the trainable adapter tensors of ``net`` to ``dtype`` (the frozen base keeps its own dtype)."""
    for _, layer in lora_layers(net):
        for p in adapter_tensors(layer, net.kind).values():
            p.data = p.data.to(dtype)


def _re(path: str) -> str:
    import re

    return re.escape(path)


def lora_layers(net: PartNetwork) -> list[tuple[TargetModule, Any]]:
    """(target, PEFT LoraLayer) pairs of a part, in target order."""
    return [(t, net.model.get_submodule(t.path)) for t in net.targets]


def install_kohya_dropouts(net: PartNetwork, network_dropout: float | None = None,
                           rank_dropout: float | None = None, module_dropout: float | None = None) -> list[Any]:
    """Forward hooks giving kohya's LoRAModule dropout semantics (reference §6.4); returns the hook handles.

    * ``network_dropout``: inverted dropout on the rank activations after ``lora_down``.
    * ``rank_dropout``: a [batch, r] keep mask broadcast over sequence/spatial dims, output scaled 1/(1-p).
    * ``module_dropout``: with probability p the whole LoRA branch of the module is skipped for this call.
    All act only while the module is in training mode.
    """
    import torch
    import torch.nn.functional as F

    handles: list[Any] = []
    if not (network_dropout or rank_dropout or module_dropout):
        return handles
    if net.kind in LYCORIS_KINDS:
        from lora_compat.errors import UserError

        # rank/module dropout of LoHa/LoKr are PEFT config fields (the plan puts them there), never hooks
        raise UserError(f"network_dropout with {net.kind}: LyCORIS' dropout of the LoHa/LoKr branch is not "
                        "implemented by lora-compat; leave network_dropout unset", key="network_dropout")

    for _, layer in lora_layers(net):
        down, up = layer.lora_A[ADAPTER], layer.lora_B[ADAPTER]
        state: dict[str, bool] = {"skip": False}

        def down_hook(mod, inputs, out, _state=state):
            _state["skip"] = bool(module_dropout) and mod.training and torch.rand(1).item() < module_dropout
            if not mod.training:
                return out
            if network_dropout:
                out = F.dropout(out, p=network_dropout)
            if rank_dropout:
                # Rank axis is the last one for Linear ([B, (L,) r]) and dim 1 for Conv2d ([B, r, H, W]).
                if out.dim() == 4:
                    mask = (torch.rand(out.shape[0], out.shape[1], device=out.device) > rank_dropout)
                    mask = mask.to(out.dtype)[:, :, None, None]
                else:
                    mask = (torch.rand(out.shape[0], out.shape[-1], device=out.device) > rank_dropout).to(out.dtype)
                    if out.dim() == 3:
                        mask = mask[:, None, :]
                out = out * mask / (1.0 - rank_dropout)
            return out

        def up_hook(mod, inputs, out, _state=state):
            if _state["skip"] and mod.training:
                return out * 0.0
            return out

        handles.append(down.register_forward_hook(down_hook))
        handles.append(up.register_forward_hook(up_hook))
    return handles


def apply_max_norm(nets: list[PartNetwork], max_norm: float) -> tuple[int, float, float]:
    """kohya ``apply_max_norm_regularization`` (§6.7): returns (#scaled, mean norm, max norm) after scaling."""
    import torch

    norms = []
    scaled = 0
    with torch.no_grad():
        for net in nets:
            for t, layer in lora_layers(net):
                if net.kind in LYCORIS_KINDS:
                    # dW is linear in every factor tensor (hada: w1a w1b * w2a w2b; lokr: kron(w1, w2)), so
                    # scaling each of the N tensors by ratio**(1/N) scales dW by ratio
                    tensors = list(adapter_tensors(layer, net.kind).values())
                    n = layer.get_delta_weight(ADAPTER).norm()
                    desired = torch.clamp(n, min=max_norm / 2)
                    ratio = torch.clamp(desired, max=max_norm) / desired
                    if ratio.item() != 1:
                        for p in tensors:
                            p.mul_(ratio ** (1.0 / len(tensors)))
                        scaled += 1
                    norms.append((n * ratio).item())
                    continue
                down, up = layer.lora_A[ADAPTER].weight, layer.lora_B[ADAPTER].weight
                scale = float(t.alpha) / t.rank
                if down.dim() == 4 and down.shape[2:] != (1, 1):
                    delta = torch.nn.functional.conv2d(down.permute(1, 0, 2, 3), up).permute(1, 0, 2, 3)
                else:
                    delta = up.flatten(1) @ down.flatten(1)
                n = delta.norm() * scale
                desired = torch.clamp(n, min=max_norm / 2)  # n = max(||dW||, m/2)
                ratio = torch.clamp(desired, max=max_norm) / desired
                if ratio.item() != 1:
                    down.mul_(ratio.sqrt())
                    up.mul_(ratio.sqrt())
                    scaled += 1
                norms.append((n * ratio).item())
    return scaled, (sum(norms) / len(norms) if norms else 0.0), (max(norms) if norms else 0.0)


def optimizer_param_groups(plan: Any, nets: list[PartNetwork]) -> list[dict[str, Any]]:
    """Optimizer groups from the plan's group list (§4.10): TE groups first, LoRA+ groups hold lora_B."""
    from lora_compat.plan.network import block_index
    from lora_compat.plan.parts import is_text_encoder_part

    groups = []
    for g in plan.param_groups:
        if not g.lr:
            continue
        params = []
        for net in nets:
            if is_text_encoder_part(g.part) != is_text_encoder_part(net.part):
                continue
            for t, layer in lora_layers(net):
                if g.block is not None and block_index(t.kohya_name, plan.family == "sdxl") != g.block:
                    continue
                has_plus = any(o.lora_plus and o.part == g.part and o.block == g.block for o in plan.param_groups)
                normal, plus = layer_params(net, layer)
                if not has_plus or g.lora_plus:
                    params.extend(plus)
                if not g.lora_plus:
                    params.extend(normal)
        if params:
            groups.append({"params": params, "lr": float(g.lr), "name": g.description})
    return groups


def load_network_weights(path: str, nets: list[Any], say: Callable[[str], None]) -> None:
    """``network_weights``: start from a kohya LoRA file, loaded like sd-scripts (strict=False: unknown or
    missing modules are reported, a shape mismatch is an error; the file's alpha does not change the scale)."""
    import torch
    from safetensors.torch import load_file

    if not path.endswith(".safetensors"):
        raise UserError(f"network_weights {path!r}: only .safetensors files are read (pickles can run code)",
                        key="network_weights")
    try:
        sd = load_file(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"network_weights {path!r}: {exc}", key="network_weights") from None
    used = set()
    for net in nets:
        for t, layer in lora_layers(net):
            for suffix, param in (("lora_down.weight", layer.lora_A[ADAPTER].weight),
                                  ("lora_up.weight", layer.lora_B[ADAPTER].weight)):
                key = f"{t.kohya_name}.{suffix}"
                if key not in sd:
                    continue
                if tuple(sd[key].shape) != tuple(param.shape):
                    raise UserError(f"network_weights {path!r}: {key} has shape {list(sd[key].shape)}, the "
                                    f"network needs {list(param.shape)}", key="network_weights")
                with torch.no_grad():
                    param.copy_(sd[key].to(param.dtype))
                used.add(key)
    weights = {k for k in sd if not k.endswith(".alpha")}
    say(f"network_weights: loaded {len(used)} tensors from {path}"
        + (f"; {len(weights - used)} unused" if weights - used else ""))
