"""LoHa (LyCORIS ``algo=loha``) on FLUX.1's fused BFL modules through PEFT, in LyCORIS' kohya layout.

LyCORIS wraps BFL's fused ``img_attn.qkv`` / ``txt_attn.qkv`` / ``linear1`` like any Linear:
``dW = (alpha/r) (w1a w1b) ⊙ (w2a w2b)`` with ``w1a, w2a`` [sum(outs), r] and ``w1b, w2b`` [r, in]. Row block j of
that product is ``(w1a_j w1b) ⊙ (w2a_j w2b)``: a LoHa on diffusers' split module j whose input-side factors
``w1b`` and ``w2b`` are shared with the other parts. So PEFT's ``LoHaConfig`` layers on the split modules with
``hada_w1_b`` / ``hada_w2_b`` tied reproduce the fused LoHa exactly, and the file keeps LyCORIS' names and shapes
(``hada_w1_a = cat(w1a_j)``, ``hada_w1_b`` shared, ``hada_w2_a = cat(w2a_j)``, ``hada_w2_b``, ``alpha``).

(LoKr has no such exact split in general: ``kron(w1, w2)``'s row blocks are Kronecker products only when the
factor ``w2``'s height divides every part, which LyCORIS' factorisation of ``linear1``'s 21504 rows does not
give, so a FLUX LoKr cannot be trained on the split modules without changing the saved layout.)

PEFT's LoHa layers apply LyCORIS' ``rank_dropout`` / ``module_dropout`` per part; ``network_dropout`` is not
supported (as for LoHa on SD). The modules are the DiT's (the ``lora_flux`` set: LyCORIS' FLUX preset targets
``DoubleStreamBlock`` / ``SingleStreamBlock``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch

from lora_compat.train.flux.lora import ADAPTER, group_by_part, peft_patterns, resolve_targets
from lora_compat.train.flux.network_spec import PlannedModule

LOHA_KEYS = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")


@dataclass
class InjectedLoha:
    """One kohya module as PEFT LoHa layers (one per split part) with tied input-side factors."""

    planned: PlannedModule
    layers: list[Any]

    def tensors(self) -> dict[str, list[torch.nn.Parameter]]:
        """Per LyCORIS name, the part tensors (the shared ``*_b`` once)."""
        first = self.layers[0]
        return {"hada_w1_a": [layer.hada_w1_a[ADAPTER] for layer in self.layers],
                "hada_w1_b": [first.hada_w1_b[ADAPTER]],
                "hada_w2_a": [layer.hada_w2_a[ADAPTER] for layer in self.layers],
                "hada_w2_b": [first.hada_w2_b[ADAPTER]]}


class FluxLohaNetwork:
    """LoHa modules of one FLUX run on the DiT (``models={"transformer": ...}``)."""

    def __init__(self, planned: list[PlannedModule], models: dict[str, Any], *, rank_dropout: float = 0.0,
                 module_dropout: float = 0.0) -> None:
        from peft import LoHaConfig, inject_adapter_in_model

        if any(p.part != "transformer" for p in planned):
            raise ValueError("FLUX LoHa trains the DiT only (no text-encoder LoHa)")
        self.models = {k: v for k, v in models.items() if v is not None}
        resolved = resolve_targets(planned, self.models)
        for part, mods in group_by_part(planned).items():
            r, a, targets, rank_pattern, alpha_pattern = peft_patterns(mods, resolved)
            config = LoHaConfig(r=r, alpha=a, target_modules=targets, rank_pattern=rank_pattern,
                                alpha_pattern=alpha_pattern, rank_dropout=rank_dropout or 0.0,
                                module_dropout=module_dropout or 0.0, init_weights=True)
            self.models[part].requires_grad_(False)
            inject_adapter_in_model(config, self.models[part], adapter_name=ADAPTER)
        self.modules: list[InjectedLoha] = []
        for p in planned:
            model = self.models[p.part]
            layers = [model.get_submodule(path) for path in resolved[p.kohya_name]]
            for layer in layers:
                if layer.r[ADAPTER] != p.rank or abs(layer.scaling[ADAPTER] - p.scale) > 1e-12:
                    raise AssertionError(f"PEFT rank/alpha mismatch on {p.kohya_name}")
            for layer in layers[1:]:  # the input-side factors are the fused module's: one tensor for all parts
                layer.hada_w1_b[ADAPTER] = layers[0].hada_w1_b[ADAPTER]
                layer.hada_w2_b[ADAPTER] = layers[0].hada_w2_b[ADAPTER]
            m = InjectedLoha(p, layers)
            for tensors in m.tensors().values():
                for t in tensors:
                    t.requires_grad_(True)
            self.modules.append(m)

    def parameters(self) -> list[torch.nn.Parameter]:
        """The trainable tensors, each shared factor once."""
        out, seen = [], set()
        for m in self.modules:
            for tensors in m.tensors().values():
                for t in tensors:
                    if id(t) not in seen:
                        seen.add(id(t))
                        out.append(t)
        return out

    def set_multiplier(self, multiplier: float) -> None:
        """Scale every LoHa output (0 disables)."""
        for m in self.modules:
            for layer in m.layers:
                layer.set_scale(ADAPTER, float(multiplier))

    def kohya_state_dict(self, dtype: Any = None) -> OrderedDict[str, torch.Tensor]:
        """LyCORIS' kohya layout: per module ``alpha``, ``hada_w1_a`` [sum(outs), r], ``hada_w1_b`` [r, in],
        ``hada_w2_a``, ``hada_w2_b``."""
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        with torch.no_grad():
            for m in self.modules:
                name = m.planned.kohya_name
                items = [("alpha", torch.tensor(m.planned.alpha))]
                items += [(k, torch.cat([t.detach() for t in ts], dim=0)) for k, ts in m.tensors().items()]
                for key, t in items:
                    t = t.clone().to("cpu")
                    out[f"{name}.{key}"] = t.to(dtype) if dtype is not None else t
        return out

    def load_kohya_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Copy a LyCORIS kohya LoHa file's tensors in (every module must be present, ranks and alphas equal)."""
        with torch.no_grad():
            for m in self.modules:
                name = m.planned.kohya_name
                for key in ("alpha", *LOHA_KEYS):
                    if f"{name}.{key}" not in state_dict:
                        raise KeyError(f"{name}.{key} is missing from the LoHa weights")
                if float(state_dict[f"{name}.alpha"]) != float(m.planned.alpha):
                    raise ValueError(f"{name}.alpha differs from this network's {m.planned.alpha}")
                outs = [layer.get_base_layer().out_features for layer in m.layers]
                for key, tensors in m.tensors().items():
                    value = state_dict[f"{name}.{key}"]
                    parts = torch.split(value, outs, dim=0) if key.endswith("_a") else (value,)
                    if len(parts) != len(tensors) or any(a.shape != b.shape for a, b in zip(parts, tensors,
                                                                                             strict=False)):
                        raise ValueError(f"{name}.{key} has shape {tuple(value.shape)}, which does not fit")
                    for t, v in zip(tensors, parts, strict=True):
                        t.copy_(v.to(t.dtype))
