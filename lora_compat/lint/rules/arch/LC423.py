"""LC423 flux-schnell-t5-token-length: t5xxl_max_token_length 512 on FLUX.1 schnell, which uses 256."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts import flux
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number
from lora_compat.lint.registry import Rule, register

SCHNELL_T5_TOKENS = 256   # flux_train_network.py get_tokenize_strategy: None -> 256 for schnell, 512 for dev


@register
class FluxSchnellT5TokenLength(Rule):
    """``t5xxl_max_token_length`` above 256 on FLUX.1 schnell: schnell was distilled with 256 T5 tokens.

    When the option is not set, ``flux_train_network.py`` (``get_tokenize_strategy``) uses 256 tokens for
    schnell (a checkpoint without ``guidance_in``) and 512 for dev. The kohya_ss GUI and Derrian's UI always
    write 512, so a schnell LoRA trains with captions padded to twice what schnell saw in distillation and what
    inference tools feed it. Leave the option unset (or 256) for schnell. The value is not recorded in the
    LoRA's metadata. Schnell is recognised from the base model's name.

    **Anti-pattern**

    ```toml
    pretrained_model_name_or_path = "flux1-schnell.safetensors"
    network_module = "networks.lora_flux"
    t5xxl_max_token_length = 512
    ```

    **Best practice**

    ```toml
    pretrained_model_name_or_path = "flux1-schnell.safetensors"
    network_module = "networks.lora_flux"
    ```
    """

    code, name, severity = "LC423", "arch.flux_schnell_t5_token_length", "warning"
    groups = ("arch", "flux")
    summary = "t5xxl_max_token_length above 256 on FLUX.1 schnell (sd-scripts' schnell default is 256)."
    message = ("t5xxl_max_token_length {value:g} on FLUX.1 schnell (base model {model!r}): sd-scripts uses 256 "
               "for schnell when the option is unset")
    reference = "sd-scripts flux_train_network.py FluxNetworkTrainer.get_tokenize_strategy"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not flux.is_schnell(cfg):
            return
        value = as_number(cfg.get("t5xxl_max_token_length"))
        if value is not None and value > SCHNELL_T5_TOKENS:
            yield self.finding(cfg, option="t5xxl_max_token_length", value=value,
                               model=cfg.get("pretrained_model_name_or_path"))
