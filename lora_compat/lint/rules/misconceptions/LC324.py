"""LC324 network-dim-above-layer-width."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, network_arg
from lora_compat.lint.registry import Rule, register


@register
class NetworkDimAboveLayerWidth(Rule):
    """``network_dim`` is the LoRA *rank*; above a layer's width it adds size, not capacity.

    A widely copied option table says: "net_dim — the number of hidden units in the model's network architecture". It is
    the rank r of ``ΔW = up · down``; a rank above ``min(in, out)`` of a layer cannot add anything. The narrowest layer
    a kohya LoRA wraps is 320 wide in SD1/SD2 (and in SDXL with conv layers) and 640 wide in a plain SDXL LoRA (the
    narrowest ``lora_down`` input width of the layers ``networks/lora.py`` wraps), so a larger rank only grows the file
    and slows training.

    **Anti-pattern**

    ```json
    {"net_dim": 1024}
    ```

    **Best practice**

    ```json
    {"net_dim": 32}
    ```
    """

    code, name, severity = "LC324", "misconceptions.network_dim_above_layer_width", "warning"
    groups = ("misconceptions", "network")
    summary = "network_dim above the width of the narrowest wrapped layer (320; 640 for plain SDXL LoRA)."
    message = ("network_dim = {dim:g} is a LoRA rank above {width}, the width of the narrowest wrapped {arch} layer: "
               "it grows the file, not the capacity")
    reference = "sd-scripts networks/lora.py LoRAModule.__init__, LoRANetwork.__init__"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not cfg.is_sd_family:
            return  # UNet layer widths; other families have their own
        dim = as_number(cfg.get("network_dim"))
        width = 640 if cfg.is_sdxl and network_arg(cfg, "conv_dim") is None else 320
        if dim and dim > width:
            yield self.finding(cfg, option="network_dim", dim=dim, width=width, arch=cfg.arch().upper())
