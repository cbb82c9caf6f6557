"""LC422 flux-blocks-to-swap-with-cpu-offload: blocks_to_swap with cpu_offload_checkpointing: asserts."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts import flux
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, truthy
from lora_compat.lint.registry import Rule, register


@register
class FluxBlocksToSwapWithCpuOffload(Rule):
    """``blocks_to_swap`` together with ``cpu_offload_checkpointing``: sd-scripts refuses to start a FLUX run.

    Both move work between CPU and GPU to save VRAM, and ``flux_train_network.py``
    (``FluxNetworkTrainer.assert_extra_args``) asserts that only one is used: ``blocks_to_swap is not supported
    with cpu_offload_checkpointing``. A ``blocks_to_swap`` of 0 counts as off. Keep one of them (block swapping
    saves more).

    **Anti-pattern**

    ```toml
    network_module = "networks.lora_flux"
    blocks_to_swap = 18
    cpu_offload_checkpointing = true
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora_flux"
    blocks_to_swap = 18
    ```
    """

    code, name, severity = "LC422", "arch.flux_blocks_to_swap_with_cpu_offload", "error"
    groups = ("arch", "flux")
    summary = "FLUX blocks_to_swap with cpu_offload_checkpointing: flux_train_network.py asserts (no start)."
    message = ("blocks_to_swap {n:g} with cpu_offload_checkpointing: sd-scripts raises AssertionError: "
               "blocks_to_swap is not supported with cpu_offload_checkpointing")
    reference = "sd-scripts flux_train_network.py FluxNetworkTrainer.assert_extra_args"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not flux.is_flux(cfg) or not truthy(cfg.get("cpu_offload_checkpointing")):
            return
        n = as_number(cfg.get("blocks_to_swap"))
        if n:
            yield self.finding(cfg, option="cpu_offload_checkpointing", n=n)
