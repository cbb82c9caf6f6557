"""LC310 tag-occurrence-path: tag_occurrence_txt_file written as a path; it is a switch that writes tag counts."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import is_boolish, raw_value
from lora_compat.lint.registry import Rule, register


@register
class TagOccurrencePath(Rule):
    """Derrian's ``tag_occurrence_txt_file`` is a switch that *writes* tag counts; it does not weight the loss.

    A widely copied option table says: "tag_occurrence_txt_file — String. The path to a text file … used to weight the
    loss function". Wrong: it is a boolean; when on, the script writes ``<output_name>.txt`` with tag counts next to the
    model. Nothing in training reads such a file. A path string is merely truthy.

    **Anti-pattern**

    ```json
    {"tag_occurrence_txt_file": "/data/tag_weights.txt"}
    ```

    **Best practice**

    ```json
    {"tag_occurrence_txt_file": true}
    ```
    """

    code, name, severity = "LC310", "misconceptions.tag_occurrence_path", "warning"
    groups = ("misconceptions", "data")
    summary = "tag_occurrence_txt_file written as a path; it is a switch that writes tag counts."
    message = ("tag_occurrence_txt_file = {value!r}: it is an on/off switch that writes tag counts; nothing weights "
               "the loss")
    reference = "LoRA_Easy_Training_Scripts ArgsList.py"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        raw = raw_value(cfg, None, keys=("tag_occurrence_txt_file",))
        if raw is not None and isinstance(raw.value, str) and not is_boolish(raw.value) and raw.value:
            yield self.finding(cfg, origin=raw.origin, value=raw.value)
