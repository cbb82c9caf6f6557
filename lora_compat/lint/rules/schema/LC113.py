"""LC113 duplicate-key: A JSON key or command-line option is written twice: the last value silently wins."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class DuplicateKey(Rule):
    """A key (JSON) or option (command line) is written twice: only the last value counts.

    Python's ``json.load`` — used by the kohya_ss GUI and Derrian's scripts to read presets — silently keeps the last of
    two equal keys, and sd-scripts' argparse stores every option (none is an ``append`` action), so a repeated
    ``--network_dim`` on a command line also keeps the last value. A hand-edited preset with two ``network_dim`` lines,
    or a ``.bat`` that appends a second ``--learning_rate``, trains with a value the author may not be looking at. TOML
    needs no rule: a repeated TOML key is a syntax error.

    **Anti-pattern**

    ```json
    {"network_dim": 32,
     "network_alpha": 16,
     "network_dim": 128}
    ```

    **Best practice**

    ```json
    {"network_dim": 32,
     "network_alpha": 16}
    ```
    """

    code, name, severity = "LC113", "schema.duplicate_key", "warning"
    groups = ("schema",)
    summary = "A JSON key or command-line option is written twice: the last value silently wins."
    message = "{detail}"
    reference = "sd-scripts library/train_util.py read_config_from_file; kohya_ss kohya_gui/common_gui.py"
    note_codes = ("duplicate-key",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for n in self.claimed_notes(cfg):
            yield self.finding(cfg, origin=n.origin, detail=n.message)
