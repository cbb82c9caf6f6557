"""LC102 unknown-key: A key no reader knows: sd-scripts or the front-end silently ignores it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register

# LC102 suggests a spelling for at most this many unknown keys per file
MAX_SPELLING_HINTS = 500


@register
class UnknownKey(Rule):
    """A key that no reader knows. It is kept and reported, never dropped silently.

    sd-scripts ignores unknown keys in a ``--config_file`` TOML without a word, and the kohya_ss GUI loader ignores
    unknown JSON keys  — so a typo such as ``netwrok_dim`` silently trains with the default. In a dataset config the
    same typo is a hard voluptuous error. The message suggests the closest known option.

    **Anti-pattern**

    ```toml
    netwrok_dim = 32
    ```

    **Best practice**

    ```toml
    network_dim = 32
    ```
    """

    code, name, severity = "LC102", "schema.unknown_key", "warning"
    groups = ("schema",)
    summary = "A key no reader knows: sd-scripts or the front-end silently ignores it."
    message = "unknown key {key!r}{hint}: it is ignored"
    reference = "sd-scripts library/train_util.py read_config_from_file; kohya_ss kohya_gui/common_gui.py"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        try:
            from lora_compat.config.options import option_names

            names = option_names()
        except (OSError, ValueError):
            names = []
        from lora_compat.lint.facts import flux

        for i, uk in enumerate(cfg.unknown_keys):
            last = uk.key.rsplit(".", 1)[-1].lstrip("-")
            if last in flux.FINE_TUNE_ONLY and flux.is_flux(cfg):
                continue   # LC424 names the script that reads it
            # ~1 ms per key: a generated file with 100k junk keys gets suggestions for the first ones only
            close = difflib.get_close_matches(last, names, n=1, cutoff=0.8) if i < MAX_SPELLING_HINTS else []
            if last in ("datasets", "general") and cfg.dialect == "sd-scripts-toml":
                # dataset tables next to training options: sd-scripts reads the file as a --config_file
                hint = (" (a --config_file's dataset tables are not read: put them in the file given as "
                        "dataset_config)")
            elif close and close[0] == last:
                # a real option at a place this dialect does not read it (e.g. top level of a Derrian TOML)
                hint = f" (an sd-scripts option, but a {cfg.dialect} file does not read it here)"
            else:
                hint = f" (did you mean {close[0]!r}?)" if close else ""
            yield self.finding(cfg, origin=uk.origin, key=uk.key, hint=hint)
