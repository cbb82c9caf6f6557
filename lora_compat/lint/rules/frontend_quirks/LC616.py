"""LC616 false-string: The string "False"/"True" where a value or flag is expected (truthy)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class FalseString(Rule):
    """The *string* ``"False"`` (or ``"True"``) where a value or flag is expected.

    A non-empty string is truthy: ``"False"`` in ``huggingface_repo_id``, ``resume_from_huggingface`` or
    ``metadata_author`` (seen in kohya_ss ``TI-AdamW8bit-SDXL.json``) is passed on as a repo id / author / flag.

    **Anti-pattern**

    ```json
    {"huggingface_repo_id": "False"}
    ```

    **Best practice**

    ```json
    {"huggingface_repo_id": ""}
    ```
    """

    code, name, severity = "LC616", "frontend_quirks.false_string", "warning"
    groups = ("frontend_quirks", "schema")
    summary = "The string \"False\"/\"True\" where a value or flag is expected (truthy)."
    message = "{key} = {value!r} is a non-empty string, so it counts as set/true"
    reference = "kohya_ss kohya_gui/lora_gui.py"
    note_codes = ("kohya-gui-truthy-string",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for name, s in cfg.options.items():
            o = s.prov.origin
            raw = o.raw if o is not None and o.raw is not None else s.value
            if isinstance(raw, str) and raw in ("False", "false", "True", "true") and not isinstance(s.value, bool):
                yield self.finding(cfg, option=name, key=o.key if o else name, value=raw)
