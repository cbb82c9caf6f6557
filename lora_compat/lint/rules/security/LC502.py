"""LC502 network-module-not-allowlisted: network_module outside the known networks: sd-scripts would import it."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register

# Network modules sd-scripts (and LyCORIS) ship for SD/SDXL LoRA training (networks/*.py, LyCORIS lycoris/kohya.py).
KNOWN_NETWORK_MODULES = frozenset({
    "networks.lora", "networks.lora_fa", "networks.dylora", "networks.oft", "networks.loha", "networks.lokr",
    "networks.lora_sd3", "networks.lora_flux", "networks.oft_flux", "lycoris.kohya", "locon.locon_kohya",
})


@register
class NetworkModuleNotAllowlisted(Rule):
    """``network_module`` names a module outside the known LoRA networks.

    sd-scripts imports ``network_module`` with ``importlib``: a config can make the trainer run arbitrary code.
    lora-compat maps the known names (networks.lora, lora_fa, dylora, oft, loha, lokr, lycoris.kohya …) onto its own
    implementations and refuses everything else; it never imports a name from a config.

    **Anti-pattern**

    ```toml
    network_module = "my_tools.evil_lora"
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora"
    ```
    """

    code, name, severity = "LC502", "security.network_module_not_allowlisted", "error"
    groups = ("security",)
    summary = "network_module outside the known networks: sd-scripts would import it."
    message = ("network_module {value!r} is not a known LoRA network: sd-scripts would import and run it; "
               "lora-compat refuses")
    reference = "sd-scripts train_network.py NetworkTrainer.train, setup_parser, networks/*.py create_network"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("network_module")
        if not isinstance(v, str) or not v:
            return
        name = v[len("sd_scripts."):] if v.startswith("sd_scripts.") else v
        if name not in KNOWN_NETWORK_MODULES:
            yield self.finding(cfg, option="network_module", value=v)
