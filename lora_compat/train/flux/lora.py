"""sd-scripts' FLUX.1 LoRA (``networks.lora_flux``) on diffusers' ``FluxTransformer2DModel`` through PEFT.

**The parameterisation.** sd-scripts trains one LoRA per BFL ``nn.Linear``. Three of them are fused in BFL and
split in diffusers: ``img_attn.qkv`` (-> ``to_q``/``to_k``/``to_v``), ``txt_attn.qkv`` (-> ``add_q/k/v_proj``) and
``single_blocks.N.linear1`` (-> ``to_q``/``to_k``/``to_v``/``proj_mlp``). There one ``lora_down`` [r, in] is shared
and ``lora_up`` is [sum(outs), r]: ``dW = (alpha/r) [B_q; B_k; B_v(; B_mlp)] A``. We inject a standard PEFT
``LoraLayer`` into every split module and **tie** their ``lora_A`` to one module, so each split output gets
``(alpha/r) B_j A x``: row block j of sd-scripts' fused delta, exactly, and the gradient of the shared ``A`` is
the sum over the parts, as for sd-scripts' one down. The saved file is then sd-scripts' (``down = A``, ``up =
cat(B_j)``), and diffusers' ``load_lora_weights`` (which splits kohya files the same way) reads it back.

Why not the alternatives: diffusers' ``fuse_qkv_projections`` fuses q/k/v of the double blocks but cannot fuse
``proj_mlp`` into the single blocks' ``linear1`` (a different module of ``FluxSingleTransformerBlock``), and it
changes the model's module names; a PEFT custom module would replace diffusers' layers. Tying keeps diffusers'
model and PEFT's layers untouched.

The shared down is a :class:`KohyaDown` (an ``nn.Linear``): within one forward it computes ``A x`` once for all
parts (it recognises the parts' common input through a pre-hook on each part) and applies sd-scripts' dropouts on
the rank activations once per kohya module, so ``network_dropout``, ``rank_dropout`` and ``module_dropout`` draw one
mask per fused module as in sd-scripts. ``split_qkv=True`` gives every part its own down (sd-scripts' split
mode: scale alpha/r per part) and is saved like sd-scripts: downs concatenated, ups block-diagonal, alpha kept.

Every module keeps its kohya name, rank and alpha (int or float, as sd-scripts' buffers), so
:meth:`FluxLoraNetwork.kohya_state_dict` writes sd-scripts' keys, shapes and dtypes.
"""

from __future__ import annotations

import re
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lora_compat.train.flux.network_spec import FluxNetworkArgs, PlannedModule

ADAPTER = "default"


@dataclass
class _GroupState:
    """Per-kohya-module state shared by its parts during one forward (keyed by the parts' common input)."""

    src: Any = None           # weakref to the input the parts are being called with now
    cached_src: Any = None
    cached_out: Any = None
    skip_src: Any = None      # input for which module_dropout decided
    skip: bool = False


@dataclass
class _Draws:
    """The random draws of one forward of one kohya module, made ahead of its call (sd-scripts' order)."""

    skip: bool
    dropout_mask: torch.Tensor | None = None
    rank_mask: torch.Tensor | None = None


class _ImageTokens:
    """The image-stream shape [batch, tokens] a diffusers double block is called with (a forward pre-hook)."""

    def __init__(self) -> None:
        self.shape: tuple[int, int] | None = None

    def note(self, _block: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        hidden = kwargs.get("hidden_states", args[0] if args else None)   # checkpointing passes it positionally
        if isinstance(hidden, torch.Tensor) and hidden.dim() == 3:
            self.shape = (int(hidden.shape[0]), int(hidden.shape[1]))


class KohyaDown(nn.Linear):
    """The ``lora_down`` of one kohya module, shared by its split parts, with sd-scripts' dropouts.

    ``dropout``: inverted dropout on ``A x``; ``rank_dropout``: a [batch, r] keep mask scaled by 1/(1-p);
    ``module_dropout``: with probability p the module adds nothing for this forward. All only in training mode.
    """

    def __init__(self, in_features: int, rank: int, *, shared: bool, dropout: float | None = None,
                 rank_dropout: float | None = None, module_dropout: float | None = None,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_features, rank, bias=False, device=device, dtype=dtype)
        self.shared = shared
        self.dropout_p = dropout
        self.rank_dropout = rank_dropout
        self.module_dropout = module_dropout
        self.group = _GroupState()
        self.pending: _Draws | None = None          # this forward's draws, made ahead by another module
        self.draw_before: list[KohyaDown] = []     # modules whose draws sd-scripts makes before this one's
        self.image_tokens: _ImageTokens | None = None

    def note_input(self, _module: nn.Module, args: tuple[Any, ...]) -> None:
        """Forward pre-hook of each part: remember the (uncast) input they all receive."""
        if args and isinstance(args[0], torch.Tensor):
            self.group.src = weakref.ref(args[0])

    def _current_src(self) -> Any:
        return self.group.src() if self.group.src is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.group
        src = self._current_src()
        if (self.shared and src is not None and g.cached_src is not None and g.cached_src() is src
                and g.cached_out is not None):
            return g.cached_out
        out = nn.functional.linear(x, self.weight)
        if self.training and self.has_dropouts:
            out = self._dropouts(out, src)
        if self.shared and src is not None:
            g.cached_src, g.cached_out = weakref.ref(src), out
        return out

    @property
    def has_dropouts(self) -> bool:
        """sd-scripts tests ``module_dropout`` / ``rank_dropout`` with ``is not None`` (0.0 still draws)."""
        return bool(self.dropout_p) or self.rank_dropout is not None or self.module_dropout is not None

    def draw(self, batch: int, tokens: int | None, device: Any) -> _Draws:
        """sd-scripts' draws for an input of [batch, tokens, in] (2-d without ``tokens``), in its order: the module
        dropout, the dropout mask of the rank activations (what ``F.dropout`` draws on the CPU: a Bernoulli mask of
        the activations' shape), the [batch, r] rank mask."""
        if self.module_dropout is not None and bool(torch.rand(1) < self.module_dropout):
            return _Draws(True)
        shape = (batch, tokens, self.out_features) if tokens is not None else (batch, self.out_features)
        dmask = torch.empty(shape, device=device).bernoulli_(1 - self.dropout_p) if self.dropout_p else None
        rmask = (torch.rand((batch, self.out_features), device=device) > self.rank_dropout
                 if self.rank_dropout is not None else None)
        return _Draws(False, dmask, rmask)

    def _apply_draws(self, out: torch.Tensor, d: _Draws) -> torch.Tensor:
        if d.skip:
            return out * 0.0
        if d.dropout_mask is not None:
            out = out * d.dropout_mask.to(out.dtype).div_(1 - float(self.dropout_p or 0))   # = F.dropout
        if d.rank_mask is not None:
            out = self._rank_masked(out, d.rank_mask)
        return out

    def _rank_masked(self, out: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if out.dim() == 3:
            mask = mask.unsqueeze(1)
        return out * mask.to(out.dtype) * (1.0 / (1.0 - float(self.rank_dropout or 0)))

    def _dropouts(self, out: torch.Tensor, src: Any) -> torch.Tensor:
        g = self.group
        if self.draw_before:
            # sd-scripts' block calls these modules before this one; diffusers' calls them after: draw theirs first
            img = self.image_tokens.shape if self.image_tokens is not None else None
            for other in self.draw_before:
                if other.pending is None and other.has_dropouts:
                    other.pending = other.draw(out.size(0), img[1] if img else None, out.device)
        if self.pending is not None:
            drawn, self.pending = self.pending, None
            return self._apply_draws(out, drawn)
        if self.module_dropout is not None:
            if src is None or g.skip_src is None or g.skip_src() is not src:
                g.skip = bool(torch.rand(1) < self.module_dropout)
                g.skip_src = weakref.ref(src) if src is not None else None
            if g.skip:
                return out * 0.0
        if self.dropout_p:
            out = nn.functional.dropout(out, p=self.dropout_p)
        if self.rank_dropout is not None:
            out = self._rank_masked(out, torch.rand((out.size(0), out.size(-1)), device=out.device) > self.rank_dropout)
        return out

    def clear(self) -> None:
        """Drop the cached activation and the module-dropout decision (before a new forward)."""
        self.group.cached_src = self.group.cached_out = self.group.skip_src = None
        self.pending = None


@dataclass
class InjectedModule:
    """One kohya module inside the model: its plan, its PEFT layers (one per part) and down(s)."""

    planned: PlannedModule
    layers: list[Any]                  # PEFT LoraLayer per diffusers path
    downs: list[KohyaDown]             # one shared down, or one per part (split_qkv)
    out_features: list[int] = field(default_factory=list)

    @property
    def kohya_name(self) -> str:
        return self.planned.kohya_name

    @property
    def ups(self) -> list[nn.Linear]:
        return [layer.lora_B[ADAPTER] for layer in self.layers]


def _anchored(path: str) -> str:
    return f"^{re.escape(path)}$"


def resolve_path(path: str, available: set[str]) -> str | None:
    """``path`` as spelled in a loaded model: transformers 5 drops ``text_model.`` from CLIPTextModel paths."""
    for cand in (path, path.removeprefix("text_model.")):
        if cand in available:
            return cand
    return None


def group_by_part(planned: list[PlannedModule]) -> dict[str, list[PlannedModule]]:
    """Planned modules per model part, in plan order."""
    out: dict[str, list[PlannedModule]] = {}
    for p in planned:
        out.setdefault(p.part, []).append(p)
    return out


def resolve_targets(planned: list[PlannedModule], models: dict[str, Any]) -> dict[str, list[str]]:
    """kohya name -> the module paths as spelled in the loaded models (``ValueError`` naming a missing one)."""
    resolved: dict[str, list[str]] = {}
    for part, mods in group_by_part(planned).items():
        if part not in models:
            raise ValueError(f"LoRA modules for {part} but no {part} model was given")
        available = {name for name, _ in models[part].named_modules()}
        for p in mods:
            paths = []
            for path in p.paths:
                real = resolve_path(path, available)
                if real is None:
                    raise ValueError(f"{p.kohya_name}: module {path} is not in the {part} model")
                paths.append(real)
            resolved[p.kohya_name] = paths
    return resolved


def peft_patterns(mods: list[PlannedModule], resolved: dict[str, list[str]]
                  ) -> tuple[int, float, list[str], dict[str, int], dict[str, float]]:
    """(r, alpha, target_modules, rank_pattern, alpha_pattern) for a PEFT config: the most common rank/alpha as
    defaults, anchored full paths for the others (FLUX's ``proj_out`` names two different modules)."""
    counts: dict[tuple[int, float], int] = {}
    for p in mods:
        key = (p.rank, float(p.alpha))
        counts[key] = counts.get(key, 0) + len(p.paths)
    r, a = max(counts, key=counts.__getitem__)
    targets: list[str] = []
    rank_pattern: dict[str, int] = {}
    alpha_pattern: dict[str, float] = {}
    for p in mods:
        for path in resolved[p.kohya_name]:
            targets.append(path)
            if p.rank != r:
                rank_pattern[_anchored(path)] = p.rank
            if float(p.alpha) != a:
                alpha_pattern[_anchored(path)] = float(p.alpha)
    return r, a, targets, rank_pattern, alpha_pattern


class FluxLoraNetwork:
    """The LoRA modules of one FLUX run, injected into the DiT and (optionally) CLIP-L / T5-XXL.

    ``models``: ``{"transformer": ..., "clip_l": ..., "t5xxl": ...}`` (a part may be missing or None when no
    planned module needs it). Base weights are frozen; adapter tensors are float32 unless ``dtype`` says otherwise.
    """

    def __init__(self, planned: list[PlannedModule], models: dict[str, Any], *, split_qkv: bool = False,
                 dropout: float | None = None, rank_dropout: float | None = None,
                 module_dropout: float | None = None, dtype: Any = None, args: FluxNetworkArgs | None = None):
        self.models = {k: v for k, v in models.items() if v is not None}
        self.split_qkv = split_qkv
        self.args = args
        self.multiplier = 1.0
        self.modules: list[InjectedModule] = []
        resolved = resolve_targets(planned, self.models)
        for part, mods in group_by_part(planned).items():
            self._inject(self.models[part], mods, resolved)
        for p in planned:
            model = self.models[p.part]
            layers = [model.get_submodule(path) for path in resolved[p.kohya_name]]
            self.modules.append(self._wire(p, layers, dropout, rank_dropout, module_dropout, dtype))
        if dropout or rank_dropout is not None or module_dropout is not None:
            self._order_double_block_draws()

    def _order_double_block_draws(self) -> None:
        """Make the dropouts' random draws in sd-scripts' order. BFL's ``DoubleStreamBlock`` calls ``img_attn.proj``,
        ``img_mlp.0``, ``img_mlp.2``, then ``txt_attn.proj``; diffusers' block calls ``attn.to_add_out``
        (``txt_attn.proj``) inside the attention, before ``ff`` (``img_mlp``). So ``txt_attn.proj``'s down first
        draws for ``img_mlp.0`` / ``img_mlp.2`` (their image-token shape taken from the block's input) and they
        use those draws when called. Every other module is called in BFL's order already."""
        transformer = self.models.get("transformer")
        blocks = getattr(transformer, "transformer_blocks", None)
        if blocks is None:
            return
        by_name = {m.kohya_name: m for m in self.modules}
        for i, block in enumerate(blocks):
            txt = by_name.get(f"lora_unet_double_blocks_{i}_txt_attn_proj")
            ahead = [by_name[n].downs[0] for n in (f"lora_unet_double_blocks_{i}_img_mlp_0",
                                                   f"lora_unet_double_blocks_{i}_img_mlp_2") if n in by_name]
            if txt is None or not ahead:
                continue
            tokens = _ImageTokens()
            block.register_forward_pre_hook(tokens.note, with_kwargs=True)
            txt.downs[0].draw_before = ahead
            txt.downs[0].image_tokens = tokens

    @staticmethod
    def _inject(model: Any, mods: list[PlannedModule], resolved: dict[str, list[str]]) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        r, a, targets, rank_pattern, alpha_pattern = peft_patterns(mods, resolved)
        config = LoraConfig(r=r, lora_alpha=a, target_modules=targets, rank_pattern=rank_pattern,
                            alpha_pattern=alpha_pattern, lora_dropout=0.0, init_lora_weights=True, bias="none",
                            use_rslora=False, use_dora=False)
        model.requires_grad_(False)
        inject_adapter_in_model(config, model, adapter_name=ADAPTER)

    def _wire(self, p: PlannedModule, layers: list[Any], dropout: float | None, rank_dropout: float | None,
              module_dropout: float | None, dtype: Any) -> InjectedModule:
        for layer in layers:
            if layer.r[ADAPTER] != p.rank or abs(layer.scaling[ADAPTER] - p.scale) > 1e-12:
                raise AssertionError(f"PEFT rank/alpha mismatch on {p.kohya_name}")
        first_a = layers[0].lora_A[ADAPTER]
        w_dtype = dtype or first_a.weight.dtype
        shared = len(layers) > 1 and p.split == 1 and not self.split_qkv
        downs: list[KohyaDown] = []
        for i, layer in enumerate(layers):
            if shared and i > 0:
                down = downs[0]
            else:
                down = KohyaDown(first_a.in_features, p.rank, shared=shared, dropout=dropout,
                                 rank_dropout=rank_dropout, module_dropout=module_dropout,
                                 device=first_a.weight.device, dtype=w_dtype)
                with torch.no_grad():
                    # PEFT initialised A like sd-scripts' lora_down (kaiming_uniform, a=sqrt(5)); keep part 0's
                    down.weight.copy_(layer.lora_A[ADAPTER].weight)
                downs.append(down)
            layer.lora_A[ADAPTER] = down
            if shared:
                layer.register_forward_pre_hook(down.note_input)
            if dtype is not None:
                layer.lora_B[ADAPTER].to(dtype)
        for t in self._tensors(downs, layers):
            t.requires_grad_(True)
        return InjectedModule(p, layers, downs, [layer.lora_B[ADAPTER].out_features for layer in layers])

    @staticmethod
    def _tensors(downs: list[KohyaDown], layers: list[Any]) -> list[torch.Tensor]:
        return [d.weight for d in downs] + [layer.lora_B[ADAPTER].weight for layer in layers]

    # ------------------------------------------------------------------------------------------------------
    def parameters(self, part: str | None = None) -> list[torch.nn.Parameter]:
        """The trainable tensors (each shared down once), optionally of one part."""
        out, seen = [], set()
        for m in self.modules:
            if part is not None and m.planned.part != part:
                continue
            for t in self._tensors(m.downs, m.layers):
                if id(t) not in seen:
                    seen.add(id(t))
                    out.append(t)
        return out

    def set_multiplier(self, multiplier: float) -> None:
        """sd-scripts' ``network.set_multiplier``: scale every LoRA output (0 disables, 1 trains)."""
        self.multiplier = float(multiplier)
        for m in self.modules:
            for layer in m.layers:
                layer.set_scale(ADAPTER, self.multiplier)

    def train(self, mode: bool = True) -> None:
        """Put the adapter sub-modules in training mode (dropouts act only then)."""
        for m in self.modules:
            for d in m.downs:
                d.train(mode)

    def clear_caches(self) -> None:
        """Drop the shared downs' cached activations."""
        for m in self.modules:
            for d in m.downs:
                d.clear()

    def param_groups(self, text_encoder_lr: float | list[float] | None, unet_lr: float | None,
                     default_lr: float | None) -> tuple[list[dict[str, Any]], list[str]]:
        """Optimizer groups as ``prepare_optimizer_params_with_multiple_te_lrs``
        (:func:`lora_compat.semantics.param_groups.flux_param_groups`). Returns (groups, descriptions)."""
        specs = self.group_plan(text_encoder_lr, unet_lr, default_lr)
        return [{"params": self.group_tensors(g), "lr": g.lr} for g in specs], [g.description for g in specs]

    def group_plan(self, text_encoder_lr: float | list[float] | None, unet_lr: float | None,
                   default_lr: float | None) -> list[Any]:
        """The :class:`~lora_compat.semantics.param_groups.ParamGroup` list of this network's modules."""
        from lora_compat.semantics.param_groups import flux_param_groups

        a = self.args or FluxNetworkArgs()
        return flux_param_groups([(m.planned.part, m.kohya_name) for m in self.modules], text_encoder_lr, unet_lr,
                                 default_lr, reg_lrs=a.reg_lrs, loraplus_lr_ratio=a.loraplus_lr_ratio,
                                 loraplus_unet_lr_ratio=a.loraplus_unet_lr_ratio,
                                 loraplus_text_encoder_lr_ratio=a.loraplus_text_encoder_lr_ratio)

    def group_tensors(self, group: Any) -> list[torch.nn.Parameter]:
        """The tensors of one :class:`~lora_compat.train.flux.network_spec.FluxParamGroup`: per module its
        down(s) then its up(s) (only the ups in a LoRA+ group; no ups in the plain group when LoRA+ splits them),
        each shared down once."""
        by_name = {m.kohya_name: m for m in self.modules}
        plus_split = self._plus_split(group.part)
        out, seen = [], set()
        for name in group.modules:
            m = by_name[name]
            tensors: list[torch.nn.Parameter] = []
            if not group.lora_plus:
                tensors += [d.weight for d in m.downs]
            if group.lora_plus or not plus_split:
                tensors += [u.weight for u in m.ups]
            for t in tensors:
                if id(t) not in seen:
                    seen.add(id(t))
                    out.append(t)
        return out

    def _plus_split(self, part: str) -> bool:
        args = self.args or FluxNetworkArgs()
        ratio = args.loraplus_unet_lr_ratio if part == "transformer" else args.loraplus_text_encoder_lr_ratio
        return (ratio or args.loraplus_lr_ratio) is not None

    def apply_max_norm(self, max_norm: float) -> tuple[int, float, float]:
        """``scale_weight_norms``: lora_flux's ``apply_max_norm_regularization``. Per module the fused delta
        ``(alpha / r) up @ down`` has its norm clamped to ``max_norm`` (a norm below ``max_norm / 2`` counts as
        ``max_norm / 2``) by scaling ``down`` and every part's ``up`` with the same square root. A ``split_qkv``
        module is measured on its merged copy (alpha / (n r)) and, as in sd-scripts (which scales that copy),
        counted but never rescaled. Returns (modules scaled, mean norm, max norm), the norms after scaling."""
        norms: list[float] = []
        scaled = 0
        with torch.no_grad():
            for m in self.modules:
                ups = [u.weight for u in m.ups]
                if len(m.downs) > 1:
                    down = torch.cat([d.weight for d in m.downs], dim=0)
                    up = torch.block_diag(*ups)
                else:
                    down = m.downs[0].weight
                    up = torch.cat(ups, dim=0) if len(ups) > 1 else ups[0]
                delta = (up @ down) * (float(m.planned.alpha) / down.shape[0])
                norm = delta.norm().clamp(min=max_norm / 2)
                ratio = torch.clamp(norm, max=max_norm).cpu() / norm.cpu()
                if ratio != 1:
                    scaled += 1   # sd-scripts counts a split_qkv module too, though it scales only a merged copy
                    if len(m.downs) == 1:
                        root = ratio ** 0.5   # a float32 CPU scalar, multiplied in as sd-scripts does
                        down.mul_(root)
                        for u in ups:
                            u.mul_(root)
                norms.append((delta.norm() * ratio.to(delta.device)).item())
        return scaled, (sum(norms) / len(norms) if norms else 0.0), (max(norms) if norms else 0.0)

    # ------------------------------------------------------------------------------------------------------
    def kohya_state_dict(self, dtype: Any = None) -> OrderedDict[str, torch.Tensor]:
        """sd-scripts' state dict: per module ``alpha`` (int64 for an int alpha, else float32), ``lora_down.weight``
        [r, in] and ``lora_up.weight`` [out, r] (fused modules: ups stacked; ``split_qkv``: downs stacked, ups
        block-diagonal, alpha unchanged as sd-scripts). ``dtype`` casts every tensor, alpha included, like
        ``save_weights`` with ``--save_precision``."""
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        with torch.no_grad():
            for m in self.modules:
                name = m.kohya_name
                alpha = torch.tensor(m.planned.alpha)
                ups = [u.weight.detach() for u in m.ups]
                if len(m.downs) > 1:
                    down = torch.cat([d.weight.detach() for d in m.downs], dim=0)
                    up = torch.block_diag(*ups).to(down.dtype)
                else:
                    down = m.downs[0].weight.detach()
                    up = torch.cat(ups, dim=0) if len(ups) > 1 else ups[0]
                items = [(f"{name}.alpha", alpha), (f"{name}.lora_down.weight", down), (f"{name}.lora_up.weight", up)]
                if len(m.downs) > 1:
                    items = items[1:] + items[:1]  # sd-scripts' split_qkv state_dict() re-adds alpha last
                for key, t in items:
                    t = t.clone().to("cpu")
                    out[key] = t.to(dtype) if dtype is not None else t
        return out

    def load_kohya_state_dict(self, state_dict: dict[str, torch.Tensor], *, strict: bool = True) -> list[str]:
        """Copy a kohya FLUX state dict into the adapters; returns the keys not used.

        Ranks must match and each module's ``alpha`` must equal this network's (a different alpha would change
        the trained function); ``strict`` also requires every module to be present.
        """
        used: set[str] = set()
        with torch.no_grad():
            for m in self.modules:
                name = m.kohya_name
                keys = [f"{name}.lora_down.weight", f"{name}.lora_up.weight", f"{name}.alpha"]
                if not all(k in state_dict for k in keys):
                    if strict:
                        missing = [k for k in keys if k not in state_dict]
                        raise KeyError(f"{missing[0]} is missing from the LoRA weights")
                    continue
                down, up, alpha = (state_dict[k] for k in keys)
                if float(alpha) != float(m.planned.alpha):
                    raise ValueError(f"{name}.alpha is {float(alpha)} in the weights but {m.planned.alpha} here")
                self._load_module(m, down, up)
                used.update(keys)
        return [k for k in state_dict if k not in used]

    @staticmethod
    def _load_module(m: InjectedModule, down: torch.Tensor, up: torch.Tensor) -> None:
        name, r, outs = m.kohya_name, m.planned.rank, m.out_features
        n = len(m.downs)
        if tuple(down.shape) != (r * n, m.downs[0].in_features):
            raise ValueError(f"{name}.lora_down.weight has shape {tuple(down.shape)}, expected "
                             f"{(r * n, m.downs[0].in_features)}")
        if tuple(up.shape) != (sum(outs), r * n):
            raise ValueError(f"{name}.lora_up.weight has shape {tuple(up.shape)}, expected {(sum(outs), r * n)}")
        for i, d in enumerate(m.downs):
            d.weight.copy_(down[i * r:(i + 1) * r].to(d.weight.dtype))
        start = 0
        for j, (u, size) in enumerate(zip(m.ups, outs, strict=True)):
            cols = slice(j * r, (j + 1) * r) if n > 1 else slice(0, r)
            u.weight.copy_(up[start:start + size, cols].to(u.weight.dtype))
            start += size


def create_flux_network(args: FluxNetworkArgs, planned: list[PlannedModule], models: dict[str, Any], *,
                        dtype: Any = None) -> FluxLoraNetwork:
    """A fresh network (sd-scripts ``create_network`` + ``apply_to``) for the modules :func:`select_modules`
    planned, with ``args``' dropouts and ``split_qkv``."""
    return FluxLoraNetwork(planned, models, split_qkv=args.split_qkv, dropout=args.dropout,
                           rank_dropout=args.rank_dropout, module_dropout=args.module_dropout, dtype=dtype,
                           args=args)


def kohya_dims_and_alphas(state_dict: dict[str, Any]) -> dict[str, tuple[int, Any]]:
    """kohya name -> (rank, alpha) of a kohya FLUX file (``create_network_from_weights``): rank from
    ``lora_down``, alpha from ``.alpha``; a module without ``.alpha`` raises ``KeyError`` naming it, as sd-scripts."""
    dims: dict[str, int] = {}
    alphas: dict[str, Any] = {}
    for key, value in state_dict.items():
        if "." not in key:
            continue
        name = key.split(".")[0]
        if "alpha" in key:
            alphas[name] = value
        elif "lora_down" in key:
            dims[name] = int(value.shape[0])
    out = {}
    for name, dim in dims.items():
        if name not in alphas:
            raise KeyError(name)
        alpha = alphas[name]
        out[name] = (dim, alpha.item() if hasattr(alpha, "item") else alpha)
    return out


def create_flux_network_from_weights(state_dict: dict[str, Any], models: dict[str, Any], *,
                                     load: bool = True, dtype: Any = None) -> FluxLoraNetwork:
    """sd-scripts' ``create_network_from_weights`` + ``load_state_dict``: modules, ranks and alphas from the file
    (fused modules stay fused: a ``split_qkv`` file loads at rank n*r, as in sd-scripts), weights copied in."""
    from lora_compat.train.flux.network_spec import modules_from_weights

    dims = kohya_dims_and_alphas(state_dict)
    transformer = models.get("transformer")
    cfg = transformer.config if transformer is not None else None
    clip = models.get("clip_l")
    t5 = models.get("t5xxl")
    variant = "flux1-dev" if cfg is None or cfg.guidance_embeds else "flux1-schnell"
    planned = modules_from_weights(
        dims, variant=variant, num_double=cfg.num_layers if cfg else 0, num_single=cfg.num_single_layers if cfg else 0,
        clip_l_layers=clip.config.num_hidden_layers if clip is not None else 0,
        t5_layers=t5.config.num_layers if t5 is not None else 0)
    net = FluxLoraNetwork(planned, models, dtype=dtype)
    if load:
        net.load_kohya_state_dict(state_dict, strict=False)
    return net

