"""LC427 flux-reg-dims-shadowed: a network_reg_dims pattern after a more general one: sd-scripts uses the first."""

from __future__ import annotations

import re
from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts import flux
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register

#: Patterns looked at (a config may hold thousands; the first ones decide every module anyway).
MAX_PATTERNS = 64


@register
class FluxRegDimsShadowed(Rule):
    """A ``network_reg_dims`` pattern that an earlier, more general pattern shadows: sd-scripts applies the first match.

    ``networks.lora_flux`` reads ``network_reg_dims`` as ``"regex=dim,regex=dim"`` into a dict, and for every
    module (``LoRANetwork.create_modules``) walks the patterns in the order written, takes the first whose
    ``re.search`` matches the module's kohya name (``lora_unet_double_blocks_1_img_attn_qkv``,
    ``lora_te1_text_model_encoder_layers_0_mlp_fc1`` ...) and stops. A general pattern written before a specific
    one therefore decides every module both match: ``double_blocks=8,double_blocks_1_=32`` gives
    ``double_blocks_1`` rank 8, not 32, without a warning (sd-scripts only logs the match it used). A repeated
    pattern keeps its first position and its last value. The per-type dims (``img_attn_dim`` ...) and the block
    indices are not applied to a module a pattern matched.

    Put the specific patterns first.

    **Anti-pattern**

    ```toml
    network_module = "networks.lora_flux"
    network_args = ["network_reg_dims=double_blocks=8,double_blocks_1_=32"]
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora_flux"
    network_args = ["network_reg_dims=double_blocks_1_=32,double_blocks=8"]
    ```
    """

    code, name, severity = "LC427", "arch.flux_reg_dims_shadowed", "warning"
    groups = ("arch", "flux")
    summary = "FLUX network_reg_dims: a pattern after a more general one gets none (or fewer) of its modules."
    message = ("network_reg_dims {pattern}={dim}: {shadowed} of the {total} modules it matches take dim {other} "
               "from the earlier pattern {earlier} (sd-scripts applies the first matching regex){hint}")
    reference = "sd-scripts networks/lora_flux.py create_network (parse_kv_pairs), LoRANetwork.create_modules"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not flux.uses_lora_flux(cfg):
            return
        text = flux.network_args(cfg).get("network_reg_dims")
        if text is None:
            return
        from lora_compat.arch.flux import flux_table, parse_reg_dims

        patterns = list(parse_reg_dims(text).items())[:MAX_PATTERNS]
        compiled: list[tuple[str, int, re.Pattern[str]]] = []
        for pattern, dim in patterns:
            try:
                compiled.append((pattern, dim, re.compile(pattern)))
            except re.error:
                continue   # sd-scripts raises on it when it builds the network; not this rule's finding
        names = [m.kohya_name for m in flux_table(flux.variant(cfg)).modules]
        matched = [{n for n in names if rx.search(n)} for _, _, rx in compiled]
        owner: dict[str, int] = {}          # module -> index of the first pattern that matches it
        for i, found in enumerate(matched):
            for name in found:
                owner.setdefault(name, i)
        for j, (pattern, dim, _) in enumerate(compiled):
            # modules of pattern j decided by an earlier pattern with another dim; an earlier pattern that only
            # matches modules pattern j also matches is the intended "specific first" order, not a trap
            taken = {n for n in matched[j] if owner[n] != j and compiled[owner[n]][1] != dim
                     and not matched[owner[n]] <= matched[j]}
            if not taken:
                continue
            first = min(owner[n] for n in taken)
            earlier, other = compiled[first][0], compiled[first][1]
            hint = "; write it before the general one" if len(taken) == len(matched[j]) else ""
            yield self.finding(cfg, option="network_args", pattern=pattern, dim=dim, shadowed=len(taken),
                               total=len(matched[j]), other=other, earlier=earlier, hint=hint)
