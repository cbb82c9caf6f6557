"""LC407 zero-terminal-snr-without-v-pred: zero_terminal_snr without v_parameterization."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import truthy
from lora_compat.lint.registry import Rule, register


@register
class ZeroTerminalSnrWithoutVPred(Rule):
    """``zero_terminal_snr`` without ``v_parameterization``.

    Rescaling the betas to zero terminal SNR makes the last timestep pure noise, which an ε-prediction target cannot
    learn; sd-scripts warns.

    **Anti-pattern**

    ```toml
    zero_terminal_snr = true
    ```

    **Best practice**

    ```toml
    zero_terminal_snr = true
    v_parameterization = true
    ```
    """

    code, name, severity = "LC407", "arch.zero_terminal_snr_without_v_pred", "warning"
    groups = ("arch", "noise")
    summary = "zero_terminal_snr without v_parameterization."
    message = "zero_terminal_snr without v_parameterization: the ε target is undefined at the terminal timestep"
    reference = "sd-scripts library/train_util.py add_training_arguments"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if truthy(cfg.get("zero_terminal_snr")) and not truthy(cfg.get("v_parameterization")):
            yield self.finding(cfg, option="zero_terminal_snr")
