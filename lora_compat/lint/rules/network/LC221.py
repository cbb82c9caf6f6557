"""LC221 network-dropout-not-peft-dropout."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, network_arg
from lora_compat.lint.registry import Rule, register


@register
class NetworkDropoutNotPeftDropout(Rule):
    """kohya ``network_dropout`` is not PEFT's ``lora_dropout``.

    ``network_dropout`` drops the *rank activations* after ``lora_down`` (inverted dropout), while PEFT's
    ``lora_dropout`` drops the *input* before ``lora_A``; ``rank_dropout``/``module_dropout`` have no PEFT equivalent at
    all. A migrated run with PEFT dropout trains differently; lora-compat's engine reproduces kohya semantics with its
    own layer.

    **Anti-pattern**

    ```toml
    network_dropout = 0.1   # expecting PEFT lora_dropout=0.1
    ```

    **Best practice**

    ```toml
    network_dropout = 0.1   # knowingly kohya neuron dropout (rank activations)
    ```
    """

    code, name, severity = "LC221", "network.network_dropout_not_peft_dropout", "info"
    groups = ("network",)
    summary = "network_dropout/rank_dropout/module_dropout are not PEFT lora_dropout semantics."
    message = "{opt} = {v:g} is kohya {kind}, not PEFT lora_dropout (which drops the input)"
    reference = "sd-scripts networks/lora.py LoRAModule.forward"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = as_number(cfg.get("network_dropout"))
        if v:
            yield self.finding(cfg, option="network_dropout", opt="network_dropout", v=v,
                               kind="neuron dropout on the rank activations")
        for k in ("rank_dropout", "module_dropout"):
            nv = as_number(network_arg(cfg, k))
            if nv:
                yield self.finding(cfg, option="network_args", opt=k, v=nv,
                                   kind="rank dropout (rescaled)" if k == "rank_dropout" else "whole-module dropout")
