"""LC103 schema-violation: A value breaks its option's schema (type, enum, range)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class SchemaViolation(Rule):
    """A canonical value breaks the option's schema (type, enum, minimum/maximum).

    The facts come from ``schemas/sd-scripts.schema.json`` through ``lora_compat.config.validate``; the finding
    names the key as written in your file. Values the reader already refused are reported by LC101 instead.

    **Anti-pattern**

    ```toml
    mixed_precision = "fp32"
    ```

    **Best practice**

    ```toml
    mixed_precision = "no"   # or "fp16" / "bf16"
    ```
    """

    code, name, severity = "LC103", "schema.schema_violation", "error"
    groups = ("schema",)
    summary = "A value breaks its option's schema (type, enum, range)."
    message = "{option}: {reason}"
    reference = "docs/options.md"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        from lora_compat.config.validate import validate_options

        try:
            problems = validate_options(cfg)
        except Exception:
            return
        seen = {(i.option, i.origin.key, i.origin.line) for i in cfg.invalid}
        for inv in problems or ():
            if (inv.option, inv.origin.key, inv.origin.line) in seen:
                continue
            seen.add((inv.option, inv.origin.key, inv.origin.line))
            yield self.finding(cfg, origin=inv.origin, option=inv.option, reason=inv.reason)
