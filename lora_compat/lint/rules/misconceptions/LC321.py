"""LC321 output-name-boolean: change_output_name/output_name written as a boolean; it is the file name."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import raw_as_written
from lora_compat.lint.registry import Rule, register


@register
class OutputNameBoolean(Rule):
    """Derrian's ``change_output_name`` is the output file name, not a switch.

    A widely copied option table says: "change_output_name — Boolean. Specifies whether to change the output name".
    Wrong: it is the string passed as ``output_name``. ``true`` names your LoRA ``True.safetensors``.

    **Anti-pattern**

    ```json
    {"change_output_name": true}
    ```

    **Best practice**

    ```json
    {"change_output_name": "mychar_v1"}
    ```
    """

    code, name, severity = "LC321", "misconceptions.output_name_boolean", "error"
    groups = ("misconceptions", "outputs")
    summary = "change_output_name/output_name written as a boolean; it is the file name."
    message = "{key} = {value!r} is the output file name, not a switch"
    reference = "LoRA_Easy_Training_Scripts ArgsList.py"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        raw = raw_as_written(cfg, "output_name", "change_output_name")
        if raw is not None and isinstance(raw.value, bool):
            key = raw.origin.key if raw.origin else "output_name"
            yield self.finding(cfg, origin=raw.origin, option="output_name", key=key, value=raw.value)
