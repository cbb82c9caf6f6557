"""LC2xx — semantics and interactions: settings that sd-scripts ignores, overrides, or refuses in combination."""

from __future__ import annotations

import math
from typing import Iterable

from lora_compat.config.model import DEFAULT, DERIVED, CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import (
    as_number, dataset_scopes, effective, get_str, first_text_encoder_lr, has_reg_images, kv_items, network_arg,
    parse_resolution, raw_value, subset_scopes, truthy,
)
from lora_compat.lint.registry import Rule, register


def _module(cfg: CanonicalConfig) -> str:
    m = get_str(cfg, "network_module") or "networks.lora"
    return m[len("sd_scripts."):] if m.startswith("sd_scripts.") else m


def _dim(cfg: CanonicalConfig) -> float | None:
    d = as_number(cfg.get("network_dim"))
    return 4.0 if d is None else d     # networks.lora/dylora use 4 for None (reference §1.7)


def _optimizer(cfg: CanonicalConfig) -> str:
    if truthy(cfg.get("use_8bit_adam")):
        return "adamw8bit"
    if truthy(cfg.get("use_lion_optimizer")):
        return "lion"
    return (get_str(cfg, "optimizer_type") or "AdamW").lower()


def _warmup(cfg: CanonicalConfig) -> tuple[float | int | None, bool]:
    """(warmup value, is_ratio). A Python float is a ratio, an int a step count (reference §4.11)."""
    v = cfg.get("lr_warmup_steps")
    if v is None or isinstance(v, bool):
        return None, False
    if isinstance(v, float):
        return (v, True) if math.isfinite(v) else (None, False)
    if isinstance(v, int):
        return v, False
    n = as_number(v)
    return n, False


def _warmup_nonzero(cfg: CanonicalConfig) -> bool:
    w, is_ratio = _warmup(cfg)
    if w is None:
        return False
    # a ratio gives int(ratio x total steps): treat anything that is not ~0 as a real warmup (no int() overflow)
    return abs(w) >= 1e-6 if is_ratio else w != 0


def _adafactor_relative_step(cfg: CanonicalConfig) -> bool:
    """Adafactor with relative_step on (its default, or forced by warmup_init=True) (reference §4.10)."""
    if _optimizer(cfg) != "adafactor":
        return False
    args = {k: (v or "").strip("'\"") for k, v in kv_items(cfg.get("optimizer_args"))}
    return args.get("relative_step", "True") == "True" or args.get("warmup_init") == "True"


def _explicit(cfg: CanonicalConfig, name: str) -> bool:
    """Set by the user (not filled from a front-end default or derived)."""
    s = cfg.options.get(name)
    return s is not None and s.prov.kind not in (DEFAULT, DERIVED)


@register
class AlphaGreaterThanDim(Rule):
    """``network_alpha`` larger than ``network_dim`` multiplies every LoRA update by more than 1.

    kohya's LoRA output is ``up(down(x)) · alpha / dim`` (sd-scripts-reference.md §5, §6.3). With alpha > dim the
    scale exceeds 1, which acts like a larger learning rate and makes training unstable; most recipes use
    alpha <= dim (alpha = dim gives scale 1, alpha = dim/2 gives 0.5).

    **Anti-pattern**

    ```toml
    network_dim = 8
    network_alpha = 64    # scale 8.0
    ```

    **Best practice**

    ```toml
    network_dim = 32
    network_alpha = 16    # scale 0.5
    ```
    """

    code, name, severity = "LC201", "alpha-greater-than-dim", "warning"
    summary = "network_alpha > network_dim: LoRA updates are scaled up (scale = alpha/dim > 1)."
    message = "network_alpha {alpha:g} > network_dim {dim:g}: every LoRA update is multiplied by {scale:g}"
    reference = "sd-scripts-reference.md §5, §6.3"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if truthy(cfg.get("dim_from_weights")) or _module(cfg) == "networks.oft":
            return
        alpha = as_number(cfg.get("network_alpha"))
        dim = _dim(cfg)
        if alpha is not None and dim and alpha > dim:
            yield self.finding(cfg, option="network_alpha", alpha=alpha, dim=dim, scale=alpha / dim)


@register
class AlphaDefaultOne(Rule):
    """``network_alpha`` is 1 with a large ``network_dim``: the LoRA is scaled down by ``1/dim``.

    sd-scripts' default alpha is the int 1, not ``dim`` (sd-scripts-reference.md §1.7, §12 item 1). With dim 64
    every update is multiplied by 1/64, so the LoRA learns about 64× slower than a PEFT/diffusers run where
    people usually set ``lora_alpha = r``. This is the most common reason for "my LoRA barely changes anything"
    (peers-and-users.md §1f #43). When the alpha is only sd-scripts' default the finding is a warning; when the
    file sets 1 explicitly it is informational (some recipes do that on purpose and raise the learning rate).

    Seen in the wild: kohya-ss/sd-scripts#146 (LoRAs "barely different" after alpha got its default 1),
    bmaltais/kohya_ss#1919.

    **Anti-pattern**

    ```toml
    network_dim = 64
    # network_alpha left out -> 1
    ```

    **Best practice**

    ```toml
    network_dim = 64
    network_alpha = 32
    ```
    """

    code, name, severity = "LC202", "alpha-default-one", "warning"
    summary = "network_alpha is 1 (sd-scripts' default) with a large network_dim: scale 1/dim."
    message = "network_alpha is {how} with network_dim {dim:g}: every LoRA update is scaled by 1/{dim:g} = {scale:.4g}"
    reference = "sd-scripts-reference.md §1.7, §6.5, §12 item 1"

    MIN_DIM = 16

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if truthy(cfg.get("dim_from_weights")) or _module(cfg) == "networks.oft":
            return
        dim = _dim(cfg)
        if not dim or dim < self.MIN_DIM:
            return
        if "network_alpha" in cfg.options:
            if as_number(cfg.get("network_alpha")) == 1:
                yield self.finding(cfg, option="network_alpha", severity="info", how="1", dim=dim, scale=1 / dim)
        elif effective(cfg, "network_alpha") == 1:
            yield self.finding(cfg, option="network_dim", how="not set (sd-scripts' default 1)", dim=dim,
                               scale=1 / dim)


@register
class WarmupPercentBelowOne(Rule):
    """kohya_ss GUI ``lr_warmup`` is a *percent* (0–100); a value below 1 looks like a ratio and is lost.

    The GUI field is "LR warmup (% of total steps)" (legacy-dialects.md §2.4). A value such as ``0.05`` (meant as
    5 %) is 0.05 % — and the GUI's loader coerces it with ``int()`` to 0, so warmup is disabled (§2.1).

    Seen in the wild: derrian-distro/LoRA_Easy_Training_Scripts#272 (does warmup 0.05 mean 5 %?).

    **Anti-pattern**

    ```json
    {"lr_warmup": 0.05}
    ```

    **Best practice**

    ```json
    {"lr_warmup": 5}
    ```
    """

    code, name, severity = "LC203", "warmup-percent-below-one", "warning"
    summary = "kohya_ss lr_warmup (a percent) is between 0 and 1: it looks like a ratio and becomes 0."
    message = "lr_warmup = {value!r} is a percent in the kohya_ss GUI: {value} % (int() makes it 0), not {pct:g} %"
    reference = "legacy-dialects.md §2.1, §2.4, §5 item 1"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.dialect != "kohya-gui":
            return
        raw = raw_value(cfg, None, keys=("lr_warmup",))
        n = as_number(raw.value) if raw else None
        if raw is not None and n is not None and 0 < n < 1:
            yield self.finding(cfg, origin=raw.origin, option="lr_warmup_steps", value=raw.value, pct=n * 100)


@register
class WarmupExceedsTraining(Rule):
    """The warmup is as long as (or longer than) the whole run.

    With warmup steps ``W >= max_train_steps`` the learning rate is still ramping up when training stops: the
    run never reaches the configured learning rate (sd-scripts-reference.md §4.11). Typical causes: a percent
    written where steps were expected, or a step count copied from a longer recipe.

    **Anti-pattern**

    ```toml
    max_train_steps = 400
    lr_scheduler = "cosine"
    lr_warmup_steps = 500
    ```

    **Best practice**

    ```toml
    max_train_steps = 400
    lr_scheduler = "cosine"
    lr_warmup_steps = 40      # or 0.1 (10 %)
    ```
    """

    code, name, severity = "LC204", "warmup-exceeds-training", "warning"
    summary = "The warmup lasts as long as the whole run."
    message = "warmup of {w} steps >= max_train_steps {n}: the learning rate never reaches its target"
    reference = "sd-scripts-reference.md §4.11"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        w, is_ratio = _warmup(cfg)
        if w is None or is_ratio or w <= 0 or cfg.get("max_train_epochs"):
            return
        n = as_number(effective(cfg, "max_train_steps"))
        if n and w >= n:
            yield self.finding(cfg, option="lr_warmup_steps", w=int(w), n=int(n))


def _caption_branch_runs(cfg: CanonicalConfig, sc) -> bool:
    """The shuffle/warmup/tag-dropout branch of process_caption (reference §4.4.1 step 4)."""
    return (truthy(sc.value(cfg, "shuffle_caption", False))
            or (as_number(sc.value(cfg, "token_warmup_step", 0)) or 0) > 0
            or (as_number(sc.value(cfg, "caption_tag_dropout_rate", 0)) or 0) > 0)


@register
class KeepTokensNoEffect(Rule):
    """``keep_tokens`` does nothing without caption shuffling, tag dropout or token warmup.

    ``keep_tokens`` protects the first N comma-separated *tags* from shuffling and tag dropout. The caption is only
    split into tags when ``shuffle_caption``, ``caption_tag_dropout_rate > 0`` or ``token_warmup_step > 0`` is set;
    otherwise it is used verbatim and ``keep_tokens`` has no effect (sd-scripts-reference.md §4.4.1 step 4, §1.12).

    **Anti-pattern**

    ```toml
    keep_tokens = 1
    shuffle_caption = false
    ```

    **Best practice**

    ```toml
    keep_tokens = 1
    shuffle_caption = true
    ```
    """

    code, name, severity = "LC205", "keep-tokens-no-effect", "warning"
    summary = "keep_tokens without shuffle_caption, tag dropout or token warmup has no effect."
    message = "keep_tokens = {n}{where} has no effect: no shuffle_caption, caption_tag_dropout_rate or token_warmup_step"
    reference = "sd-scripts-reference.md §1.12, §4.4.1"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if truthy(cfg.get("cache_text_encoder_outputs")) and cfg.is_sdxl:
            return   # captions are not processed at all (LC212)
        for sc in subset_scopes(cfg):
            n = as_number(sc.value(cfg, "keep_tokens", 0)) or 0
            if n > 0 and not _caption_branch_runs(cfg, sc):
                yield self.finding(cfg, origin=sc.origin(cfg, "keep_tokens"), option="keep_tokens",
                                   n=int(n), where=sc.where)


@register
class KeepTokensSeparatorLiteral(Rule):
    """``keep_tokens_separator`` without shuffling/tag dropout/warmup stays *in the caption text*.

    The separator (e.g. ``|||``) is only consumed when captions are split into tags; without shuffle, tag dropout
    or token warmup the caption is used as written and the separator string is tokenized literally
    (sd-scripts-reference.md §4.4.1 step 4, §12 item 4).

    **Anti-pattern**

    ```toml
    keep_tokens_separator = "|||"
    shuffle_caption = false
    ```

    **Best practice**

    ```toml
    keep_tokens_separator = "|||"
    shuffle_caption = true
    ```
    """

    code, name, severity = "LC206", "keep-tokens-separator-literal", "warning"
    summary = "keep_tokens_separator without the shuffle branch stays literally in captions."
    message = "keep_tokens_separator {sep!r}{where} is never consumed (no shuffle/tag dropout/warmup): it stays in the caption text"
    reference = "sd-scripts-reference.md §4.4.1, §12 item 4"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in subset_scopes(cfg):
            sep = sc.value(cfg, "keep_tokens_separator", "")
            if isinstance(sep, str) and sep and not _caption_branch_runs(cfg, sc):
                yield self.finding(cfg, origin=sc.origin(cfg, "keep_tokens_separator"),
                                   option="keep_tokens_separator", sep=sep, where=sc.where)


@register
class KeepTokensWithSeparator(Rule):
    """``keep_tokens`` is ignored for every caption that contains ``keep_tokens_separator``.

    When the separator appears in a caption, the part before it is the fixed part and ``keep_tokens`` is not used
    for that caption (sd-scripts-reference.md §4.4.1 step 4.1, §1.12). Setting both usually means one of them is
    redundant or the captions are inconsistent.

    **Anti-pattern**

    ```toml
    keep_tokens = 2
    keep_tokens_separator = "|||"
    ```

    **Best practice**

    ```toml
    keep_tokens_separator = "|||"   # captions: "trigger, style ||| tag1, tag2"
    ```
    """

    code, name, severity = "LC207", "keep-tokens-with-separator", "info"
    summary = "keep_tokens is ignored for captions that contain keep_tokens_separator."
    message = "keep_tokens = {n}{where} is ignored for captions containing keep_tokens_separator {sep!r}"
    reference = "sd-scripts-reference.md §1.12, §4.4.1"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in subset_scopes(cfg):
            n = as_number(sc.value(cfg, "keep_tokens", 0)) or 0
            sep = sc.value(cfg, "keep_tokens_separator", "")
            if n > 0 and isinstance(sep, str) and sep:
                yield self.finding(cfg, origin=sc.origin(cfg, "keep_tokens"), option="keep_tokens", n=int(n),
                                   sep=sep, where=sc.where)


@register
class CaptionDropoutEveryNEpochs(Rule):
    """``caption_dropout_every_n_epochs`` drops **all** captions in every N-th epoch — and more often than that.

    It is not "how often dropout is performed": in epochs where ``epoch % N == 0`` every caption is empty.
    Epochs are 1-based but lag inside DataLoader workers: with non-persistent workers (the default) the first
    batch of each worker in *every* epoch sees epoch 0, and ``0 % N == 0``, so those batches lose their captions
    too (sd-scripts-reference.md §4.4.1 step 2, §4.4.4, §12 item 5). Prefer ``caption_dropout_rate``.

    **Anti-pattern**

    ```toml
    caption_dropout_every_n_epochs = 2
    ```

    **Best practice**

    ```toml
    caption_dropout_rate = 0.05
    ```
    """

    code, name, severity = "LC208", "caption-dropout-every-n-epochs", "warning"
    summary = "caption_dropout_every_n_epochs empties ALL captions every N epochs (plus first batches, by lag)."
    message = "caption_dropout_every_n_epochs = {n}{where} trains whole epochs without captions (and each worker's first batch of every epoch)"
    reference = "sd-scripts-reference.md §4.4.1, §4.4.4, §12 item 5"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in subset_scopes(cfg):
            n = as_number(sc.value(cfg, "caption_dropout_every_n_epochs", 0)) or 0
            if n > 0:
                yield self.finding(cfg, origin=sc.origin(cfg, "caption_dropout_every_n_epochs"),
                                   option="caption_dropout_every_n_epochs", n=int(n), where=sc.where)


@register
class CacheLatentsWithAugmentation(Rule):
    """``cache_latents`` cannot be combined with ``color_aug`` or ``random_crop``.

    Cached latents are computed once, so per-step pixel augmentations are impossible: sd-scripts asserts that no
    subset uses ``color_aug`` or ``random_crop`` when latents are cached (sd-scripts-reference.md §0 step 5.10,
    §1.13 E11). ``flip_aug`` is fine (flipped latents are cached too, §9).

    **Anti-pattern**

    ```toml
    cache_latents = true
    color_aug = true
    ```

    **Best practice**

    ```toml
    cache_latents = true
    flip_aug = true
    ```
    """

    code, name, severity = "LC209", "cache-latents-with-augmentation", "error"
    summary = "cache_latents with color_aug or random_crop: sd-scripts asserts."
    message = "{aug}{where} cannot be used with cache_latents: sd-scripts stops with an AssertionError"
    reference = "sd-scripts-reference.md §1.3, §1.13 E11"
    note_codes = ("derrian-a2-random-crop-with-cache", "derrian-a1-color-aug-aborts")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not (truthy(cfg.get("cache_latents")) or truthy(cfg.get("cache_latents_to_disk"))):
            return
        for sc in subset_scopes(cfg):
            for aug in ("color_aug", "random_crop"):
                if truthy(sc.value(cfg, aug, False)):
                    yield self.finding(cfg, origin=sc.origin(cfg, aug), option=aug, aug=aug, where=sc.where)


def _te_cache(cfg: CanonicalConfig) -> bool:
    return cfg.is_sdxl and (truthy(cfg.get("cache_text_encoder_outputs"))
                            or truthy(cfg.get("cache_text_encoder_outputs_to_disk")))


@register
class CacheTeOutputsCaptionRandomness(Rule):
    """SDXL ``cache_text_encoder_outputs`` forbids caption shuffling, caption/tag dropout and token warmup.

    The text encoders run once per caption, so per-step caption changes are impossible. sd-scripts asserts that
    no subset has ``shuffle_caption``, ``caption_dropout_rate > 0``, ``caption_tag_dropout_rate > 0`` or
    ``token_warmup_step > 0`` (sd-scripts-reference.md §1.11, §1.13 E14).

    **Anti-pattern**

    ```toml
    # sdxl_train_network.py
    cache_text_encoder_outputs = true
    network_train_unet_only = true
    shuffle_caption = true
    ```

    **Best practice**

    ```toml
    # sdxl_train_network.py
    cache_text_encoder_outputs = true
    network_train_unet_only = true
    shuffle_caption = false
    ```
    """

    code, name, severity = "LC210", "cache-te-outputs-caption-randomness", "error"
    summary = "SDXL cache_text_encoder_outputs with shuffle/caption dropout/tag dropout/token warmup: asserts."
    message = "{opt}{where} cannot be used with cache_text_encoder_outputs: sd-scripts stops with an AssertionError"
    reference = "sd-scripts-reference.md §1.11, §1.13 E14"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not _te_cache(cfg):
            return
        for sc in subset_scopes(cfg):
            for opt in ("shuffle_caption", "caption_dropout_rate", "caption_tag_dropout_rate", "token_warmup_step"):
                v = sc.value(cfg, opt, 0)
                if (truthy(v) if opt == "shuffle_caption" else (as_number(v) or 0) > 0):
                    yield self.finding(cfg, origin=sc.origin(cfg, opt), option=opt, opt=opt, where=sc.where)


@register
class CacheTeOutputsNeedsUnetOnly(Rule):
    """SDXL ``cache_text_encoder_outputs`` requires ``network_train_unet_only``.

    Cached text-encoder outputs cannot carry gradients into a text-encoder LoRA, so sd-scripts asserts
    ``network_train_unet_only`` (sd-scripts-reference.md §1.11, §1.13 E15).

    **Anti-pattern**

    ```toml
    # sdxl_train_network.py
    cache_text_encoder_outputs = true
    text_encoder_lr = 5e-5
    ```

    **Best practice**

    ```toml
    # sdxl_train_network.py
    cache_text_encoder_outputs = true
    network_train_unet_only = true
    ```
    """

    code, name, severity = "LC211", "cache-te-outputs-needs-unet-only", "error"
    summary = "SDXL cache_text_encoder_outputs without network_train_unet_only: asserts."
    message = "cache_text_encoder_outputs requires network_train_unet_only (the text encoders cannot be trained from a cache)"
    reference = "sd-scripts-reference.md §1.11, §1.13 E15"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if _te_cache(cfg) and not truthy(cfg.get("network_train_unet_only")):
            opt = "cache_text_encoder_outputs" if "cache_text_encoder_outputs" in cfg.options \
                else "cache_text_encoder_outputs_to_disk"
            yield self.finding(cfg, option=opt)


@register
class CacheTeOutputsIgnoresCaptionOptions(Rule):
    """With SDXL ``cache_text_encoder_outputs`` caption processing never runs: these caption options are ignored.

    The raw caption is encoded once; ``process_caption`` is never called, so ``caption_prefix``,
    ``caption_suffix``, wildcards, ``secondary_separator``, ``keep_tokens_separator`` and
    ``caption_dropout_every_n_epochs`` are silently ignored (sd-scripts-reference.md §4.4.5, §12 item 15).

    **Anti-pattern**

    ```toml
    # sdxl_train_network.py
    cache_text_encoder_outputs = true
    network_train_unet_only = true
    caption_prefix = "mychar"
    ```

    **Best practice**

    ```toml
    # sdxl_train_network.py
    cache_text_encoder_outputs = true
    network_train_unet_only = true
    # write "mychar" into the caption files instead
    ```
    """

    code, name, severity = "LC212", "cache-te-outputs-ignores-caption-options", "warning"
    summary = "SDXL cache_text_encoder_outputs silently ignores prefix/suffix/wildcards/separators."
    message = "{opt}{where} is ignored: with cache_text_encoder_outputs captions are encoded raw, never processed"
    reference = "sd-scripts-reference.md §4.4.5, §12 item 15"

    OPTIONS = ("caption_prefix", "caption_suffix", "enable_wildcard", "secondary_separator",
               "keep_tokens_separator", "caption_dropout_every_n_epochs")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not _te_cache(cfg):
            return
        for sc in subset_scopes(cfg):
            for opt in self.OPTIONS:
                v = sc.value(cfg, opt)
                if truthy(v) and (as_number(v) is None or as_number(v) > 0):
                    yield self.finding(cfg, origin=sc.origin(cfg, opt), option=opt, opt=opt, where=sc.where)


@register
class BucketResoStepsMultiple(Rule):
    """``bucket_reso_steps`` must be a multiple of 64 (SD1/SD2) or 32 (SDXL) when bucketing is on.

    sd-scripts asserts ``bucket_reso_steps % 64 == 0`` in train_network.py and ``% 32 == 0`` in
    sdxl_train_network.py (sd-scripts-reference.md §1.3, §1.13 E12).

    **Anti-pattern**

    ```toml
    enable_bucket = true
    bucket_reso_steps = 32     # SD1.5
    ```

    **Best practice**

    ```toml
    enable_bucket = true
    bucket_reso_steps = 64
    ```
    """

    code, name, severity = "LC213", "bucket-reso-steps-multiple", "error"
    summary = "bucket_reso_steps is not a multiple of 64 (SD1/SD2) or 32 (SDXL)."
    message = "bucket_reso_steps = {v}{where} is not a multiple of {m} ({arch}): sd-scripts stops with an AssertionError"
    reference = "sd-scripts-reference.md §1.3, §1.13 E12"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not cfg.is_sd_family:
            return  # the 64/32 asserts are train_network.py's and sdxl_train_network.py's
        # a bare dataset config does not say which script reads it: only 32 (valid for neither) is certain
        m = 32 if (cfg.is_sdxl or cfg.dialect == "sd-scripts-dataset") else 64
        for sc in dataset_scopes(cfg):
            if not truthy(sc.value(cfg, "enable_bucket", False)):
                continue
            v = as_number(sc.value(cfg, "bucket_reso_steps"))
            if v is None or v < 8:
                continue   # tiny values are the LC318 misconception
            if v % m:
                yield self.finding(cfg, origin=sc.origin(cfg, "bucket_reso_steps"), option="bucket_reso_steps",
                                   v=int(v), m=m, arch=cfg.arch().upper(), where=sc.where)


@register
class BucketRangeVsResolution(Rule):
    """The bucket range must contain the training resolution.

    With bucketing on, sd-scripts rounds ``min_bucket_reso`` down and ``max_bucket_reso`` up to multiples of
    ``bucket_reso_steps`` and asserts ``min(resolution) >= min_bucket_reso`` and
    ``max(resolution) <= max_bucket_reso`` (sd-scripts-reference.md §1.3, §1.13 E8) — even with
    ``bucket_no_upscale``.

    **Anti-pattern**

    ```toml
    resolution = "1024,1024"
    enable_bucket = true
    max_bucket_reso = 768
    ```

    **Best practice**

    ```toml
    resolution = "1024,1024"
    enable_bucket = true
    min_bucket_reso = 256
    max_bucket_reso = 2048
    ```
    """

    code, name, severity = "LC214", "bucket-range-vs-resolution", "error"
    summary = "min/max_bucket_reso do not contain the resolution: sd-scripts asserts."
    message = "{what}{where}: sd-scripts stops with an AssertionError"
    reference = "sd-scripts-reference.md §1.3, §1.13 E8"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in dataset_scopes(cfg):
            if not truthy(sc.value(cfg, "enable_bucket", False)):
                continue
            res = parse_resolution(sc.value(cfg, "resolution"))
            steps = as_number(sc.value(cfg, "bucket_reso_steps")) or as_number(effective(cfg, "bucket_reso_steps")) or 64
            lo = as_number(sc.value(cfg, "min_bucket_reso"))
            hi = as_number(sc.value(cfg, "max_bucket_reso"))
            lo = lo if lo is not None else as_number(effective(cfg, "min_bucket_reso"))
            hi = hi if hi is not None else as_number(effective(cfg, "max_bucket_reso"))
            if steps <= 0 or lo is None or hi is None:
                continue
            lo_adj = math.floor(lo / steps) * steps
            hi_adj = math.ceil(hi / steps) * steps
            if lo_adj > hi_adj:
                yield self.finding(cfg, origin=sc.origin(cfg, "min_bucket_reso"), option="min_bucket_reso",
                                   what=f"min_bucket_reso {lo:g} > max_bucket_reso {hi:g}", where=sc.where)
                continue
            if res is None:
                continue
            if min(res) < lo_adj:
                yield self.finding(cfg, origin=sc.origin(cfg, "min_bucket_reso") or sc.origin(cfg, "resolution"),
                                   option="min_bucket_reso",
                                   what=f"resolution {res[0]}x{res[1]} is below min_bucket_reso {lo_adj:g}",
                                   where=sc.where)
            if max(res) > hi_adj:
                yield self.finding(cfg, origin=sc.origin(cfg, "max_bucket_reso") or sc.origin(cfg, "resolution"),
                                   option="max_bucket_reso",
                                   what=f"resolution {res[0]}x{res[1]} is above max_bucket_reso {hi_adj:g}",
                                   where=sc.where)


@register
class TextEncoderLrIgnoredUnetOnly(Rule):
    """``text_encoder_lr`` is ignored with ``network_train_unet_only``.

    With ``network_train_unet_only`` no text-encoder LoRA modules are created (sd-scripts-reference.md §1.7), so a
    text-encoder learning rate has nothing to train.

    **Anti-pattern**

    ```toml
    network_train_unet_only = true
    text_encoder_lr = 5e-5
    ```

    **Best practice**

    ```toml
    network_train_unet_only = true
    ```
    """

    code, name, severity = "LC215", "text-encoder-lr-ignored-unet-only", "warning"
    summary = "text_encoder_lr with network_train_unet_only: nothing uses it."
    message = "text_encoder_lr = {lr:g} is ignored: network_train_unet_only creates no text-encoder LoRA"
    reference = "sd-scripts-reference.md §1.7"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        lr = first_text_encoder_lr(cfg.get("text_encoder_lr"))
        if lr and truthy(cfg.get("network_train_unet_only")):
            yield self.finding(cfg, option="text_encoder_lr", lr=lr)


_CYCLE_SCHEDULERS = ("cosine_with_restarts", "cosine_with_min_lr", "warmup_stable_decay")


@register
class SchedulerIgnoresNumCycles(Rule):
    """``lr_scheduler_num_cycles`` only matters for cosine_with_restarts, cosine_with_min_lr and warmup_stable_decay.

    Plain ``cosine`` fixes its cycles at 0.5 and ignores the option; every other scheduler ignores it too
    (sd-scripts-reference.md §1.5, §4.11). ``cosine_with_min_lr`` and ``warmup_stable_decay`` use it *divided by
    two*. Seed 003 described Derrian's ``cosine_restarts`` as "the number of times the schedule should restart"
    for any scheduler.

    **Anti-pattern**

    ```toml
    lr_scheduler = "cosine"
    lr_scheduler_num_cycles = 3
    ```

    **Best practice**

    ```toml
    lr_scheduler = "cosine_with_restarts"
    lr_scheduler_num_cycles = 3
    ```
    """

    code, name, severity = "LC216", "scheduler-ignores-num-cycles", "warning"
    summary = "lr_scheduler_num_cycles with a scheduler that ignores it."
    message = "lr_scheduler_num_cycles = {n:g} is ignored by lr_scheduler {sched!r}"
    reference = "sd-scripts-reference.md §1.5, §4.11"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        n = as_number(cfg.get("lr_scheduler_num_cycles"))
        sched = effective(cfg, "lr_scheduler") or "constant"
        if (n is not None and n != 1 and _explicit(cfg, "lr_scheduler_num_cycles") and not cfg.get("lr_scheduler_type")
                and sched not in _CYCLE_SCHEDULERS):
            yield self.finding(cfg, option="lr_scheduler_num_cycles", n=n, sched=sched)


@register
class SchedulerIgnoresPower(Rule):
    """``lr_scheduler_power`` is used only by the ``polynomial`` scheduler.

    Every other scheduler ignores it (sd-scripts-reference.md §1.5, §4.11). Seed 003 described Derrian's
    ``scheduler_power`` as a general "the learning rate changes more slowly" knob.

    **Anti-pattern**

    ```toml
    lr_scheduler = "cosine"
    lr_scheduler_power = 2
    ```

    **Best practice**

    ```toml
    lr_scheduler = "polynomial"
    lr_scheduler_power = 2
    ```
    """

    code, name, severity = "LC217", "scheduler-ignores-power", "warning"
    summary = "lr_scheduler_power with a scheduler other than polynomial."
    message = "lr_scheduler_power = {p:g} is ignored by lr_scheduler {sched!r} (polynomial only)"
    reference = "sd-scripts-reference.md §1.5, §4.11"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        p = as_number(cfg.get("lr_scheduler_power"))
        sched = effective(cfg, "lr_scheduler") or "constant"
        if (p is not None and p != 1 and _explicit(cfg, "lr_scheduler_power") and not cfg.get("lr_scheduler_type")
                and sched != "polynomial"):
            yield self.finding(cfg, option="lr_scheduler_power", p=p, sched=sched)


@register
class WarmupWithConstantScheduler(Rule):
    """Warmup with ``constant``, ``adafactor`` or a custom ``lr_scheduler_type`` stops sd-scripts.

    ``get_scheduler_fix`` raises ``ValueError`` when the warmup resolves to a non-zero step count for these
    schedulers (sd-scripts-reference.md §4.11, §1.13 E20). Use ``constant_with_warmup`` for a warmup followed by
    a constant learning rate. Adafactor with ``relative_step=True`` (its default) *replaces* whatever scheduler
    you chose with ``adafactor:<lr>`` (§4.10), so a warmup fails there too.

    **Anti-pattern**

    ```toml
    lr_scheduler = "constant"
    lr_warmup_steps = 100
    ```

    **Best practice**

    ```toml
    lr_scheduler = "constant_with_warmup"
    lr_warmup_steps = 100
    ```
    """

    code, name, severity = "LC218", "warmup-with-constant-scheduler", "error"
    summary = "Non-zero warmup with constant/adafactor/custom scheduler: ValueError."
    message = "lr_warmup_steps = {w!r} cannot be used with {sched}: sd-scripts raises ValueError (use constant_with_warmup)"
    reference = "sd-scripts-reference.md §4.11, §1.13 E20"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not _warmup_nonzero(cfg):
            return
        if cfg.get("lr_scheduler_type"):
            sched = f"lr_scheduler_type {cfg.get('lr_scheduler_type')!r}"
        elif _adafactor_relative_step(cfg):
            sched = "the 'adafactor:<lr>' schedule that Adafactor's relative_step=True forces"
        else:
            name = effective(cfg, "lr_scheduler") or "constant"
            if not isinstance(name, str) or (name != "constant" and not name.startswith("adafactor")):
                return
            sched = f"lr_scheduler {name!r}"
        yield self.finding(cfg, option="lr_warmup_steps", w=cfg.get("lr_warmup_steps"), sched=sched)


@register
class SchedulerNeedsWarmup(Rule):
    """A scheduler whose shape depends on the warmup, configured without one.

    ``constant_with_warmup`` without warmup is plain ``constant``: the ramp ``t / max(1, W)`` needs ``W > 0``.
    ``inverse_sqrt`` decays as ``1/sqrt((t + τ − W)/τ)`` with ``τ = lr_scheduler_timescale``, else ``W``, else
    10000 — without warmup and timescale the decay is governed by an arbitrary 10000 steps
    (sd-scripts-reference.md §4.11). Usually a lost percent/ratio conversion.

    **Anti-pattern**

    ```toml
    lr_scheduler = "constant_with_warmup"
    lr_warmup_steps = 0
    ```

    **Best practice**

    ```toml
    lr_scheduler = "constant_with_warmup"
    lr_warmup_steps = 0.05
    ```
    """

    code, name, severity = "LC219", "scheduler-needs-warmup", "info"
    summary = "constant_with_warmup / inverse_sqrt without warmup (plain constant / a 10000-step timescale)."
    message = "lr_scheduler {sched!r} with no warmup steps {what}"
    reference = "sd-scripts-reference.md §4.11"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        sched = cfg.get("lr_scheduler")
        if _warmup_nonzero(cfg) or cfg.get("lr_scheduler_type"):
            return
        if sched == "constant_with_warmup":
            yield self.finding(cfg, option="lr_scheduler", sched=sched, what="is plain 'constant'")
        elif sched == "inverse_sqrt" and cfg.get("lr_scheduler_timescale") is None:
            yield self.finding(cfg, option="lr_scheduler", sched=sched,
                               what="and no lr_scheduler_timescale decays on a fixed 10000-step timescale")


# Constructor keyword arguments of the optimizers sd-scripts builds (reference §4.10; torch/bitsandbytes/
# transformers/prodigyopt/dadaptation/lion-pytorch signatures at the pinned versions). Unknown optimizers are
# not checked.
_ADAM = {"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach", "capturable", "differentiable",
         "fused"}
_BNB = {"lr", "betas", "eps", "weight_decay", "amsgrad", "optim_bits", "args", "min_8bit_size",
        "percentile_clipping", "block_wise", "is_paged"}
_DADAPT = {"lr", "betas", "eps", "weight_decay", "log_every", "decouple", "use_bias_correction", "d0",
           "growth_rate", "fsdp_in_use", "momentum", "bias_correction", "no_prox"}
OPTIMIZER_KWARGS: dict[str, set[str]] = {
    "adamw": _ADAM,
    "adamw8bit": _BNB,
    "pagedadamw8bit": _BNB,
    "pagedadamw": _BNB,
    "pagedadamw32bit": _BNB,
    "lion": {"lr", "betas", "weight_decay", "use_triton", "decoupled_weight_decay"},
    "lion8bit": {"lr", "betas", "weight_decay", "optim_bits", "args", "min_8bit_size", "percentile_clipping",
                 "block_wise", "is_paged"},
    "sgdnesterov": {"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "foreach",
                    "differentiable", "fused"},
    "prodigy": {"lr", "betas", "beta3", "eps", "weight_decay", "decouple", "use_bias_correction",
                "safeguard_warmup", "d0", "d_coef", "growth_rate", "fsdp_in_use", "slice_p"},
    "dadaptation": _DADAPT, "dadaptadam": _DADAPT, "dadaptadampreprint": _DADAPT, "dadaptlion": _DADAPT,
    "dadaptadagrad": _DADAPT, "dadaptadan": _DADAPT, "dadaptadanip": _DADAPT, "dadaptsgd": _DADAPT,
    "adafactor": {"lr", "eps", "clip_threshold", "decay_rate", "beta1", "weight_decay", "scale_parameter",
                  "relative_step", "warmup_init"},
}


@register
class OptimizerArgNotAccepted(Rule):
    """An ``optimizer_args`` key that the chosen optimizer does not take.

    sd-scripts passes every ``optimizer_args`` item as a keyword argument to the optimizer's constructor
    (sd-scripts-reference.md §1.5, §4.10); an unknown keyword stops training with ``TypeError: unexpected keyword
    argument``. Classic cases: ``betas`` for Adafactor (it takes ``beta1``; Derrian's scripts drop ``betas`` for
    Adafactor for this reason, legacy-dialects.md §3.3), ``decouple`` for plain AdamW (a DAdaptation/Prodigy
    argument).

    **Anti-pattern**

    ```toml
    optimizer_type = "AdamW"
    optimizer_args = ["decouple=True"]
    ```

    **Best practice**

    ```toml
    optimizer_type = "Prodigy"
    optimizer_args = ["decouple=True", "weight_decay=0.01"]
    ```
    """

    code, name, severity = "LC220", "optimizer-arg-not-accepted", "error"
    summary = "optimizer_args key that the optimizer's constructor does not accept (TypeError)."
    message = "optimizer_args {key!r} is not an argument of {opt}: sd-scripts stops with TypeError"
    reference = "sd-scripts-reference.md §1.5, §4.10; legacy-dialects.md §3.3"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        opt = _optimizer(cfg)
        allowed = OPTIMIZER_KWARGS.get(opt)
        if allowed is None:
            return
        shown = cfg.get("optimizer_type") or opt
        for k, _v in kv_items(cfg.get("optimizer_args")):
            if k and k not in allowed:
                yield self.finding(cfg, option="optimizer_args", key=k, opt=shown)


@register
class NetworkDropoutNotPeftDropout(Rule):
    """kohya ``network_dropout`` is not PEFT's ``lora_dropout``.

    ``network_dropout`` drops the *rank activations* after ``lora_down`` (inverted dropout), while PEFT's
    ``lora_dropout`` drops the *input* before ``lora_A``; ``rank_dropout``/``module_dropout`` have no PEFT
    equivalent at all (sd-scripts-reference.md §6.4, §11, §12 item 10). A migrated run with PEFT dropout trains
    differently; lora-compat's engine reproduces kohya semantics with its own layer.

    **Anti-pattern**

    ```toml
    network_dropout = 0.1   # expecting PEFT lora_dropout=0.1
    ```

    **Best practice**

    ```toml
    network_dropout = 0.1   # knowingly kohya neuron dropout (rank activations)
    ```
    """

    code, name, severity = "LC221", "network-dropout-not-peft-dropout", "info"
    summary = "network_dropout/rank_dropout/module_dropout are not PEFT lora_dropout semantics."
    message = "{opt} = {v:g} is kohya {kind}, not PEFT lora_dropout (which drops the input)"
    reference = "sd-scripts-reference.md §6.4, §11, §12 item 10"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = as_number(cfg.get("network_dropout"))
        if v:
            yield self.finding(cfg, option="network_dropout", opt="network_dropout", v=v,
                               kind="neuron dropout on the rank activations")
        for k in ("rank_dropout", "module_dropout"):
            nv = as_number(network_arg(cfg, k))
            if nv:
                yield self.finding(cfg, option="network_args", opt=k, v=nv,
                                   kind="rank dropout (rescaled)" if k == "rank_dropout" else "whole-module dropout")


@register
class MaxStepsAndEpochs(Rule):
    """``max_train_epochs`` overrides ``max_train_steps``.

    When both are set, sd-scripts recomputes ``max_train_steps`` from the epochs
    (sd-scripts-reference.md §0 step 5.26, §1.4, §4.7) — the step count in the file is dead. With a kohya_ss GUI
    file both often appear because the GUI default ``max_train_steps`` is 1600 (legacy-dialects.md §2.6).

    **Anti-pattern**

    ```toml
    max_train_steps = 2000
    max_train_epochs = 10
    ```

    **Best practice**

    ```toml
    max_train_epochs = 10
    ```
    """

    code, name, severity = "LC222", "max-steps-and-epochs", "warning"
    summary = "max_train_steps and max_train_epochs both set: epochs win."
    message = "max_train_steps = {steps} is overridden by max_train_epochs = {epochs}"
    reference = "sd-scripts-reference.md §0, §1.4; legacy-dialects.md §2.6"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        epochs = as_number(cfg.get("max_train_epochs"))
        steps = cfg.get("max_train_steps")
        if epochs and epochs > 0 and steps is not None and _explicit(cfg, "max_train_steps"):
            yield self.finding(cfg, option="max_train_steps", steps=steps, epochs=int(epochs))


@register
class PriorLossWeightWithoutReg(Rule):
    """``prior_loss_weight`` only weights regularization images; without any it has no effect.

    It is a per-sample loss weight for samples from ``is_reg`` subsets / the ``reg_data_dir`` folder
    (sd-scripts-reference.md §1.4, §4.9, §12 item 6) — not a "prior distribution" term as seed 003 claimed.

    **Anti-pattern**

    ```toml
    prior_loss_weight = 0.5   # no regularization images
    ```

    **Best practice**

    ```toml
    reg_data_dir = "reg"
    prior_loss_weight = 0.5
    ```
    """

    code, name, severity = "LC223", "prior-loss-weight-without-reg", "info"
    summary = "prior_loss_weight without regularization images has no effect."
    message = "prior_loss_weight = {v:g} has no effect: the config has no regularization images"
    reference = "sd-scripts-reference.md §1.4, §4.9"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = as_number(cfg.get("prior_loss_weight"))
        if v is not None and v != 1 and not has_reg_images(cfg):
            yield self.finding(cfg, option="prior_loss_weight", v=v)


@register
class AdaptiveNoiseWithoutOffset(Rule):
    """``adaptive_noise_scale`` needs ``noise_offset``.

    sd-scripts raises ``ValueError`` when ``adaptive_noise_scale`` is set and ``noise_offset`` is None; with
    ``noise_offset = 0`` the check passes but the adaptive part has no effect (sd-scripts-reference.md §1.4,
    §1.13 E1).

    **Anti-pattern**

    ```toml
    adaptive_noise_scale = 0.01
    ```

    **Best practice**

    ```toml
    noise_offset = 0.05
    adaptive_noise_scale = 0.01
    ```
    """

    code, name, severity = "LC224", "adaptive-noise-without-offset", "error"
    summary = "adaptive_noise_scale without noise_offset: ValueError (or no effect with 0)."
    message = "adaptive_noise_scale = {v:g} needs noise_offset: {what}"
    reference = "sd-scripts-reference.md §1.4, §1.13 E1"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = as_number(cfg.get("adaptive_noise_scale"))
        if v is None or v == 0:
            return
        off = cfg.get("noise_offset")
        if off is None:
            yield self.finding(cfg, option="adaptive_noise_scale", v=v, what="sd-scripts raises ValueError")
        elif not as_number(off):
            yield self.finding(cfg, option="adaptive_noise_scale", v=v, severity="warning",
                               what="noise_offset is 0, so the adaptive scale has no effect")


@register
class VPredLossOptionsConflict(Rule):
    """``scale_v_pred_loss_like_noise_pred`` needs ``v_parameterization``; ``v_pred_like_loss`` must not have it.

    Both are checked by ``verify_training_args`` and raise ``ValueError`` (sd-scripts-reference.md §1.6,
    §1.13 E2, E3).

    **Anti-pattern**

    ```toml
    scale_v_pred_loss_like_noise_pred = true   # no v_parameterization
    ```

    **Best practice**

    ```toml
    v_parameterization = true
    scale_v_pred_loss_like_noise_pred = true
    ```
    """

    code, name, severity = "LC225", "v-pred-loss-options-conflict", "error"
    summary = "scale_v_pred_loss_like_noise_pred without v_parameterization, or v_pred_like_loss with it."
    message = "{opt} {what}: sd-scripts raises ValueError"
    reference = "sd-scripts-reference.md §1.6, §1.13 E2, E3"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        vp = truthy(cfg.get("v_parameterization"))
        if truthy(cfg.get("scale_v_pred_loss_like_noise_pred")) and not vp:
            yield self.finding(cfg, option="scale_v_pred_loss_like_noise_pred",
                               opt="scale_v_pred_loss_like_noise_pred", what="requires v_parameterization")
        if (as_number(cfg.get("v_pred_like_loss")) or 0) and vp:
            yield self.finding(cfg, option="v_pred_like_loss", opt="v_pred_like_loss",
                               what="cannot be used with v_parameterization")


@register
class FullPrecisionMismatch(Rule):
    """``full_fp16`` needs ``mixed_precision = "fp16"``; ``full_bf16`` needs ``"bf16"``.

    train_network.py asserts the match (sd-scripts-reference.md §1.4, §1.13 E21).

    **Anti-pattern**

    ```toml
    full_bf16 = true
    mixed_precision = "fp16"
    ```

    **Best practice**

    ```toml
    full_bf16 = true
    mixed_precision = "bf16"
    ```
    """

    code, name, severity = "LC226", "full-precision-mismatch", "error"
    summary = "full_fp16/full_bf16 with a different mixed_precision: asserts."
    message = "{opt} requires mixed_precision = {want!r}, not {have!r}"
    reference = "sd-scripts-reference.md §1.4, §1.13 E21"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        have = effective(cfg, "mixed_precision") or "no"
        for opt, want in (("full_fp16", "fp16"), ("full_bf16", "bf16")):
            if truthy(cfg.get(opt)) and have != want:
                yield self.finding(cfg, option=opt, opt=opt, want=want, have=have)


@register
class Fp8WithoutMixedPrecision(Rule):
    """``fp8_base`` / ``fp8_base_unet`` need a mixed precision other than ``no``.

    train_network.py asserts it (sd-scripts-reference.md §1.4, §1.13 E22).

    **Anti-pattern**

    ```toml
    fp8_base = true
    mixed_precision = "no"
    ```

    **Best practice**

    ```toml
    fp8_base = true
    mixed_precision = "bf16"
    ```
    """

    code, name, severity = "LC227", "fp8-without-mixed-precision", "error"
    summary = "fp8_base without mixed precision: asserts."
    message = "{opt} requires mixed_precision fp16 or bf16 (it is {have!r})"
    reference = "sd-scripts-reference.md §1.4, §1.13 E22"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        have = effective(cfg, "mixed_precision") or "no"
        for opt in ("fp8_base", "fp8_base_unet"):
            if truthy(cfg.get(opt)) and have == "no":
                yield self.finding(cfg, option=opt, opt=opt, have=have)


@register
class LoggingDirRequired(Rule):
    """``log_with = "tensorboard"`` or ``"all"`` needs ``logging_dir``.

    ``prepare_accelerator`` raises ``ValueError`` otherwise (sd-scripts-reference.md §1.4, §1.13 E23).

    **Anti-pattern**

    ```toml
    log_with = "tensorboard"
    ```

    **Best practice**

    ```toml
    log_with = "tensorboard"
    logging_dir = "logs"
    ```
    """

    code, name, severity = "LC228", "logging-dir-required", "error"
    summary = "log_with tensorboard/all without logging_dir: ValueError."
    message = "log_with = {v!r} requires logging_dir"
    reference = "sd-scripts-reference.md §1.4, §1.13 E23"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("log_with")
        if v in ("tensorboard", "all") and not cfg.get("logging_dir"):
            yield self.finding(cfg, option="log_with", v=v)


@register
class NothingTrained(Rule):
    """The settings leave no LoRA parameter to train.

    ``network_train_unet_only`` together with ``network_train_text_encoder_only`` discards both the UNet and the
    text-encoder modules (not checked by sd-scripts); and a learning rate of 0 *removes* that group from the
    optimizer (sd-scripts-reference.md §1.7, §4.10 item 3). If every group is gone nothing learns.

    **Anti-pattern**

    ```toml
    network_train_unet_only = true
    network_train_text_encoder_only = true
    ```

    **Best practice**

    ```toml
    network_train_unet_only = true
    ```
    """

    code, name, severity = "LC229", "nothing-trained", "error"
    summary = "No LoRA parameters left to train (both only-flags, or all learning rates 0)."
    message = "{why}: nothing is trained"
    reference = "sd-scripts-reference.md §1.7, §4.10"
    note_codes = ("derrian-a2-both-train-parts", "kohya-gui-all-lr-zero")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        unet_only = truthy(cfg.get("network_train_unet_only"))
        te_only = truthy(cfg.get("network_train_text_encoder_only"))
        if unet_only and te_only:
            yield self.finding(cfg, option="network_train_text_encoder_only",
                               why="network_train_unet_only and network_train_text_encoder_only are both set")
            return
        lr = as_number(effective(cfg, "learning_rate"))
        unet = as_number(cfg.get("unet_lr"))
        te = first_text_encoder_lr(cfg.get("text_encoder_lr"))
        unet_eff = lr if unet is None else unet
        te_eff = lr if te is None else te
        dead_unet = te_only or unet_eff == 0
        dead_te = unet_only or te_eff == 0
        if dead_unet and dead_te and (unet == 0 or te == 0 or lr == 0):
            yield self.finding(cfg, option="unet_lr" if "unet_lr" in cfg.options else "learning_rate",
                               why="every learning rate that applies is 0 (a 0 lr removes the group)")


@register
class FusedBackwardPassConflict(Rule):
    """``fused_backward_pass`` needs Adafactor and ``gradient_accumulation_steps = 1`` — and does nothing for LoRA.

    sd-scripts asserts both conditions; in train_network.py the option has no other effect
    (sd-scripts-reference.md §1.5, §8, §1.13 E18).

    **Anti-pattern**

    ```toml
    fused_backward_pass = true
    optimizer_type = "AdamW8bit"
    ```

    **Best practice**

    ```toml
    # leave fused_backward_pass out for LoRA training
    ```
    """

    code, name, severity = "LC230", "fused-backward-pass-conflict", "error"
    summary = "fused_backward_pass with a non-Adafactor optimizer or gradient accumulation: asserts."
    message = "fused_backward_pass {why}"
    reference = "sd-scripts-reference.md §1.5, §8, §1.13 E18"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not truthy(cfg.get("fused_backward_pass")):
            return
        if _optimizer(cfg) != "adafactor":
            yield self.finding(cfg, option="fused_backward_pass",
                               why=f"requires optimizer Adafactor (not {cfg.get('optimizer_type') or 'AdamW'}): AssertionError")
        elif (as_number(cfg.get("gradient_accumulation_steps")) or 1) != 1:
            yield self.finding(cfg, option="fused_backward_pass",
                               why="requires gradient_accumulation_steps = 1: AssertionError")
        else:
            yield self.finding(cfg, option="fused_backward_pass", severity="info",
                               why="has no effect in LoRA training (train_network.py only runs its asserts)")


@register
class LegacyOptimizerFlagConflict(Rule):
    """``use_8bit_adam`` / ``use_lion_optimizer`` cannot be combined with each other or with ``optimizer_type``.

    ``get_optimizer`` asserts it (sd-scripts-reference.md §1.5, §1.13 E17).

    **Anti-pattern**

    ```toml
    use_8bit_adam = true
    optimizer_type = "AdamW"
    ```

    **Best practice**

    ```toml
    optimizer_type = "AdamW8bit"
    ```
    """

    code, name, severity = "LC231", "legacy-optimizer-flag-conflict", "error"
    summary = "use_8bit_adam/use_lion_optimizer together with each other or optimizer_type: asserts."
    message = "{a} cannot be combined with {b}: sd-scripts stops with an AssertionError"
    reference = "sd-scripts-reference.md §1.5, §1.13 E17"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        adam8 = truthy(cfg.get("use_8bit_adam"))
        lion = truthy(cfg.get("use_lion_optimizer"))
        opt = cfg.get("optimizer_type")
        if adam8 and lion:
            yield self.finding(cfg, option="use_8bit_adam", a="use_8bit_adam", b="use_lion_optimizer")
        for flag, on in (("use_8bit_adam", adam8), ("use_lion_optimizer", lion)):
            if on and opt:
                yield self.finding(cfg, option=flag, a=flag, b=f"optimizer_type {opt!r}")


@register
class AdafactorRelativeStepDiscardsLr(Rule):
    """Adafactor with its default ``relative_step=True`` ignores every learning rate you set.

    sd-scripts then sets ``learning_rate``, ``unet_lr`` and ``text_encoder_lr`` to None and forces
    ``lr_scheduler = "adafactor:<lr>"`` (sd-scripts-reference.md §4.10, §1.12, §12 item 9). To use your own
    learning rate pass ``relative_step=False`` (and usually ``scale_parameter=False``, ``warmup_init=False``).

    **Anti-pattern**

    ```toml
    optimizer_type = "Adafactor"
    unet_lr = 1e-4
    ```

    **Best practice**

    ```toml
    optimizer_type = "Adafactor"
    optimizer_args = ["relative_step=False", "scale_parameter=False", "warmup_init=False"]
    unet_lr = 1e-4
    ```
    """

    code, name, severity = "LC232", "adafactor-relative-step-discards-lr", "warning"
    summary = "Adafactor with relative_step=True (its default) discards all configured learning rates."
    message = "Adafactor runs with relative_step=True{how}: learning_rate/unet_lr/text_encoder_lr are discarded"
    reference = "sd-scripts-reference.md §4.10, §12 item 9"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not _adafactor_relative_step(cfg):
            return
        rel = dict(kv_items(cfg.get("optimizer_args"))).get("relative_step")
        how = " (its default)" if rel is None else ""
        sched = get_str(cfg, "lr_scheduler") or ""
        # a file that also picks the adafactor schedule asked for exactly this: informational only
        yield self.finding(cfg, option="optimizer_type", how=how,
                           severity="info" if sched.startswith("adafactor") else None)


@register
class ZeroLrRemovesGroup(Rule):
    """A learning rate of 0 does not "train at lr 0": it removes the group from the optimizer.

    Groups whose lr is 0 are left out; their modules are still created and saved with ``lora_up`` = 0, so they
    have no effect (sd-scripts-reference.md §1.7, §4.10 item 3). To not train a part, use
    ``network_train_unet_only`` / ``network_train_text_encoder_only``, which also keeps those modules out of the file.

    **Anti-pattern**

    ```toml
    text_encoder_lr = 0
    ```

    **Best practice**

    ```toml
    network_train_unet_only = true
    ```
    """

    code, name, severity = "LC233", "zero-lr-removes-group", "info"
    summary = "unet_lr/text_encoder_lr = 0 removes that group; its modules are saved untrained."
    message = "{opt} = 0 removes the {part} group from the optimizer; its LoRA modules are saved untrained"
    reference = "sd-scripts-reference.md §1.7, §4.10"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if as_number(cfg.get("unet_lr")) == 0 and not truthy(cfg.get("network_train_text_encoder_only")):
            yield self.finding(cfg, option="unet_lr", opt="unet_lr", part="UNet")
        if ("text_encoder_lr" in cfg.options and first_text_encoder_lr(cfg.get("text_encoder_lr")) == 0
                and not truthy(cfg.get("network_train_unet_only"))):
            yield self.finding(cfg, option="text_encoder_lr", opt="text_encoder_lr", part="text-encoder")


@register
class CaptionExtensionDefault(Rule):
    """Without ``caption_extension`` sd-scripts looks for ``.caption`` files, not ``.txt``.

    sd-scripts' default is ``.caption`` (sd-scripts-reference.md §1.3). The kohya_ss GUI writes ``.txt`` by default,
    but an *empty* ``caption_extension`` in a GUI file emits nothing, so sd-scripts falls back to ``.caption``
    (legacy-dialects.md §2.4, §5 item 4). Missing caption files are only a warning: training runs with empty
    captions (or the class tokens).

    **Anti-pattern**

    ```json
    {"caption_extension": ""}
    ```

    **Best practice**

    ```json
    {"caption_extension": ".txt"}
    ```
    """

    code, name, severity = "LC234", "caption-extension-default", "warning"
    summary = "caption_extension empty/unset: sd-scripts reads .caption files, not .txt."
    message = "caption_extension is {how}: sd-scripts looks for '.caption' files (not '.txt')"
    reference = "sd-scripts-reference.md §1.3; legacy-dialects.md §2.4, §5"
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


@register
class FaceCropIgnored(Rule):
    """``face_crop_aug_range`` is ignored with bucketing or cached latents.

    It is only used when bucketing is off, latents are not cached and the file name carries face information
    (sd-scripts-reference.md §1.3, §1.12).

    **Anti-pattern**

    ```toml
    enable_bucket = true
    face_crop_aug_range = "2.0,4.0"
    ```

    **Best practice**

    ```toml
    enable_bucket = false
    cache_latents = false
    face_crop_aug_range = "2.0,4.0"
    ```
    """

    code, name, severity = "LC235", "face-crop-ignored", "warning"
    summary = "face_crop_aug_range with bucketing or cached latents is ignored."
    message = "face_crop_aug_range{where} is ignored because {why}"
    reference = "sd-scripts-reference.md §1.3, §1.12"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        cached = truthy(cfg.get("cache_latents")) or truthy(cfg.get("cache_latents_to_disk"))
        for sc in subset_scopes(cfg):
            if not sc.value(cfg, "face_crop_aug_range"):
                continue
            if truthy(sc.value(cfg, "enable_bucket", False)):
                why = "bucketing is on"
            elif cached:
                why = "latents are cached"
            else:
                continue
            yield self.finding(cfg, origin=sc.origin(cfg, "face_crop_aug_range"), option="face_crop_aug_range",
                               where=sc.where, why=why)


@register
class DatasetNetworkMultiplierNoEffect(Rule):
    """The dataset-level ``network_multiplier`` has no effect in current sd-scripts.

    The value still reaches each batch but train_network.py no longer reads it since 2025-01-06 (bbf6bbd5); the
    network multiplier stays 1.0 (sd-scripts-reference.md §8).

    **Anti-pattern**

    ```toml
    [[datasets]]
    network_multiplier = 0.5
    ```

    **Best practice**

    ```toml
    [[datasets]]
    # no network_multiplier
    ```
    """

    code, name, severity = "LC236", "dataset-network-multiplier-no-effect", "warning"
    summary = "Dataset-level network_multiplier has no effect (since 2025-01)."
    message = "network_multiplier{where} has no effect in current sd-scripts"
    reference = "sd-scripts-reference.md §8"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in dataset_scopes(cfg):
            if sc.ds is None:
                continue
            v = sc.value(cfg, "network_multiplier")
            if v is not None and as_number(v) != 1:
                yield self.finding(cfg, origin=sc.origin(cfg, "network_multiplier"), option="network_multiplier",
                                   where=sc.where)


@register
class DimFromWeightsIgnoresDim(Rule):
    """``dim_from_weights`` takes dims and alphas from ``network_weights`` and ignores the configured ones.

    It also ignores ``network_dropout`` and the rank/module dropouts (sd-scripts-reference.md §1.7, §1.12).

    **Anti-pattern**

    ```toml
    dim_from_weights = true
    network_dim = 64
    ```

    **Best practice**

    ```toml
    dim_from_weights = true
    network_weights = "base_lora.safetensors"
    ```
    """

    code, name, severity = "LC237", "dim-from-weights-ignores-dim", "info"
    summary = "dim_from_weights ignores network_dim/network_alpha/network_dropout."
    message = "{opt} is ignored: dim_from_weights takes dims and alphas from network_weights"
    reference = "sd-scripts-reference.md §1.7, §1.12"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not truthy(cfg.get("dim_from_weights")):
            return
        for opt in ("network_dim", "network_alpha", "network_dropout"):
            if _explicit(cfg, opt) and cfg.get(opt) is not None:
                yield self.finding(cfg, option=opt, opt=opt)


@register
class CosineMinLrNeedsRatio(Rule):
    """``cosine_with_min_lr`` needs ``lr_scheduler_min_lr_ratio`` (or ``min_lr`` in ``lr_scheduler_args``).

    transformers raises ``ValueError`` without it (sd-scripts-reference.md §1.5, §4.11, §1.13 E20).

    **Anti-pattern**

    ```toml
    lr_scheduler = "cosine_with_min_lr"
    ```

    **Best practice**

    ```toml
    lr_scheduler = "cosine_with_min_lr"
    lr_scheduler_min_lr_ratio = 0.1
    ```
    """

    code, name, severity = "LC238", "cosine-min-lr-needs-ratio", "error"
    summary = "cosine_with_min_lr without lr_scheduler_min_lr_ratio: ValueError."
    message = "lr_scheduler 'cosine_with_min_lr' needs lr_scheduler_min_lr_ratio (transformers raises ValueError)"
    reference = "sd-scripts-reference.md §1.5, §4.11, §1.13 E20"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.get("lr_scheduler") != "cosine_with_min_lr" or cfg.get("lr_scheduler_type"):
            return
        if cfg.get("lr_scheduler_min_lr_ratio") is not None:
            return
        if any(k in ("min_lr", "min_lr_rate") for k, _ in kv_items(cfg.get("lr_scheduler_args"))):
            return
        yield self.finding(cfg, option="lr_scheduler")


@register
class PolynomialLrBelowEnd(Rule):
    """``polynomial`` needs ``learning_rate`` above ``lr_end`` (default 1e-7).

    transformers raises ``ValueError`` when ``learning_rate <= lr_end`` (sd-scripts-reference.md §4.11,
    §1.13 E20). Note the polynomial decays *every* group by the same factor relative to ``learning_rate``.

    **Anti-pattern**

    ```toml
    lr_scheduler = "polynomial"
    learning_rate = 1e-8
    ```

    **Best practice**

    ```toml
    lr_scheduler = "polynomial"
    learning_rate = 1e-4
    ```
    """

    code, name, severity = "LC239", "polynomial-lr-below-end", "error"
    summary = "polynomial scheduler with learning_rate <= lr_end: ValueError."
    message = "lr_scheduler 'polynomial' with learning_rate {lr:g} <= lr_end {end:g}: transformers raises ValueError"
    reference = "sd-scripts-reference.md §4.11, §1.13 E20"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.get("lr_scheduler") != "polynomial" or cfg.get("lr_scheduler_type"):
            return
        lr = as_number(effective(cfg, "learning_rate"))
        end = 1e-7
        for k, v in kv_items(cfg.get("lr_scheduler_args")):
            if k == "lr_end" and as_number(v) is not None:
                end = as_number(v)
        if lr is not None and lr <= end:
            yield self.finding(cfg, option="learning_rate" if "learning_rate" in cfg.options else "lr_scheduler",
                               lr=lr, end=end)


@register
class DyloraConvDimMismatch(Rule):
    """kohya DyLoRA requires ``conv_dim`` equal to ``network_dim``.

    ``networks.dylora`` asserts it when ``conv_dim`` is given (sd-scripts-reference.md §6.8, §6.9, §1.13 E29).

    **Anti-pattern**

    ```toml
    network_module = "networks.dylora"
    network_dim = 16
    network_args = ["conv_dim=8", "unit=4"]
    ```

    **Best practice**

    ```toml
    network_module = "networks.dylora"
    network_dim = 16
    network_args = ["conv_dim=16", "unit=4"]
    ```
    """

    code, name, severity = "LC240", "dylora-conv-dim-mismatch", "error"
    summary = "networks.dylora with conv_dim != network_dim: asserts."
    message = "networks.dylora needs conv_dim ({conv:g}) == network_dim ({dim:g}): AssertionError"
    reference = "sd-scripts-reference.md §6.8, §1.13 E29"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if _module(cfg) != "networks.dylora":
            return
        conv = as_number(network_arg(cfg, "conv_dim"))
        dim = _dim(cfg)
        if conv is not None and dim is not None and conv != dim:
            yield self.finding(cfg, option="network_args", conv=conv, dim=dim)


@register
class TimestepRangeEmpty(Rule):
    """``min_timestep >= max_timestep`` makes every sample use the same timestep.

    Timesteps are drawn with ``randint(min, max)``; if min ≥ max every sample uses ``max``
    (sd-scripts-reference.md §1.4).

    **Anti-pattern**

    ```toml
    min_timestep = 500
    max_timestep = 500
    ```

    **Best practice**

    ```toml
    min_timestep = 0
    max_timestep = 1000
    ```
    """

    code, name, severity = "LC241", "timestep-range-empty", "warning"
    summary = "min_timestep >= max_timestep: a single timestep is trained."
    message = "min_timestep {lo} >= max_timestep {hi}: every sample uses timestep {hi}"
    reference = "sd-scripts-reference.md §1.4"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        lo = as_number(cfg.get("min_timestep"))
        hi = as_number(cfg.get("max_timestep"))
        lo = 0 if lo is None else lo
        hi = 1000 if hi is None else hi
        if ("min_timestep" in cfg.options or "max_timestep" in cfg.options) and lo >= hi:
            yield self.finding(cfg, option="min_timestep" if "min_timestep" in cfg.options else "max_timestep",
                               lo=int(lo), hi=int(hi))


@register
class InitialStepBeyondTraining(Rule):
    """``initial_step`` must be below ``max_train_steps``.

    train_network.py asserts ``max_train_steps > initial_step`` (sd-scripts-reference.md §1.7, §1.13 E24).

    **Anti-pattern**

    ```toml
    max_train_steps = 1000
    initial_step = 1000
    ```

    **Best practice**

    ```toml
    max_train_steps = 2000
    initial_step = 1000
    ```
    """

    code, name, severity = "LC242", "initial-step-beyond-training", "error"
    summary = "initial_step >= max_train_steps: asserts."
    message = "initial_step {s} >= max_train_steps {n}: AssertionError"
    reference = "sd-scripts-reference.md §1.7, §1.13 E24"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        s = as_number(cfg.get("initial_step"))
        if s is None or cfg.get("max_train_epochs"):
            return
        n = as_number(effective(cfg, "max_train_steps"))
        if n is not None and s >= n:
            yield self.finding(cfg, option="initial_step", s=int(s), n=int(n))


@register
class AdaptiveOptimizerLowLr(Rule):
    """D-Adaptation and Prodigy expect a learning rate around 1.0.

    These optimizers estimate the step size themselves and use ``lr`` as a multiplier; sd-scripts warns when
    ``lr <= 0.1`` and when several groups have different lrs ("only the first takes effect")
    (sd-scripts-reference.md §4.10, §1.13 warnings).

    **Anti-pattern**

    ```toml
    optimizer_type = "Prodigy"
    learning_rate = 1e-4
    ```

    **Best practice**

    ```toml
    optimizer_type = "Prodigy"
    learning_rate = 1.0
    ```
    """

    code, name, severity = "LC243", "adaptive-optimizer-low-lr", "warning"
    summary = "D-Adaptation/Prodigy with a learning rate <= 0.1 or different group learning rates."
    message = "{opt} {what}"
    reference = "sd-scripts-reference.md §4.10"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        opt = _optimizer(cfg)
        if not (opt.startswith("dadapt") or opt == "prodigy"):
            return
        shown = cfg.get("optimizer_type") or opt
        lrs = {}
        for name in ("learning_rate", "unet_lr"):
            v = as_number(cfg.get(name))
            if v is not None:
                lrs[name] = v
        te = first_text_encoder_lr(cfg.get("text_encoder_lr"))
        if te is not None and not truthy(cfg.get("network_train_unet_only")):
            lrs["text_encoder_lr"] = te
        low = [n for n, v in lrs.items() if 0 < v <= 0.1]
        if low:
            yield self.finding(cfg, option=low[0], opt=shown,
                               what=f"expects a learning rate around 1.0, but {low[0]} = {lrs[low[0]]:g}")
        group = {v for n, v in lrs.items() if n != "learning_rate" and v > 0}
        if len(group) > 1:
            yield self.finding(cfg, option="text_encoder_lr", opt=shown,
                               what="uses only the first group's learning rate; unet_lr and text_encoder_lr differ")


@register
class ValidationSplitOutOfRange(Rule):
    """``validation_split`` outside [0, 1] is skipped with a warning.

    A validation dataset is built only for ``0 < validation_split <= 1`` (sd-scripts-reference.md §4.13).

    **Anti-pattern**

    ```toml
    validation_split = 10     # meant 10 %
    ```

    **Best practice**

    ```toml
    validation_split = 0.1
    ```
    """

    code, name, severity = "LC244", "validation-split-out-of-range", "warning"
    summary = "validation_split outside [0, 1]: no validation set."
    message = "validation_split = {v:g}{where} is outside [0, 1]: no validation set is built"
    reference = "sd-scripts-reference.md §4.13"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in dataset_scopes(cfg):
            v = as_number(sc.value(cfg, "validation_split"))
            if v is not None and not 0 <= v <= 1:
                yield self.finding(cfg, origin=sc.origin(cfg, "validation_split"), option="validation_split",
                                   v=v, where=sc.where)


@register
class SgdNesterov8bitNotNesterov(Rule):
    """``SGDNesterov8bit`` is plain 8-bit SGD with momentum 0.9 — not Nesterov.

    sd-scripts builds the optimizer with Nesterov, then rebuilds it without ``nesterov=True``
    (sd-scripts-reference.md §4.10).

    **Anti-pattern**

    ```toml
    optimizer_type = "SGDNesterov8bit"
    ```

    **Best practice**

    ```toml
    optimizer_type = "SGDNesterov"
    ```
    """

    code, name, severity = "LC245", "sgdnesterov8bit-not-nesterov", "info"
    summary = "SGDNesterov8bit ends up as plain SGD8bit (no Nesterov)."
    message = "optimizer_type 'SGDNesterov8bit' runs plain 8-bit SGD with momentum 0.9, without Nesterov"
    reference = "sd-scripts-reference.md §4.10"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if _optimizer(cfg) == "sgdnesterov8bit":
            yield self.finding(cfg, option="optimizer_type")


@register
class SaveLastNStepsIsSteps(Rule):
    """``save_last_n_steps`` is a number of *steps*, not a number of files.

    Step checkpoints older than N steps are removed (sd-scripts-reference.md §1.4). A small value such as 3 with
    ``save_every_n_steps = 100`` deletes every previous checkpoint.

    **Anti-pattern**

    ```toml
    save_every_n_steps = 100
    save_last_n_steps = 3          # meant "keep 3 files"
    ```

    **Best practice**

    ```toml
    save_every_n_steps = 100
    save_last_n_steps = 300        # keep the last 3 checkpoints
    ```
    """

    code, name, severity = "LC246", "save-last-n-steps-is-steps", "warning"
    summary = "save_last_n_steps smaller than save_every_n_steps: it counts steps, not files."
    message = "save_last_n_steps = {n} counts steps, not files: with save_every_n_steps = {every} only the newest checkpoint is kept"
    reference = "sd-scripts-reference.md §1.4"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        n = as_number(cfg.get("save_last_n_steps"))
        every = as_number(cfg.get("save_every_n_steps"))
        if n and every and n < every:
            yield self.finding(cfg, option="save_last_n_steps", n=int(n), every=int(every))


@register
class PersistentWorkersWithoutWorkers(Rule):
    """``persistent_data_loader_workers`` needs at least one DataLoader worker.

    PyTorch's DataLoader raises ``ValueError`` ("persistent_workers option needs num_workers > 0") when
    persistent workers are requested with ``max_data_loader_n_workers = 0`` (sd-scripts-reference.md §1.4 [ext]).
    The kohya_ss GUI default for the worker count is 0 (legacy-dialects.md §2.4).

    **Anti-pattern**

    ```toml
    persistent_data_loader_workers = true
    max_data_loader_n_workers = 0
    ```

    **Best practice**

    ```toml
    persistent_data_loader_workers = true
    max_data_loader_n_workers = 2
    ```
    """

    code, name, severity = "LC247", "persistent-workers-without-workers", "error"
    summary = "persistent_data_loader_workers with 0 DataLoader workers: ValueError."
    message = "persistent_data_loader_workers needs max_data_loader_n_workers > 0 (PyTorch raises ValueError)"
    reference = "sd-scripts-reference.md §1.4; legacy-dialects.md §2.4"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if truthy(cfg.get("persistent_data_loader_workers")):
            n = as_number(cfg.get("max_data_loader_n_workers"))
            if n is not None and n <= 0:
                yield self.finding(cfg, option="persistent_data_loader_workers")


@register
class AdafactorSchedulerMisuse(Rule):
    """The ``adafactor`` scheduler only works with the Adafactor optimizer, and by hand it needs ``:lr``.

    A scheduler name starting with ``adafactor`` builds ``AdafactorSchedule(initial_lr = float(text after ":"))``
    and asserts that the optimizer is Adafactor; written by hand without the ``:<lr>`` suffix (and with
    ``relative_step=False``, so sd-scripts does not rewrite it) the parse fails with ``IndexError``
    (sd-scripts-reference.md §4.11). With ``relative_step=True`` sd-scripts writes ``adafactor:<lr>`` itself.

    **Anti-pattern**

    ```toml
    optimizer_type = "AdamW8bit"
    lr_scheduler = "adafactor"
    ```

    **Best practice**

    ```toml
    optimizer_type = "Adafactor"
    optimizer_args = ["relative_step=True", "scale_parameter=True", "warmup_init=False"]
    lr_scheduler = "adafactor"
    ```
    """

    code, name, severity = "LC248", "adafactor-scheduler-misuse", "error"
    summary = "lr_scheduler adafactor with another optimizer (assert) or without ':lr' and relative_step off."
    message = "lr_scheduler {value!r} {why}"
    reference = "sd-scripts-reference.md §4.10, §4.11"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        sched = get_str(cfg, "lr_scheduler")
        if not sched or not sched.startswith("adafactor") or cfg.get("lr_scheduler_type"):
            return
        if _optimizer(cfg) != "adafactor":
            yield self.finding(cfg, option="lr_scheduler", value=sched,
                               why=f"requires optimizer Adafactor (not {get_str(cfg, 'optimizer_type') or 'AdamW'}): AssertionError")
        elif ":" not in sched and not _adafactor_relative_step(cfg):
            yield self.finding(cfg, option="lr_scheduler", value=sched,
                               why="needs the initial lr as 'adafactor:<lr>' when relative_step is off: IndexError")


@register
class PeftSemantics(Rule):
    """A native config uses a PEFT field whose meaning differs from kohya's (or that PEFT will ignore).

    Native configs name the adapter with PEFT's fields (seeds 002/004, sd-scripts-reference.md §11), and PEFT's
    rules apply to them: ``use_rslora`` scales the update by ``lora_alpha/sqrt(r)`` instead of sd-scripts'
    ``alpha/r`` (same alpha, stronger LoRA); ``init_lora_weights`` other than ``true`` does not start the adapter
    as sd-scripts does; ``loftq_config`` is only used with ``init_lora_weights = "loftq"`` and needs an
    unquantized base; ``lora_dropout`` is PEFT's input dropout, not kohya's ``network_dropout``; DoRA and
    ``target_modules``/``rank_pattern`` regexes have no sd-scripts equivalent. The message says which.

    **Anti-pattern**

    ```toml
    format = "lora-compat/1"
    [network]
    r = 16
    lora_alpha = 16
    use_rslora = true   # expected kohya strength alpha/r = 1; PEFT applies 16/sqrt(16) = 4
    ```

    **Best practice**

    ```toml
    format = "lora-compat/1"
    [network]
    r = 16
    lora_alpha = 16     # plain alpha/r scaling, as in sd-scripts
    ```
    """

    code, name, severity = "LC249", "peft-semantics", "warning"
    summary = "A native PEFT field means something other than its kohya counterpart (or is ignored)."
    message = "{detail}"
    reference = "sd-scripts-reference.md §11; seeds 002/004 (PEFT LoraConfig)"
    note_codes = ("native-loftq-needs-init", "native-loftq-quantized-base", "native-rslora-scale",
                  "native-dora-not-kohya", "native-lora-dropout-not-kohya", "native-init-not-kohya",
                  "native-pattern-no-kohya")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        # What PEFT itself refuses (loftq without loftq_config, ...) is an invalid value: LC101 errors.
        for n in self.claimed_notes(cfg):
            yield self.finding(cfg, origin=n.origin, detail=n.message)
