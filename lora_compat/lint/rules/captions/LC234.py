"""LC234 caption-extension-default: caption_extension empty/unset: sd-scripts reads .caption files, not .txt."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import raw_value, subset_scopes
from lora_compat.lint.registry import Rule, register


@register
class CaptionExtensionDefault(Rule):
    """Without ``caption_extension`` sd-scripts looks for ``.caption`` files, not ``.txt``.

    sd-scripts' default is ``.caption``. The kohya_ss GUI writes ``.txt`` by default, but an *empty*
    ``caption_extension`` in a GUI file emits nothing, so sd-scripts falls back to ``.caption``. Missing caption files
    are only a warning: training runs with empty captions (or the class tokens).

    **Anti-pattern**

    ```json
    {"caption_extension": ""}
    ```

    **Best practice**

    ```json
    {"caption_extension": ".txt"}
    ```
    """

    code, name, severity = "LC234", "captions.caption_extension_default", "warning"
    groups = ("captions",)
    summary = "caption_extension empty/unset: sd-scripts reads .caption files, not .txt."
    message = "caption_extension is {how}: sd-scripts looks for '.caption' files (not '.txt')"
    reference = "sd-scripts library/train_util.py add_dataset_arguments; kohya_ss kohya_gui/lora_gui.py"
    note_codes = ("kohya-gui-caption-extension-empty",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        raw = raw_value(cfg, "caption_extension", keys=("caption_extension", "caption_extention"))
        if raw is not None and raw.value == "":
            yield self.finding(cfg, origin=raw.origin, option="caption_extension", how="empty")
            return
        if raw is not None or cfg.get("in_json") or cfg.dialect not in ("sd-scripts-toml", "command-line"):
            return
        if any(sc.value(cfg, "caption_extension") for sc in subset_scopes(cfg)):
            return
        if cfg.datasets or cfg.get("train_data_dir"):
            yield self.finding(cfg, option="caption_extension", severity="info", how="not set")
