"""LC614 lycoris-constrain-renamed: network_args constrain= (old spelling of LyCORIS constraint=)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import kv_items
from lora_compat.lint.registry import Rule, register


@register
class LycorisConstrainRenamed(Rule):
    """LyCORIS ``constrain`` was renamed ``constraint``.

    kohya_ss emitted ``constrain=`` to LyCORIS until 2024-10-06 and Derrian's UI until 2024-07-26; current LyCORIS reads
    ``constraint``, so the old spelling is ignored.

    **Anti-pattern**

    ```toml
    network_args = ["algo=diag-oft", "constrain=0.0001"]
    ```

    **Best practice**

    ```toml
    network_args = ["algo=diag-oft", "constraint=0.0001"]
    ```
    """

    code, name, severity = "LC614", "network.lycoris_constrain_renamed", "warning"
    groups = ("network", "frontend_quirks")
    summary = "network_args constrain= (old spelling of LyCORIS constraint=)."
    message = "network_args 'constrain={v}' is the old spelling: current LyCORIS reads 'constraint'"
    reference = "kohya_ss kohya_gui/lora_gui.py; LoRA_Easy_Training_scripts_Backend utils/validation.py"
    note_codes = ("derrian-toml-constrain-misspelt", "kohya-gui-constrain-spelling")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for k, v in kv_items(cfg.get("network_args")):
            if k == "constrain":
                yield self.finding(cfg, option="network_args", v=v)
