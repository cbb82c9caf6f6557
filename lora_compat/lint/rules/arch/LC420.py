"""LC420 flux-trains-clip-l: FLUX.1 without network_train_unet_only also trains a CLIP-L LoRA (lora_te1_ keys)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts import flux
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import truthy
from lora_compat.lint.registry import Rule, register


@register
class FluxTrainsClipL(Rule):
    """Without ``network_train_unet_only`` a FLUX.1 LoRA also trains CLIP-L, and model-only loaders report its keys.

    ``flux_train_network.py`` trains a CLIP-L LoRA (72 ``lora_te1_`` modules beside the transformer's 304)
    whenever ``--network_train_unet_only`` is absent; T5-XXL only with ``network_args`` ``train_t5xxl=True``.
    Most FLUX LoRAs are meant for the transformer only: the extra CLIP-L part costs memory and time, changes
    the text conditioning, and ComfyUI's ``LoraLoaderModelOnly`` (and FluxGym users' workflows) then print
    "lora key not loaded" for every ``lora_te1_`` key. Set ``network_train_unet_only``, or keep the CLIP-L LoRA
    on purpose (a ``text_encoder_lr`` makes that explicit; the finding is then a note).

    **Anti-pattern**

    ```toml
    network_module = "networks.lora_flux"
    learning_rate = 1e-4
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora_flux"
    learning_rate = 1e-4
    network_train_unet_only = true
    ```
    """

    code, name, severity = "LC420", "arch.flux_trains_clip_l", "warning"
    groups = ("arch", "flux")
    summary = "FLUX.1 without network_train_unet_only also trains CLIP-L (72 lora_te1_ modules that loaders skip)."
    message = ("network_train_unet_only is not set: sd-scripts also trains a CLIP-L LoRA ({te} lora_te1_ modules "
               "beside {unet} transformer modules); model-only loaders report those keys as not loaded")
    reference = "sd-scripts flux_train_network.py FluxNetworkTrainer (is_train_text_encoder), networks/lora_flux.py"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.family != "flux1" or not flux.uses_lora_flux(cfg):
            return
        if truthy(cfg.get("network_train_unet_only")) or truthy(cfg.get("network_train_text_encoder_only")):
            return
        net = flux.network(cfg)
        if net is None:
            return
        counts = net.counts()
        if not counts["lora_te1"]:
            return
        explicit_te = cfg.is_set("text_encoder_lr")
        yield self.finding(cfg, option="network_train_unet_only", origin=cfg.locate("network_module"),
                           severity="info" if explicit_te else None, te=counts["lora_te1"], unet=counts["lora_unet"])
