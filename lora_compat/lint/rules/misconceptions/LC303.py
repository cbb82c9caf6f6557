"""LC303 clip-skip-boolean: clip_skip written as a boolean; it is a layer count (2 = penultimate)."""

from __future__ import annotations

from lora_compat.lint.query import is_boolish
from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import RawShapeRule


@register
class ClipSkipBoolean(RawShapeRule):
    """``clip_skip`` is a layer count, not a switch.

    A widely copied option table says: "clip_skip — True or False. Determines if the model should skip over clipped
    images". Wrong: ``clip_skip = k`` uses the k-th text-encoder layer from the end (2 = penultimate; 1 = the same as
    unset). A boolean is read as 1 or 0.

    **Anti-pattern**

    ```json
    {"clip_skip": true}
    ```

    **Best practice**

    ```json
    {"clip_skip": 2}
    ```
    """

    code, name, severity = "LC303", "misconceptions.clip_skip_boolean", "error"
    groups = ("misconceptions", "schema")
    summary = "clip_skip written as a boolean; it is a layer count (2 = penultimate)."
    message = "clip_skip = {value!r} is a layer count (1 = last layer, 2 = penultimate), not a switch"
    reference = "sd-scripts library/strategy_sd.py SdTextEncodingStrategy.encode_tokens"
    option = "clip_skip"

    def shaped(self, v: object) -> bool:
        return is_boolish(v)
