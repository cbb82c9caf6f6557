"""LC417 flux-network-arg-not-exact-true: split_qkv/train_t5xxl/verbose spelled true, 1, yes: silently off."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts import flux
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register

# networks.lora_flux switches compared with the exact string "True"
_SWITCHES = ("split_qkv", "train_t5xxl", "verbose")
_MEANT_ON = ("true", "1", "yes", "on", "t", "y")


@register
class FluxNetworkArgNotExactTrue(Rule):
    """A ``networks.lora_flux`` switch written ``true`` (or ``1``, ``yes``) is off: only the exact ``True`` works.

    ``network_args`` reach the network as strings, and ``networks.lora_flux.create_network`` compares
    ``split_qkv``, ``train_t5xxl`` and ``verbose`` with ``== "True"``. ``train_t5xxl=true`` therefore trains no
    T5 LoRA and ``split_qkv=true`` does not split, without a warning. (Derrian's UI writes a TOML boolean, which
    its backend passes as ``True``.)

    **Anti-pattern**

    ```toml
    network_module = "networks.lora_flux"
    network_args = ["train_t5xxl=true"]
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora_flux"
    network_args = ["train_t5xxl=True"]
    ```
    """

    code, name, severity = "LC417", "arch.flux_network_arg_not_exact_true", "warning"
    groups = ("arch", "flux")
    summary = "split_qkv / train_t5xxl / verbose not spelled exactly True in network_args: silently off."
    message = "network_args {arg}={value}: networks.lora_flux only accepts the exact string True, so {arg} is off"
    reference = "sd-scripts networks/lora_flux.py create_network"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not flux.uses_lora_flux(cfg):
            return
        args = flux.network_args(cfg)
        for arg in _SWITCHES:
            value = args.get(arg)
            if value is not None and value != "True" and value.strip().lower() in _MEANT_ON:
                yield self.finding(cfg, option="network_args", arg=arg, value=value)
