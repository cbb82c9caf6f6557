"""LC601 misspelled-legacy-key: caption_extention / cache_latent: old misspelled keys."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import RENAME, Finding, Fix
from lora_compat.lint.query import raw_value
from lora_compat.lint.registry import Rule, register


@register
class MisspelledLegacyKey(Rule):
    """A misspelled key from an old front-end version (``caption_extention``, ``cache_latent``).

    sd-scripts still accepts ``--caption_extention`` as an alias; the kohya_ss GUI renamed
    ``cache_latent``/``caption_extention`` on 2023-01-15 and its loader does not migrate them — a current GUI ignores
    the old key. The fix renames the key in place.

    **Anti-pattern**

    ```json
    {"caption_extention": ".txt", "cache_latent": true}
    ```

    **Best practice**

    ```json
    {"caption_extension": ".txt", "cache_latents": true}
    ```
    """

    code, name, severity = "LC601", "frontend_quirks.misspelled_legacy_key", "warning"
    groups = ("frontend_quirks", "schema")
    summary = "caption_extention / cache_latent: old misspelled keys."
    message = "{key!r} is an old misspelling of {good!r}"
    reference = "sd-scripts library/train_util.py add_dataset_arguments; kohya_ss kohya_gui/lora_gui.py"
    fixable = True

    RENAMES: ClassVar[dict[str, str]] = {"caption_extention": "caption_extension", "cache_latent": "cache_latents"}

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for bad, good in self.RENAMES.items():
            raw = raw_value(cfg, None, keys=(bad,))
            if raw is None or raw.origin is None:
                continue
            fix = Fix(f"rename {bad} to {good}", raw.origin.file, raw.origin.key, action=RENAME, new_key=good,
                      line=raw.origin.line)
            yield self.finding(cfg, origin=raw.origin, fix=fix, key=bad, good=good)
