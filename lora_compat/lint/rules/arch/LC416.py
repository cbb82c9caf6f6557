"""LC416 flux-split-qkv: split_qkv=True crashes sd-scripts v0.10 builds; saved files apply at 1/3 or 1/4."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts import flux
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class FluxSplitQkv(Rule):
    """``split_qkv=True`` crashes some sd-scripts builds, and the files it saves apply at a third or a quarter.

    ``networks.lora_flux`` with ``split_qkv=True`` trains separate LoRAs for q, k and v of the fused
    ``img_attn.qkv``/``txt_attn.qkv`` (and q, k, v, mlp of the single blocks' ``linear1``), then saves them fused:
    the downs concatenated to rank 3r (4r), the ups block-diagonal, ``alpha`` unchanged. Two problems:

    - sd-scripts builds from 2025-09-11 (v0.10.x) crash creating the double-block modules
      (``ValueError: too many values to unpack (expected 1)``, sd-scripts issue #2220, fixed by PR #2396);
      with ``train_blocks=single`` the crashing branch is not reached.
    - Every loader (ComfyUI, diffusers, sd-scripts' own ``create_network_from_weights``) scales a module by
      ``alpha / down rows`` = alpha/(3r) or alpha/(4r): the fused modules apply at 1/3 (qkv) or 1/4 (linear1) of
      the strength they trained with (sd-scripts issue #2204). ``lora-compat convert`` rescales such files.

    Without split_qkv the fused LoRA has the same module set and loads at full strength everywhere.

    **Anti-pattern**

    ```toml
    network_module = "networks.lora_flux"
    network_train_unet_only = true
    network_args = ["split_qkv=True"]
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora_flux"
    network_train_unet_only = true
    ```
    """

    code, name, severity = "LC416", "arch.flux_split_qkv", "error"
    groups = ("arch", "flux")
    summary = "split_qkv=True: sd-scripts v0.10 crashes (#2220); saved files load at 1/3 or 1/4 strength (#2204)."
    message = "split_qkv=True: {what}"
    reference = ("sd-scripts networks/lora_flux.py LoRAModule (split_dims), LoRANetwork.state_dict, "
                 "create_network_from_weights; sd-scripts issues #2204, #2220")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not flux.uses_lora_flux(cfg) or flux.network_args(cfg).get("split_qkv") != "True":
            return
        net = flux.network(cfg)
        if net is None or not any(m.split > 1 for m in net.modules):
            return   # refused for another reason (LC413-LC415), or no fused module trained
        strength = ("the saved file keeps alpha while the fused ranks grow to 3r/4r, so ComfyUI, diffusers and "
                    "sd-scripts apply it at 1/3 (qkv) or 1/4 (linear1) of the trained strength")
        if net.crash_at_48d368f:
            yield self.finding(cfg, option="network_args", what=(
                f"sd-scripts v0.10.x (2025-09-11 until PR #2396) stops with {net.crash_at_48d368f} creating the "
                f"double-block qkv modules; with a fixed build, {strength}"))
        else:
            yield self.finding(cfg, option="network_args", severity="warning", what=strength)
