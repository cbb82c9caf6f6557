"""LC316 no-metadata-drops-training-info: no_metadata only strips ss_* training metadata from the saved LoRA."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import truthy
from lora_compat.lint.registry import Rule, register


@register
class NoMetadataDropsTrainingInfo(Rule):
    """``no_metadata`` (Derrian ``no_meta``) leaves the training settings out of the LoRA file.

    A widely copied option table says: "no_meta — exclude meta data (e.g. class labels, attributes) from the training
    process". Wrong: training is unchanged; the saved ``.safetensors`` just lacks most ``ss_*`` keys (dim, alpha,
    learning rates, tag frequencies …) that UIs and converters read.

    **Anti-pattern**

    ```json
    {"no_meta": true}
    ```

    **Best practice**

    ```json
    {"no_meta": false}
    ```
    """

    code, name, severity = "LC316", "misconceptions.no_metadata_drops_training_info", "info"
    groups = ("misconceptions", "outputs")
    summary = "no_metadata only strips ss_* training metadata from the saved LoRA."
    message = "{key} does not change training; it strips the ss_* training metadata from the saved LoRA"
    reference = "sd-scripts train_network.py setup_parser, NetworkTrainer.train"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if truthy(cfg.get("no_metadata")):
            o = cfg.locate("no_metadata")
            yield self.finding(cfg, option="no_metadata", key=o.key if o else "no_metadata")
