"""LC615 xformers-boolean-legacy: kohya_ss xformers as a boolean (pre-2023-08 form)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding, Fix
from lora_compat.lint.query import raw_value
from lora_compat.lint.registry import Rule, register


@register
class XformersBooleanLegacy(Rule):
    """kohya_ss ``xformers`` is a string since 2023-08: ``"xformers"``, ``"sdpa"`` or ``"none"``.

    Older files store a boolean, which the loader maps (``true`` -> ``"xformers"``, ``false`` -> ``"none"``). The fix
    writes the string the loader would use.

    **Anti-pattern**

    ```json
    {"xformers": true}
    ```

    **Best practice**

    ```json
    {"xformers": "xformers"}
    ```
    """

    code, name, severity = "LC615", "frontend_quirks.xformers_boolean_legacy", "info"
    groups = ("frontend_quirks",)
    summary = "kohya_ss xformers as a boolean (pre-2023-08 form)."
    message = "xformers = {value!r} is the pre-2023-08 form: write {new!r}"
    reference = "kohya_ss kohya_gui/lora_gui.py"
    fixable = True
    note_codes = ("kohya-gui-xformers-bool",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.dialect != "kohya-gui":
            return
        r = raw_value(cfg, "xformers", keys=("xformers",))
        if r is None or not isinstance(r.value, bool) or r.origin is None:
            return
        new = "xformers" if r.value else "none"
        fix = Fix(f"write xformers as {new!r}", r.origin.file, r.origin.key, value=new, line=r.origin.line)
        yield self.finding(cfg, origin=r.origin, fix=fix, value=r.value, new=new)
