"""LC604 locon-external-module: network_module locon.locon_kohya: the superseded 2023 LoCon package."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class LoconExternalModule(Rule):
    """``locon.locon_kohya`` is the 2023 stand-alone LoCon package, superseded by LyCORIS.

    The kohya_ss GUI used it from 2023-03-02 to 03-09, then switched to ``lycoris.kohya`` with ``algo=locon``; Derrian
    A2.1 used ``locon.locon.locon_kohya``.

    **Anti-pattern**

    ```toml
    network_module = "locon.locon_kohya"
    ```

    **Best practice**

    ```toml
    network_module = "lycoris.kohya"
    network_args = ["algo=locon", "conv_dim=8", "conv_alpha=4"]
    ```
    """

    code, name, severity = "LC604", "network.locon_external_module", "warning"
    groups = ("network", "frontend_quirks")
    summary = "network_module locon.locon_kohya: the superseded 2023 LoCon package."
    message = "network_module {value!r} is the superseded 2023 LoCon package: use lycoris.kohya with algo=locon"
    reference = "kohya_ss kohya_gui/lora_gui.py; LoRA_Easy_Training_Scripts ArgsList.py"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("network_module")
        if isinstance(v, str) and v.startswith("locon."):
            yield self.finding(cfg, option="network_module", value=v)
