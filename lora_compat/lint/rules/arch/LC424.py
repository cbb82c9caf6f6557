"""LC424 flux-fine-tune-only-key: a key only flux_train.py (full fine-tuning) reads, in a FLUX LoRA config: ignored."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts import flux
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import last_key_part, truthy
from lora_compat.lint.registry import Rule, register


@register
class FluxFineTuneOnlyKey(Rule):
    """An option of sd-scripts' FLUX fine-tuning script in a LoRA config: flux_train_network.py ignores it.

    ``mem_eff_save``, ``blockwise_fused_optimizers``, ``fused_optimizer_groups``, ``skip_latents_validity_check``
    and the deprecated ``single_blocks_to_swap`` / ``double_blocks_to_swap`` are defined by ``flux_train.py``
    only. A ``--config_file`` TOML keeps any key without a word, so a LoRA run silently trains without them (the
    kohya_ss GUI writes some of them into every FLUX TOML); on a ``flux_train_network.py`` command line they
    are "unrecognized arguments". For LoRA training, ``blocks_to_swap`` is the memory option that works.

    **Anti-pattern**

    ```toml
    network_module = "networks.lora_flux"
    single_blocks_to_swap = 8
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora_flux"
    blocks_to_swap = 8
    ```
    """

    code, name, severity = "LC424", "arch.flux_fine_tune_only_key", "warning"
    groups = ("arch", "flux")
    summary = "A flux_train.py-only key (mem_eff_save, single_blocks_to_swap ...) in a FLUX LoRA config: ignored."
    message = ("{key} ({what}) is an option of flux_train.py (full fine-tuning) only: flux_train_network.py "
               "ignores it{hint}")
    reference = "sd-scripts flux_train.py setup_parser; library/train_util.py read_config_from_file"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not flux.is_flux(cfg):
            return
        for k in list(cfg.unknown_keys) + list(cfg.frontend_only):
            name = last_key_part(k.key)
            if name in flux.FINE_TUNE_ONLY and truthy(k.value):
                hint = "; use blocks_to_swap" if name.endswith("blocks_to_swap") else ""
                yield self.finding(cfg, origin=k.origin, key=k.key, what=flux.FINE_TUNE_ONLY[name], hint=hint)
