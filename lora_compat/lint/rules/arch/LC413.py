"""LC413 flux-network-args-refused: FLUX network_args that networks.lora_flux refuses at network creation."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts import flux
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register

# what the user most likely meant, per message sd-scripts raises
_HINTS = (
    ("invalid train_blocks", ": train_blocks is case-sensitive and takes all, single or double"),
    ("in_dims", ": in_dims is five ranks [img,time,vector,guidance,txt], 0 to skip one"),
    ("invalid literal for int()", ": a rank or block index is not an integer (where network_args is one "
                                  "space-separated string, write in_dims as [a,b,c,d,e] without spaces)"),
    ("index", ": block indices are 0-18 (double) and 0-37 (single), as all, none or a list such as 0,2-5"),
    ("range", ": a range is written start-end with start <= end"),
)


@register
class FluxNetworkArgsRefused(Rule):
    """sd-scripts refuses these FLUX ``network_args`` when it creates the LoRA network: training stops at start.

    ``networks.lora_flux.create_network`` parses its ``network_args`` strings itself: ``train_blocks`` must be
    exactly ``all``, ``single`` or ``double`` (an ``assert``; ``Single`` fails), ``in_dims`` must be five
    integers ``[img,time,vector,guidance,txt]``, ``train_double_block_indices`` / ``train_single_block_indices``
    take ``all``, ``none`` or indices and ranges within 0-18 / 0-37, and the per-type ranks (``img_attn_dim``
    ...) are ``int()``-parsed. Any other value raises an ``AssertionError`` or ``ValueError`` after the models
    are loaded. The finding quotes the error sd-scripts prints. Where ``network_args`` is one space-separated
    string (the kohya_ss GUI field, a command line), ``in_dims=[4, 4, 4, 4, 4]`` is cut at its spaces: write it
    without spaces.

    **Anti-pattern**

    ```toml
    network_module = "networks.lora_flux"
    network_train_unet_only = true
    network_args = ["train_blocks=Single"]
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora_flux"
    network_train_unet_only = true
    network_args = ["train_blocks=single"]
    ```
    """

    code, name, severity = "LC413", "arch.flux_network_args_refused", "error"
    groups = ("arch", "flux")
    summary = "FLUX network_args that networks.lora_flux refuses (train_blocks, in_dims, block indices): start fails."
    message = "network_args: sd-scripts stops creating the FLUX LoRA network with {error}{hint}"
    reference = ("sd-scripts networks/lora_flux.py create_network, LoRANetwork.__init__; "
                 "flux_train_network.py FluxNetworkTrainer")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not flux.uses_lora_flux(cfg) or flux.network_arg_problems(cfg):
            return
        err = flux.network_error(cfg, cache_text_encoder_outputs=False, apply_t5_attn_mask=True)
        if err is None:
            return
        text = str(err)
        hint = next((h for needle, h in _HINTS if needle in text), "")
        yield self.finding(cfg, option="network_args", error=err.sd_scripts_error, hint=hint)
