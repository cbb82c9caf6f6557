"""LC1xx — types and schema: values sd-scripts cannot use, keys nobody reads, malformed argument lists."""

from __future__ import annotations

import ast
import difflib
from typing import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.config.secrets import redact
from lora_compat.lint.finding import Finding, Fix
from lora_compat.lint.query import kv_items, parse_resolution, raw_value
from lora_compat.lint.registry import Rule, register

# Accepted by transformers' SchedulerType but crash inside sd-scripts' catch-all call (reference §4.11).
CRASHING_SCHEDULERS = frozenset({"reduce_lr_on_plateau", "cosine_warmup_with_min_lr"})


# LC102 suggests a spelling for at most this many unknown keys per file
MAX_SPELLING_HINTS = 500


def _short(v: object, limit: int = 60) -> str:
    s = repr(v)
    return s if len(s) <= limit else s[: limit - 3] + "..."


@register
class InvalidValue(Rule):
    """A value could not be converted to the type or range of its option.

    The reader keeps such values aside (``cfg.invalid``) instead of guessing. sd-scripts would either crash at
    start (argparse error, ``AssertionError``) or, worse, run with a value that means something else: a
    ``--config_file`` TOML is not type-checked at all (sd-scripts-reference.md §2.1, §12 item 2).

    **Anti-pattern**

    ```json
    {"network_dim": "abc", "learning_rate": "1e-4x"}
    ```

    **Best practice**

    ```json
    {"network_dim": 32, "learning_rate": 0.0001}
    ```
    """

    code, name, severity = "LC101", "invalid-value", "error"
    summary = "A value cannot be converted to its option's type or range."
    message = "{value} cannot be used for {option}: {reason}"
    reference = "sd-scripts-reference.md §2.1, §2.3"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for inv in cfg.invalid:
            shown = redact(inv.origin.key, inv.value)
            yield self.finding(cfg, origin=inv.origin, value=_short(shown), option=inv.option, reason=inv.reason)


@register
class UnknownKey(Rule):
    """A key that no reader knows. It is kept and reported, never dropped silently.

    sd-scripts ignores unknown keys in a ``--config_file`` TOML without a word (sd-scripts-reference.md §2.1),
    and the kohya_ss GUI loader ignores unknown JSON keys (legacy-dialects.md §2.1) — so a typo such as
    ``netwrok_dim`` silently trains with the default. In a dataset config the same typo is a hard voluptuous
    error (§3.1). The message suggests the closest known option.

    **Anti-pattern**

    ```toml
    netwrok_dim = 32
    ```

    **Best practice**

    ```toml
    network_dim = 32
    ```
    """

    code, name, severity = "LC102", "unknown-key", "warning"
    summary = "A key no reader knows: sd-scripts or the front-end silently ignores it."
    message = "unknown key {key!r}{hint}: it is ignored"
    reference = "sd-scripts-reference.md §2.1; legacy-dialects.md §2.1"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        try:
            from lora_compat.config.options import option_names

            names = option_names()
        except (OSError, ValueError):
            names = []
        for i, uk in enumerate(cfg.unknown_keys):
            last = uk.key.rsplit(".", 1)[-1].lstrip("-")
            # ~1 ms per key: a generated file with 100k junk keys gets suggestions for the first ones only
            close = difflib.get_close_matches(last, names, n=1, cutoff=0.8) if i < MAX_SPELLING_HINTS else []
            if close and close[0] == last:
                # a real option at a place this dialect does not read it (e.g. top level of a Derrian TOML)
                hint = f" (an sd-scripts option, but a {cfg.dialect} file does not read it here)"
            else:
                hint = f" (did you mean {close[0]!r}?)" if close else ""
            yield self.finding(cfg, origin=uk.origin, key=uk.key, hint=hint)


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

    code, name, severity = "LC103", "schema-violation", "error"
    summary = "A value breaks its option's schema (type, enum, range)."
    message = "{option}: {reason}"
    reference = "schemas/sd-scripts.schema.json"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        try:
            from lora_compat.config.validate import validate_options
        except ImportError:
            return
        try:
            problems = validate_options(cfg)
        except Exception:  # noqa: BLE001 - a validator bug must not break lint; LC101 still reports
            return
        seen = {(i.option, i.origin.key, i.origin.line) for i in cfg.invalid}
        for inv in problems or ():
            if (inv.option, inv.origin.key, inv.origin.line) in seen:
                continue
            seen.add((inv.option, inv.origin.key, inv.origin.line))
            yield self.finding(cfg, origin=inv.origin, option=inv.option, reason=inv.reason)


@register
class MaxTokenLengthInvalid(Rule):
    """``max_token_length`` must be 75 (i.e. unset), 150 or 225.

    sd-scripts cuts captions into chunks of 75 CLIP tokens: ``max_length = max_token_length + 2`` and the ids are
    split into ``(max_length - 2) / 75`` chunks (sd-scripts-reference.md §4.5.2). The command line accepts only
    150 and 225; from a TOML 75 behaves like unset. Any other number breaks the chunking. Seed 003 claimed that
    "captions that exceed this length will be skipped" — they are truncated, never skipped.

    **Anti-pattern**

    ```json
    {"max_clip_token_length": 200}
    ```

    **Best practice**

    ```json
    {"max_clip_token_length": 225}
    ```
    """

    code, name, severity = "LC104", "max-token-length-invalid", "error"
    summary = "max_token_length is not 75, 150 or 225."
    message = "max_token_length = {value}: sd-scripts only supports 75 (unset), 150 or 225 tokens"
    reference = "sd-scripts-reference.md §1.4, §4.5.2, §9"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("max_token_length")
        if v is None or isinstance(v, bool):
            return
        if v not in (75, 150, 225):
            yield self.finding(cfg, option="max_token_length", value=v)


@register
class WarmupFloatSteps(Rule):
    """A float ``lr_warmup_steps`` (or ``lr_decay_steps``) of 1.0 or more.

    sd-scripts decides the unit by the Python type: an int is a number of steps, a float is a *ratio* of the
    total steps, ``W = int(lr_warmup_steps × max_train_steps × num_processes)`` (sd-scripts-reference.md §4.11).
    ``100.0`` in a TOML therefore means "warm up for 100 × the whole run": the learning rate never leaves the
    warmup ramp. On the command line ``1.0`` is even an argparse error (§1.13 E28).

    **Anti-pattern**

    ```toml
    lr_warmup_steps = 100.0
    ```

    **Best practice**

    ```toml
    lr_warmup_steps = 100     # steps
    # or
    lr_warmup_steps = 0.05    # 5 % of the run
    ```
    """

    code, name, severity = "LC105", "warmup-float-steps", "error"
    summary = "A float warmup/decay value >= 1.0 is a ratio of the whole run, not a step count."
    message = "{option} = {value!r} is a float, which sd-scripts reads as a ratio: {pct:.0f}% of all steps"
    reference = "sd-scripts-reference.md §1.5, §4.11, §12 item 2"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for option in ("lr_warmup_steps", "lr_decay_steps"):
            v = cfg.get(option)
            if isinstance(v, float) and v >= 1.0:
                yield self.finding(cfg, option=option, value=v, pct=v * 100)


@register
class ResolutionNotString(Rule):
    """In an sd-scripts ``--config_file`` TOML, ``resolution`` must be a string.

    TOML values are not converted by argparse; ``prepare_dataset_args`` calls ``resolution.split(",")``, so an
    int or an array crashes sd-scripts before training (sd-scripts-reference.md §1, §2.3, §1.13 E4). The fix
    writes the same resolution as a string.

    **Anti-pattern**

    ```toml
    resolution = 1024
    ```

    **Best practice**

    ```toml
    resolution = "1024,1024"
    ```
    """

    code, name, severity = "LC106", "resolution-not-string", "error"
    summary = "resolution in a --config_file TOML is not a string (sd-scripts calls .split on it)."
    message = "resolution = {value!r} must be a string such as \"{w},{h}\" in an sd-scripts TOML"
    reference = "sd-scripts-reference.md §1, §2.3, §1.13 E4"
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


@register
class ArgsNotPythonLiterals(Rule):
    """``optimizer_args`` / ``lr_scheduler_args`` items must be ``key=value`` with a Python literal value.

    sd-scripts splits each item on *every* ``=`` and parses the value with ``ast.literal_eval``
    (sd-scripts-reference.md §1.5, §1.13 E19): strings must be quoted, ``betas=0.9,0.999`` becomes a tuple, and
    an item without ``=`` or with a second ``=`` raises before training starts. (lora-compat checks this with
    ``ast.literal_eval`` too, which evaluates literals only and never runs code.)

    **Anti-pattern**

    ```toml
    optimizer_type = "Prodigy"
    optimizer_args = ["weight_decay", "d_coef=two", "betas=(0.9,0.99)=x"]
    ```

    **Best practice**

    ```toml
    optimizer_type = "Prodigy"
    optimizer_args = ["weight_decay=0.01", "d_coef=2", "betas=0.9,0.99"]
    ```
    """

    code, name, severity = "LC107", "args-not-python-literals", "error"
    summary = "optimizer_args/lr_scheduler_args items that sd-scripts cannot parse."
    message = "{option} item {item!r}: {reason}"
    reference = "sd-scripts-reference.md §1.5, §1.13 E19"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for option in ("optimizer_args", "lr_scheduler_args"):
            v = cfg.get(option)
            if isinstance(v, dict):      # Derrian objects/tables: values are strings written verbatim
                items = [f"{k}={val}" for k, val in v.items()]
            elif isinstance(v, str):
                items = v.split()
            elif isinstance(v, (list, tuple)):
                items = [str(x) for x in v]
            else:
                continue
            for item in items:
                if "=" not in item:
                    reason = "not key=value"
                elif item.count("=") > 1:
                    reason = "more than one '=' (sd-scripts splits on every '=')"
                else:
                    value = item.split("=", 1)[1]
                    try:
                        ast.literal_eval(value)
                        continue
                    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                        reason = "the value is not a Python literal (quote strings: key='text')"
                yield self.finding(cfg, option=option, item=item, reason=reason)


@register
class NetworkArgsMalformed(Rule):
    """Every ``network_args`` item must be ``key=value``.

    sd-scripts splits each item on the first ``=`` and hands the value to the network module as a *string*
    (sd-scripts-reference.md §1.7, §6.8). An item without ``=`` stops training with a ``ValueError``.

    **Anti-pattern**

    ```toml
    network_args = ["conv_dim 8"]
    ```

    **Best practice**

    ```toml
    network_args = ["conv_dim=8", "conv_alpha=4"]
    ```
    """

    code, name, severity = "LC108", "network-args-malformed", "error"
    summary = "A network_args item is not key=value."
    message = "network_args item {item!r} is not key=value"
    reference = "sd-scripts-reference.md §1.7, §6.8"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for k, v in kv_items(cfg.get("network_args")):
            if v is None and k:
                yield self.finding(cfg, option="network_args", item=k)


@register
class PrecisionValueInvalid(Rule):
    """``save_precision`` must be float/fp16/bf16 and ``mixed_precision`` no/fp16/bf16.

    Both are strings with fixed choices (sd-scripts-reference.md §1.4). A ``--config_file`` TOML skips argparse's
    ``choices`` check (§2.1), so a typo like ``"fp32"`` reaches the code: ``save_precision`` then falls through to
    "keep the training dtype" and ``mixed_precision`` is refused by accelerate.

    **Anti-pattern**

    ```toml
    mixed_precision = "fp32"
    save_precision = "half"
    ```

    **Best practice**

    ```toml
    mixed_precision = "bf16"
    save_precision = "fp16"
    ```
    """

    code, name, severity = "LC109", "precision-value-invalid", "error"
    summary = "save_precision / mixed_precision is not one of sd-scripts' choices."
    message = "{option} = {value!r} is not one of {choices}"
    reference = "sd-scripts-reference.md §1.4, §2.1"

    CHOICES = {"save_precision": ("float", "fp16", "bf16"), "mixed_precision": ("no", "fp16", "bf16")}

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for option, choices in self.CHOICES.items():
            v = cfg.get(option)
            raw = raw_value(cfg, option)
            # numbers and booleans as written are misconceptions, reported by LC308/LC309
            if raw is not None and (isinstance(raw.value, (bool, int, float))
                                    or (isinstance(raw.value, str) and raw.value.strip().isdigit())):
                continue
            if isinstance(v, str) and v not in choices:
                yield self.finding(cfg, option=option, value=v, choices=", ".join(choices))


@register
class UnknownLrScheduler(Rule):
    """``lr_scheduler`` is not a scheduler sd-scripts can build.

    sd-scripts has no argparse choices for ``lr_scheduler``: the name goes to transformers' ``SchedulerType``
    (unknown names raise ``ValueError``), ``piecewise_constant`` to diffusers, ``adafactor`` to the Adafactor
    schedule. ``reduce_lr_on_plateau`` and ``cosine_warmup_with_min_lr`` pass the name check but crash with a
    ``TypeError`` in sd-scripts' catch-all call (sd-scripts-reference.md §4.11).

    **Anti-pattern**

    ```toml
    lr_scheduler = "cosine_restart"   # a typo: "cosine_with_restarts"
    ```

    **Best practice**

    ```toml
    lr_scheduler = "cosine_with_restarts"
    ```
    """

    code, name, severity = "LC110", "unknown-lr-scheduler", "error"
    summary = "lr_scheduler names no scheduler sd-scripts can build."
    message = "lr_scheduler = {value!r}: {reason}"
    reference = "sd-scripts-reference.md §1.5, §4.11, §1.13 E20"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        from lora_compat.lint.rules.lc3_misconceptions import FOREIGN_SCHEDULERS

        v = cfg.get("lr_scheduler")
        if not isinstance(v, str) or not v:
            return
        from lora_compat.semantics import SCHEDULER_NAMES   # the one list of names sd-scripts can build

        name = v.split(":", 1)[0]
        if name in SCHEDULER_NAMES or v.lower() in FOREIGN_SCHEDULERS:
            return   # foreign (PyTorch/Keras) names are the LC314 misconception
        if name in CRASHING_SCHEDULERS:
            reason = "accepted by transformers but sd-scripts' scheduler call fails with TypeError"
        else:
            close = difflib.get_close_matches(name, sorted(SCHEDULER_NAMES), n=1, cutoff=0.6)
            reason = "unknown scheduler (ValueError at start)" + (f"; did you mean {close[0]!r}?" if close else "")
        yield self.finding(cfg, option="lr_scheduler", value=v, reason=reason)


@register
class FaceCropRangeInvalid(Rule):
    """``face_crop_aug_range`` must be two numbers ``"lo,hi"`` with lo <= hi.

    sd-scripts parses it into a float tuple and asserts two values with ``lo <= hi``
    (sd-scripts-reference.md §1.3, §1.13 E5).

    **Anti-pattern**

    ```toml
    face_crop_aug_range = "3.0,2.0"
    ```

    **Best practice**

    ```toml
    face_crop_aug_range = "2.0,4.0"
    ```
    """

    code, name, severity = "LC111", "face-crop-range-invalid", "error"
    summary = "face_crop_aug_range is not two numbers lo <= hi."
    message = "face_crop_aug_range = {value!r}: {reason}"
    reference = "sd-scripts-reference.md §1.3, §1.13 E5"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        from lora_compat.lint.query import subset_scopes

        for sc in subset_scopes(cfg):
            v = sc.value(cfg, "face_crop_aug_range")
            if v is None or v == "":
                continue
            parts = v.split(",") if isinstance(v, str) else list(v) if isinstance(v, (list, tuple)) else [v]
            try:
                nums = [float(p) for p in parts]
            except (TypeError, ValueError, OverflowError):
                nums = []
            if len(nums) != 2:
                reason = "needs exactly two numbers"
            elif nums[0] > nums[1]:
                reason = "lo > hi"
            else:
                continue
            yield self.finding(cfg, origin=sc.origin(cfg, "face_crop_aug_range"), option="face_crop_aug_range",
                               value=v, reason=reason)


@register
class SaveModelAsUnsupported(Rule):
    """``save_model_as`` must be safetensors, ckpt or pt.

    train_network.py accepts only ``ckpt``, ``pt`` and ``safetensors`` (sd-scripts-reference.md §1.7). The docs'
    ``diffusers``/``diffusers_safetensors`` do not exist for LoRA training (§9), and seed 003's ``bin`` was never a
    choice. From a TOML the bad value is not rejected by argparse and ends up as the file extension.

    **Anti-pattern**

    ```json
    {"save_as": "bin"}
    ```

    **Best practice**

    ```json
    {"save_as": "safetensors"}
    ```
    """

    code, name, severity = "LC112", "save-model-as-unsupported", "error"
    summary = "save_model_as is not safetensors, ckpt or pt."
    message = "save_model_as = {value!r} is not supported for LoRA training (use safetensors)"
    reference = "sd-scripts-reference.md §1.7, §9"
    fixable = True

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("save_model_as")
        if isinstance(v, str) and v and v not in ("safetensors", "ckpt", "pt"):
            o = cfg.locate("save_model_as")
            fix = Fix("save as safetensors", o.file, o.key, value="safetensors", line=o.line) if o else None
            yield self.finding(cfg, option="save_model_as", fix=fix, value=v)


@register
class DuplicateKey(Rule):
    """A key (JSON) or option (command line) is written twice: only the last value counts.

    Python's ``json.load`` — used by the kohya_ss GUI and Derrian's scripts to read presets — silently keeps the
    last of two equal keys, and sd-scripts' argparse stores every option (none is an ``append`` action), so a
    repeated ``--network_dim`` on a command line also keeps the last value (sd-scripts-reference.md §2.1 for
    how configs are read; legacy-dialects.md §2.1 for the GUI loader). A hand-edited preset with two
    ``network_dim`` lines, or a ``.bat`` that appends a second ``--learning_rate``, trains with a value the
    author may not be looking at. TOML needs no rule: a repeated TOML key is a syntax error.

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

    code, name, severity = "LC113", "duplicate-key", "warning"
    summary = "A JSON key or command-line option is written twice: the last value silently wins."
    message = "{detail}"
    reference = "sd-scripts-reference.md §2.1; legacy-dialects.md §2.1"
    note_codes = ("duplicate-key",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for n in self.claimed_notes(cfg):
            yield self.finding(cfg, origin=n.origin, detail=n.message)
