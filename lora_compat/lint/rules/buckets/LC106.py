"""LC106 resolution-not-string: resolution in a --config_file TOML is not a string (sd-scripts calls .split on it)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding, Fix
from lora_compat.lint.query import parse_resolution, raw_value
from lora_compat.lint.registry import Rule, register


@register
class ResolutionNotString(Rule):
    """In an sd-scripts ``--config_file`` TOML, ``resolution`` must be a string.

    TOML values are not converted by argparse; ``prepare_dataset_args`` calls ``resolution.split(",")``, so an int or an
    array crashes sd-scripts before training. The fix writes the same resolution as a string.

    **Anti-pattern**

    ```toml
    resolution = 1024
    ```

    **Best practice**

    ```toml
    resolution = "1024,1024"
    ```
    """

    code, name, severity = "LC106", "buckets.resolution_not_string", "error"
    groups = ("buckets",)
    summary = "resolution in a --config_file TOML is not a string (sd-scripts calls .split on it)."
    message = "resolution = {value!r} must be a string such as \"{w},{h}\" in an sd-scripts TOML"
    reference = "sd-scripts library/train_util.py add_*_arguments, read_config_from_file, prepare_dataset_args"
    fixable = True

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.dialect != "sd-scripts-toml":
            return
        raw = raw_value(cfg, "resolution")
        if raw is None or isinstance(raw.value, str) or raw.origin is None:
            return
        res = parse_resolution(raw.value)
        if res is None:
            return
        w, h = res
        fix = Fix(f'write resolution as the string "{w},{h}"', raw.origin.file, raw.origin.key, value=f"{w},{h}",
                  line=raw.origin.line)
        yield self.finding(cfg, origin=raw.origin, fix=fix, value=raw.value, w=w, h=h)
