"""LC426 flux-split-mode-deprecated: split_mode is deprecated; flux_train_network.py turns it into blocks_to_swap."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts import flux
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, truthy
from lora_compat.lint.registry import Rule, register


@register
class FluxSplitModeDeprecated(Rule):
    """``split_mode`` is deprecated: sd-scripts swaps 18 blocks instead (or ignores it when ``blocks_to_swap`` is set).

    ``--split_mode`` once split the FLUX model to train single blocks on small GPUs and required the network
    argument ``train_blocks=single``. Its help now says "[Deprecated] ... use `--blocks_to_swap` instead", and
    ``flux_train_network.py`` (``FluxNetworkTrainer.assert_extra_args``) only warns and sets
    ``blocks_to_swap = 18`` when ``blocks_to_swap`` is unset; when it is set, ``split_mode`` is ignored. The split
    model itself is gone (``load_target_model`` keeps the call commented out). The assignment comes after the
    ``blocks_to_swap`` × ``cpu_offload_checkpointing`` assertion, so ``split_mode`` with
    ``cpu_offload_checkpointing`` starts where an explicit ``blocks_to_swap`` would be refused.

    What remains of the old recipe is ``train_blocks=single``, which still restricts the LoRA to the single
    blocks (the kohya_ss GUI's split_mode box adds it to ``network_args``). Write ``blocks_to_swap`` instead and
    keep ``train_blocks=single`` only if training the single blocks alone is what you want.

    **Anti-pattern**

    ```toml
    network_module = "networks.lora_flux"
    split_mode = true
    network_args = ["train_blocks=single"]
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora_flux"
    blocks_to_swap = 18
    ```
    """

    code, name, severity = "LC426", "arch.flux_split_mode_deprecated", "warning"
    groups = ("arch", "flux")
    summary = "FLUX split_mode is deprecated: flux_train_network.py sets blocks_to_swap 18 (ignored if set)."
    message = "split_mode is deprecated: {effect}{blocks}"
    reference = "sd-scripts flux_train_network.py FluxNetworkTrainer.assert_extra_args, setup_parser"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not flux.is_flux(cfg) or not truthy(cfg.get("split_mode")):
            return
        from lora_compat.arch.flux import split_mode_blocks_to_swap

        swap = cfg.get("blocks_to_swap")
        if swap is not None:
            n = as_number(swap)
            effect = (f"blocks_to_swap {n:g} is set, so sd-scripts ignores split_mode" if n is not None else
                      "blocks_to_swap is set, so sd-scripts ignores split_mode")
        else:
            effect = (f"sd-scripts sets blocks_to_swap {split_mode_blocks_to_swap(None, True)} instead (block "
                      "swapping; the split model is gone); write blocks_to_swap")
        blocks = ""
        if flux.uses_lora_flux(cfg) and flux.network_args(cfg).get("train_blocks", "").strip() == "single":
            blocks = "; network_args train_blocks=single still trains the single blocks only"
        yield self.finding(cfg, option="split_mode", effect=effect, blocks=blocks)
