"""LC3xx — misconceptions: values shaped like the WRONG descriptions users copied (seed 003, "LoRA Explained by
ChatGPT", which describes Derrian's ArgStore keys).

Readers convert values, so these rules look at the value exactly as written (:func:`raw_value`).
"""

from __future__ import annotations

from typing import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import Raw, as_number, raw_value, subset_scopes, truthy
from lora_compat.lint.registry import Rule, register

# Scheduler names from other frameworks (PyTorch / Keras / seed 003) that sd-scripts' lr_scheduler does not know.
FOREIGN_SCHEDULERS = frozenset({
    "step", "steplr", "plateau", "reducelronplateau", "exponential", "exponentiallr", "multistep", "multisteplr",
    "cosine_annealing", "cosineannealinglr", "cosineannealingwarmrestarts", "onecycle", "onecyclelr", "cyclic",
})


def _is_boolish(v: object) -> bool:
    return isinstance(v, bool) or (isinstance(v, str) and v.strip().lower() in ("true", "false"))


def _raw(cfg: CanonicalConfig, option: str, *legacy: str) -> Raw | None:
    return raw_value(cfg, option, keys=(option, *legacy))


@register
class AlphaLooksLikeLearningRate(Rule):
    """``network_alpha`` is a scale, not a learning rate.

    Seed 003: "alpha — This setting determines the learning rate used during training." Wrong: the LoRA output
    is multiplied by ``alpha / dim`` (sd-scripts-reference.md §5, §6.3). An alpha shaped like a learning rate
    (``0.0001``) scales every update by ``0.0001 / dim`` — the LoRA learns nothing visible.

    **Anti-pattern**

    ```json
    {"net_dim": 32, "alpha": 0.0001}
    ```

    **Best practice**

    ```json
    {"net_dim": 32, "alpha": 16, "learning_rate": 0.0001}
    ```
    """

    code, name, severity = "LC301", "alpha-looks-like-learning-rate", "error"
    summary = "network_alpha is tiny, like a learning rate (alpha is a scale: alpha/dim)."
    message = "network_alpha = {v:g} looks like a learning rate: alpha scales every update by alpha/dim = {scale:.2g}"
    reference = "sd-scripts-reference.md §5, §6.3; seed 003 'alpha'"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = as_number(cfg.get("network_alpha"))
        dim = as_number(cfg.get("network_dim")) or 4
        if v is not None and 0 < v < 0.01:
            raw = _raw(cfg, "network_alpha", "alpha")
            yield self.finding(cfg, origin=raw.origin if raw else None, option="network_alpha", v=v, scale=v / dim)


@register
class KeepTokensVocabularySize(Rule):
    """``keep_tokens`` counts leading caption *tags* to protect, not a vocabulary size.

    Seed 003: "The number of the most frequent tokens to keep in the text corpus … replaced with <unk>". Wrong:
    ``keep_tokens = N`` keeps the first N comma-separated tags of each caption in place while the rest are shuffled
    or dropped (sd-scripts-reference.md §4.4.1; peers-and-users.md §1f #48). A vocabulary-sized value protects every
    tag, so shuffling and tag dropout silently do nothing.

    Seen in the wild: bmaltais/kohya_ss#70 ("does a token mean a comma-separated tag or a CLIP token?").

    **Anti-pattern**

    ```json
    {"keep_tokens": 1000}
    ```

    **Best practice**

    ```json
    {"keep_tokens": 1, "shuffle_captions": true}
    ```
    """

    code, name, severity = "LC302", "keep-tokens-vocabulary-size", "warning"
    summary = "keep_tokens looks like a vocabulary size; it counts leading caption tags."
    message = "keep_tokens = {n}{where} keeps the first {n} caption tags fixed (not a vocabulary size): shuffling and tag dropout do nothing"
    reference = "sd-scripts-reference.md §4.4.1; seed 003 'keep_tokens'"

    THRESHOLD = 20

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in subset_scopes(cfg):
            n = as_number(sc.value(cfg, "keep_tokens", 0)) or 0
            if n >= self.THRESHOLD:
                yield self.finding(cfg, origin=sc.origin(cfg, "keep_tokens"), option="keep_tokens", n=int(n),
                                   where=sc.where)


class _RawShapeRule(Rule):
    """Shared check: the raw value of an option (or legacy key) has a type that matches a misconception."""

    option: str = ""
    legacy: tuple[str, ...] = ()

    def shaped(self, v: object) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        raw = _raw(cfg, self.option, *self.legacy)
        if raw is not None and self.shaped(raw.value):
            yield self.finding(cfg, origin=raw.origin, option=self.option, value=raw.value)


@register
class ClipSkipBoolean(_RawShapeRule):
    """``clip_skip`` is a layer count, not a switch.

    Seed 003: "clip_skip — True or False. Determines if the model should skip over clipped images". Wrong:
    ``clip_skip = k`` uses the k-th text-encoder layer from the end (2 = penultimate; 1 = the same as unset)
    (sd-scripts-reference.md §4.5.3). A boolean is read as 1 or 0.

    **Anti-pattern**

    ```json
    {"clip_skip": true}
    ```

    **Best practice**

    ```json
    {"clip_skip": 2}
    ```
    """

    code, name, severity = "LC303", "clip-skip-boolean", "error"
    summary = "clip_skip written as a boolean; it is a layer count (2 = penultimate)."
    message = "clip_skip = {value!r} is a layer count (1 = last layer, 2 = penultimate), not a switch"
    reference = "sd-scripts-reference.md §4.5.3; seed 003 'clip_skip'"
    option = "clip_skip"

    def shaped(self, v: object) -> bool:
        return _is_boolish(v)


@register
class XformersList(_RawShapeRule):
    """``xformers`` selects memory-efficient attention; it is not a list of data "transformers".

    Seed 003: "xformers — List of strings. Specifies the transformers to use during training … random cropping,
    flipping, rotation". Wrong: it is a flag choosing the xformers attention kernel (kohya_ss later: the string
    ``"xformers"``/``"sdpa"``/``"none"``); numerical results differ only slightly (sd-scripts-reference.md §1.4;
    legacy-dialects.md §2.4). Augmentations are ``flip_aug``, ``color_aug``, ``random_crop``.

    **Anti-pattern**

    ```json
    {"xformers": ["random_crop", "flip"]}
    ```

    **Best practice**

    ```json
    {"xformers": true, "flip_aug": true}
    ```
    """

    code, name, severity = "LC304", "xformers-list", "error"
    summary = "xformers written as a list of augmentations; it is an attention-kernel switch."
    message = "xformers = {value!r}: xformers is an attention implementation switch, not a list of augmentations"
    reference = "sd-scripts-reference.md §1.4; seed 003 'xformers'"
    option = "xformers"

    def shaped(self, v: object) -> bool:
        return isinstance(v, (list, tuple, dict))


@register
class BucketsList(_RawShapeRule):
    """Derrian's ``buckets`` (sd-scripts ``enable_bucket``) is a switch for aspect-ratio bucketing.

    Seed 003: "buckets — List of integers … data having length of 5 tokens in one bucket". Wrong: bucketing groups
    *images* by aspect ratio into resolution buckets built from ``resolution``, ``min/max_bucket_reso`` and
    ``bucket_reso_steps`` (sd-scripts-reference.md §4.6.1); the key is a boolean.

    **Anti-pattern**

    ```json
    {"buckets": [5, 10, 15]}
    ```

    **Best practice**

    ```json
    {"buckets": true, "min_bucket_resolution": 320, "max_bucket_resolution": 960}
    ```
    """

    code, name, severity = "LC305", "buckets-list", "error"
    summary = "buckets/enable_bucket written as a list; it is the aspect-ratio bucketing switch."
    message = "{key_name} = {value!r}: bucketing is an on/off switch for image aspect-ratio buckets, not token-length buckets"
    reference = "sd-scripts-reference.md §4.6.1; seed 003 'buckets'"
    option = "enable_bucket"
    legacy = ("buckets",)

    def shaped(self, v: object) -> bool:
        return isinstance(v, (list, tuple, dict))

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        raw = _raw(cfg, self.option, *self.legacy)
        if raw is not None and self.shaped(raw.value):
            key_name = raw.origin.key if raw.origin else "enable_bucket"
            yield self.finding(cfg, origin=raw.origin, option=self.option, value=raw.value, key_name=key_name)


@register
class VaeBoolean(_RawShapeRule):
    """``vae`` is the path of a replacement VAE, not a switch.

    Seed 003: "vae — True/False. Specifies whether to use a Variational Autoencoder as the backbone". Wrong: Stable
    Diffusion always has a VAE; ``vae`` names a checkpoint/directory that *replaces* the model's own
    (sd-scripts-reference.md §1.2). ``true`` would be used as the path ``"True"``.

    **Anti-pattern**

    ```json
    {"vae": true}
    ```

    **Best practice**

    ```json
    {"vae": "/models/vae/sdxl_vae.safetensors"}
    ```
    """

    code, name, severity = "LC306", "vae-boolean", "error"
    summary = "vae written as a boolean; it is the path of a replacement VAE."
    message = "vae = {value!r}: vae is the path of a replacement VAE file, not a switch"
    reference = "sd-scripts-reference.md §1.2; seed 003 'vae'"
    option = "vae"

    def shaped(self, v: object) -> bool:
        return _is_boolish(v)


@register
class VParameterizationString(_RawShapeRule):
    """``v_parameterization`` is a flag (v-prediction target), not a normalization method.

    Seed 003: "v_parameterization — "spectral_norm", "instance_norm", or "batch_norm"". Wrong: it switches the
    training target to the velocity ``v`` (for v-prediction models such as SD2-768-v) and changes the SNR loss
    weights (sd-scripts-reference.md §1.2, §4.8). Any non-empty string is truthy, so it silently turns
    v-prediction ON.

    **Anti-pattern**

    ```json
    {"v_parameterization": "batch_norm"}
    ```

    **Best practice**

    ```json
    {"v2": true, "v_parameterization": true}
    ```
    """

    code, name, severity = "LC307", "v-parameterization-string", "error"
    summary = "v_parameterization written as a normalization name; it is the v-prediction flag."
    message = "v_parameterization = {value!r} is a v-prediction on/off flag; a non-empty string turns v-prediction ON"
    reference = "sd-scripts-reference.md §1.2; seed 003 'v_parameterization'"
    option = "v_parameterization"

    def shaped(self, v: object) -> bool:
        return isinstance(v, str) and v.strip().lower() not in ("true", "false", "")


@register
class SavePrecisionNumber(_RawShapeRule):
    """``save_precision`` is a dtype name: ``float``, ``fp16`` or ``bf16`` — not a number.

    Seed 003: "save_precision — Float … typically set to 32 or 16". Wrong: the choices are the strings ``float``
    (fp32), ``fp16`` and ``bf16``; every tensor, alpha included, is cast to it (sd-scripts-reference.md §1.4, §6.5).

    **Anti-pattern**

    ```json
    {"save_precision": 16}
    ```

    **Best practice**

    ```json
    {"save_precision": "fp16"}
    ```
    """

    code, name, severity = "LC308", "save-precision-number", "error"
    summary = "save_precision written as a number; it is float/fp16/bf16."
    message = "save_precision = {value!r}: use the dtype name \"float\", \"fp16\" or \"bf16\""
    reference = "sd-scripts-reference.md §1.4, §6.5; seed 003 'save_precision'"
    option = "save_precision"
    fixable = True

    # the two numbers people write have one meaning each (16 is ambiguous only between fp16 and bf16 in
    # theory; every front-end that offered "16" meant fp16)
    NAMES = {16.0: "fp16", 32.0: "float"}

    def shaped(self, v: object) -> bool:
        return not isinstance(v, bool) and (isinstance(v, (int, float))
                                            or (isinstance(v, str) and as_number(v) is not None))

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        from lora_compat.lint.finding import Fix

        raw = _raw(cfg, self.option)
        if raw is None or not self.shaped(raw.value):
            return
        new = self.NAMES.get(as_number(raw.value))
        fix = None
        if new and raw.origin is not None and cfg.dialect != "command-line":
            fix = Fix(f"write save_precision as {new!r}", raw.origin.file, raw.origin.key, value=new,
                      line=raw.origin.line)
        yield self.finding(cfg, origin=raw.origin, option=self.option, fix=fix, value=raw.value)


@register
class MixedPrecisionBoolean(_RawShapeRule):
    """``mixed_precision`` is ``no``, ``fp16`` or ``bf16`` — not a boolean.

    Seed 003: "mixed_precision — Boolean". Wrong: it names the dtype the frozen base model is cast to
    (sd-scripts-reference.md §1.4). ``true`` says nothing about which half-precision type to use.

    **Anti-pattern**

    ```json
    {"mixed_precision": true}
    ```

    **Best practice**

    ```json
    {"mixed_precision": "bf16"}
    ```
    """

    code, name, severity = "LC309", "mixed-precision-boolean", "error"
    summary = "mixed_precision written as a boolean; it is no/fp16/bf16."
    message = "mixed_precision = {value!r}: use \"no\", \"fp16\" or \"bf16\""
    reference = "sd-scripts-reference.md §1.4; seed 003 'mixed_precision'"
    option = "mixed_precision"

    def shaped(self, v: object) -> bool:
        return _is_boolish(v)


@register
class TagOccurrencePath(Rule):
    """Derrian's ``tag_occurrence_txt_file`` is a switch that *writes* tag counts; it does not weight the loss.

    Seed 003: "tag_occurrence_txt_file — String. The path to a text file … used to weight the loss function".
    Wrong: it is a boolean; when on, the script writes ``<output_name>.txt`` with tag counts next to the model
    (legacy-dialects.md §3.3). Nothing in training reads such a file. A path string is merely truthy.

    **Anti-pattern**

    ```json
    {"tag_occurrence_txt_file": "/data/tag_weights.txt"}
    ```

    **Best practice**

    ```json
    {"tag_occurrence_txt_file": true}
    ```
    """

    code, name, severity = "LC310", "tag-occurrence-path", "warning"
    summary = "tag_occurrence_txt_file written as a path; it is a switch that writes tag counts."
    message = "tag_occurrence_txt_file = {value!r}: it is an on/off switch that writes tag counts; nothing weights the loss"
    reference = "legacy-dialects.md §3.3; seed 003 'tag_occurrence_txt_file'"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        raw = raw_value(cfg, None, keys=("tag_occurrence_txt_file",))
        if raw is not None and isinstance(raw.value, str) and not _is_boolish(raw.value) and raw.value:
            yield self.finding(cfg, origin=raw.origin, value=raw.value)


@register
class WarmupRatioAboveOne(Rule):
    """Derrian's ``warmup_lr_ratio`` / ``warmup_ratio`` is a fraction of the run (0–1).

    Seed 003: "warmup_lr_ratio — The ratio of the maximum learning rate to the initial learning rate". Wrong: the
    scripts compute ``lr_warmup_steps = int(total_steps × ratio)`` (legacy-dialects.md §3.3, §4.2). A value like 10
    (a percent, or an LR ratio) means warmup = 10× the run. Derrian's loader even copies kohya_ss's *percent*
    ``lr_warmup`` into this field unchanged (§3.1, §5 item 1).

    **Anti-pattern**

    ```json
    {"warmup_lr_ratio": 10}
    ```

    **Best practice**

    ```json
    {"warmup_lr_ratio": 0.1}
    ```
    """

    code, name, severity = "LC311", "warmup-ratio-above-one", "error"
    summary = "warmup_lr_ratio/warmup_ratio > 1: it is a fraction of total steps."
    message = "{key} = {value!r} is a fraction of all steps: this warmup lasts {value}× the whole run"
    reference = "legacy-dialects.md §3.1, §3.3, §4.2, §5; seed 003 'warmup_lr_ratio'"
    note_codes = ("derrian-warmup-unresolved", "derrian-kohya-warmup-percent", "derrian-toml-warmup-unresolved")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        raw = raw_value(cfg, None, keys=("warmup_lr_ratio", "warmup_ratio"))
        if raw is None and cfg.dialect == "derrian-argstore":
            raw = raw_value(cfg, None, keys=("lr_warmup",))   # kohya percent loaded through Derrian's alias
        n = as_number(raw.value) if raw else None
        if raw is not None and n is not None and n > 1:
            key = raw.origin.key if raw.origin else "warmup_ratio"
            yield self.finding(cfg, origin=raw.origin, option="lr_warmup_steps", key=key, value=raw.value)


@register
class ShuffleWithoutKeepTokens(Rule):
    """``shuffle_caption`` shuffles the *tags inside each caption* — including your trigger word.

    Seed 003: "shuffle_captions — whether the training data should be shuffled between epochs". Wrong: the data
    order is always shuffled; this option shuffles the comma-separated tags of every caption each step
    (sd-scripts-reference.md §4.4.1). Without ``keep_tokens`` (or ``keep_tokens_separator``) the trigger word moves
    too, which weakens its binding.

    **Anti-pattern**

    ```json
    {"shuffle_captions": true, "keep_tokens": 0}
    ```

    **Best practice**

    ```json
    {"shuffle_captions": true, "keep_tokens": 1}
    ```
    """

    code, name, severity = "LC312", "shuffle-without-keep-tokens", "info"
    summary = "shuffle_caption shuffles tags within captions (trigger word too) when keep_tokens is 0."
    message = "shuffle_caption{where} shuffles the tags of each caption (the first tag too): set keep_tokens to pin a trigger word"
    reference = "sd-scripts-reference.md §4.4.1; seed 003 'shuffle_captions'"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.is_sdxl and truthy(cfg.get("cache_text_encoder_outputs")):
            return
        for sc in subset_scopes(cfg):
            if (truthy(sc.value(cfg, "shuffle_caption", False))
                    and not (as_number(sc.value(cfg, "keep_tokens", 0)) or 0)
                    and not sc.value(cfg, "keep_tokens_separator")):
                yield self.finding(cfg, origin=sc.origin(cfg, "shuffle_caption"), option="shuffle_caption",
                                   where=sc.where)


@register
class CaptionTagDropoutHigh(Rule):
    """``caption_tag_dropout_rate`` drops each *tag* independently, every step.

    Seed 003 described it as "random dropout of the captions". Wrong: each non-kept tag is removed with this
    probability, every step (sd-scripts-reference.md §4.4.1 step 4.4); whole-caption dropout is
    ``caption_dropout_rate``. A rate of 0.5 removes half of every caption's tags all the time.

    **Anti-pattern**

    ```toml
    caption_tag_dropout_rate = 0.5
    ```

    **Best practice**

    ```toml
    caption_tag_dropout_rate = 0.1
    ```
    """

    code, name, severity = "LC313", "caption-tag-dropout-high", "warning"
    summary = "caption_tag_dropout_rate >= 0.5: it drops that share of tags from EVERY caption."
    message = "caption_tag_dropout_rate = {v:g}{where} removes about {pct:.0f}% of the tags of every caption at every step"
    reference = "sd-scripts-reference.md §4.4.1; seed 003 'caption_tag_dropout_rate'"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in subset_scopes(cfg):
            v = as_number(sc.value(cfg, "caption_tag_dropout_rate", 0)) or 0
            if v >= 0.5:
                yield self.finding(cfg, origin=sc.origin(cfg, "caption_tag_dropout_rate"),
                                   option="caption_tag_dropout_rate", v=v, pct=v * 100, where=sc.where)


@register
class ForeignSchedulerName(Rule):
    """``lr_scheduler`` uses a name from another framework ("step", "plateau" …).

    Seed 003 listed "step", "cosine" and "plateau" as common choices. sd-scripts builds schedulers through
    transformers/diffusers names (``linear``, ``cosine``, ``cosine_with_restarts``, ``polynomial``, ``constant``,
    ``constant_with_warmup``, ``inverse_sqrt``, ``cosine_with_min_lr``, ``warmup_stable_decay``,
    ``piecewise_constant``, ``adafactor``); "step"/"plateau" raise ``ValueError``, and sd-scripts has no
    validation loss to drive a plateau schedule (sd-scripts-reference.md §4.11). A PyTorch class goes in
    ``lr_scheduler_type`` with ``lr_scheduler_args``.

    **Anti-pattern**

    ```json
    {"scheduler": "plateau"}
    ```

    **Best practice**

    ```json
    {"scheduler": "cosine_with_restarts", "cosine_restarts": 3}
    ```
    """

    code, name, severity = "LC314", "foreign-scheduler-name", "error"
    summary = "lr_scheduler uses a PyTorch/Keras name (step, plateau ...) that sd-scripts rejects."
    message = "lr_scheduler = {value!r} is not an sd-scripts scheduler (ValueError); use e.g. 'cosine' or lr_scheduler_type for a torch class"
    reference = "sd-scripts-reference.md §4.11; seed 003 'scheduler'"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("lr_scheduler")
        if isinstance(v, str) and v.lower() in FOREIGN_SCHEDULERS:
            yield self.finding(cfg, option="lr_scheduler", value=v)


@register
class TextOnlyTrainsTextEncoder(Rule):
    """``network_train_text_encoder_only`` (Derrian ``text_only``) trains only the text-encoder LoRA.

    Seed 003: "text_only — Determines if the model should be trained only on text or on both text and images".
    Wrong: training always uses images and captions; the flag discards the UNet LoRA modules so only the text
    encoder adapts (sd-scripts-reference.md §1.7). Such a LoRA changes style/subject very little.

    **Anti-pattern**

    ```json
    {"text_only": true}
    ```

    **Best practice**

    ```json
    {"text_only": false}
    ```
    """

    code, name, severity = "LC315", "text-only-trains-text-encoder", "warning"
    summary = "network_train_text_encoder_only / text_only: no UNet LoRA is trained."
    message = "{key} trains only the text-encoder LoRA: no UNet modules are created (images are still used)"
    reference = "sd-scripts-reference.md §1.7; seed 003 'text_only'"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if truthy(cfg.get("network_train_text_encoder_only")) and not truthy(cfg.get("network_train_unet_only")):
            o = cfg.locate("network_train_text_encoder_only")
            yield self.finding(cfg, option="network_train_text_encoder_only",
                               key=o.key if o else "network_train_text_encoder_only")


@register
class NoMetadataDropsTrainingInfo(Rule):
    """``no_metadata`` (Derrian ``no_meta``) leaves the training settings out of the LoRA file.

    Seed 003: "no_meta — exclude meta data (e.g. class labels, attributes) from the training process". Wrong:
    training is unchanged; the saved ``.safetensors`` just lacks most ``ss_*`` keys (dim, alpha, learning rates,
    tag frequencies …) that UIs and converters read (sd-scripts-reference.md §1.7, §7).

    **Anti-pattern**

    ```json
    {"no_meta": true}
    ```

    **Best practice**

    ```json
    {"no_meta": false}
    ```
    """

    code, name, severity = "LC316", "no-metadata-drops-training-info", "info"
    summary = "no_metadata only strips ss_* training metadata from the saved LoRA."
    message = "{key} does not change training; it strips the ss_* training metadata from the saved LoRA"
    reference = "sd-scripts-reference.md §1.7, §7; seed 003 'no_meta'"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if truthy(cfg.get("no_metadata")):
            o = cfg.locate("no_metadata")
            yield self.finding(cfg, option="no_metadata", key=o.key if o else "no_metadata")


@register
class BucketResoStepsTiny(Rule):
    """``bucket_reso_steps`` is the pixel grid of bucket sizes, not a number of doubling steps.

    Seed 003: "Number of steps for increasing the resolution of the image … increases by a factor of 2 after each
    step". Wrong: bucket widths/heights are multiples of ``bucket_reso_steps`` pixels (64 by default; sd-scripts
    asserts a multiple of 64 for SD1/SD2 and 32 for SDXL) (sd-scripts-reference.md §4.6.1, §1.13 E12).

    **Anti-pattern**

    ```json
    {"bucket_reso_steps": 3}
    ```

    **Best practice**

    ```json
    {"bucket_reso_steps": 64}
    ```
    """

    code, name, severity = "LC317", "bucket-reso-steps-tiny", "error"
    summary = "bucket_reso_steps tiny (< 8): it is a pixel grid (64, or 32 for SDXL)."
    message = "bucket_reso_steps = {v:g} is a pixel grid for bucket sizes (use 64, or 32 for SDXL), not a doubling count"
    reference = "sd-scripts-reference.md §4.6.1, §1.13 E12; seed 003 'bucket_reso_steps'"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        from lora_compat.lint.query import dataset_scopes

        for sc in dataset_scopes(cfg):
            v = as_number(sc.value(cfg, "bucket_reso_steps"))
            if v is not None and 0 < v < 8:
                # only fatal when bucketing is on (sd-scripts then asserts the multiple)
                sev = None if truthy(sc.value(cfg, "enable_bucket", False)) else "warning"
                yield self.finding(cfg, origin=sc.origin(cfg, "bucket_reso_steps"), option="bucket_reso_steps", v=v,
                                   severity=sev)


@register
class TrainingCommentNotFilename(Rule):
    """``training_comment`` goes into the metadata only; it does not name the file.

    Seed 003: "training_comment — a comment that will be added to the name of the saved model". Wrong: it is stored
    as ``ss_training_comment`` inside the file (sd-scripts-reference.md §1.7); the name comes from ``output_name``
    (default ``last``, §4.12).

    **Anti-pattern**

    ```json
    {"training_comment": "mychar_v2", "change_output_name": null}
    ```

    **Best practice**

    ```json
    {"training_comment": "trigger: mychar", "change_output_name": "mychar_v2"}
    ```
    """

    code, name, severity = "LC318", "training-comment-not-filename", "info"
    summary = "training_comment set without output_name: the file is still named 'last'."
    message = "training_comment is stored in metadata only; without output_name the file is named 'last'"
    reference = "sd-scripts-reference.md §1.7, §4.12; seed 003 'training_comment'"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.get("training_comment") and not cfg.get("output_name"):
            yield self.finding(cfg, option="training_comment")


@register
class NetworkWeightsIsNotResume(Rule):
    """``network_weights`` (Derrian ``lora_model_for_resume``) only initializes the LoRA; it does not resume.

    Seed 003: "lora_model_for_resume — resume training from a previous checkpoint". Wrong: the weights are loaded
    with ``strict=False`` (mismatches silently tolerated), the optimizer, scheduler and step count start fresh, and
    the file's ``.alpha`` does not change the scale in use (sd-scripts-reference.md §1.7, §6.5). Real resuming is
    ``resume`` with a ``save_state`` folder.

    **Anti-pattern**

    ```json
    {"lora_model_for_resume": "out/last.safetensors"}
    ```

    **Best practice**

    ```json
    {"save_state": true, "resume": "out/last-state"}
    ```
    """

    code, name, severity = "LC319", "network-weights-is-not-resume", "info"
    summary = "network_weights without resume: weights are initialized, training state is not resumed."
    message = "{key} only initializes the LoRA weights (strict=False); optimizer, scheduler and step count start fresh — use resume to continue"
    reference = "sd-scripts-reference.md §1.7, §6.5; seed 003 'lora_model_for_resume'"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.get("network_weights") and not cfg.get("resume"):
            o = cfg.locate("network_weights")
            yield self.finding(cfg, option="network_weights", key=o.key if o else "network_weights")


@register
class LearningRateDefaultTiny(Rule):
    """sd-scripts' default ``learning_rate`` is 2e-6, not 1e-4.

    Seed 003: "learning_rate … The default value is 0.0001." sd-scripts' default is ``2e-6`` and it is also the
    fallback for ``unet_lr`` and ``text_encoder_lr`` (sd-scripts-reference.md §1.5, §12 item 8). A
    ``--config_file`` without any learning rate trains ~50× slower than people expect.

    **Anti-pattern**

    ```toml
    network_dim = 32
    # no learning_rate, no unet_lr
    ```

    **Best practice**

    ```toml
    learning_rate = 1e-4
    ```
    """

    code, name, severity = "LC320", "learning-rate-default-tiny", "warning"
    summary = "No learning rate set: sd-scripts uses 2e-6 (not 1e-4)."
    message = "no learning_rate/unet_lr set: sd-scripts trains the UNet at its default {lr:g}, not 1e-4"
    reference = "sd-scripts-reference.md §1.5, §12 item 8; seed 003 'learning_rate'"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.dialect not in ("sd-scripts-toml", "command-line", "native"):
            return   # the legacy front-ends always passed their own default
        if cfg.get("learning_rate") is not None or cfg.get("unet_lr") is not None:
            return
        if truthy(cfg.get("network_train_text_encoder_only")):
            return
        from lora_compat.lint.query import effective

        lr = effective(cfg, "learning_rate")
        if lr is not None:
            yield self.finding(cfg, option="learning_rate", lr=lr)


@register
class OutputNameBoolean(Rule):
    """Derrian's ``change_output_name`` is the output file name, not a switch.

    Seed 003: "change_output_name — Boolean. Specifies whether to change the output name". Wrong: it is the
    string passed as ``output_name`` (legacy-dialects.md §3.3). ``true`` names your LoRA ``True.safetensors``.

    **Anti-pattern**

    ```json
    {"change_output_name": true}
    ```

    **Best practice**

    ```json
    {"change_output_name": "mychar_v1"}
    ```
    """

    code, name, severity = "LC321", "output-name-boolean", "error"
    summary = "change_output_name/output_name written as a boolean; it is the file name."
    message = "{key} = {value!r} is the output file name, not a switch"
    reference = "legacy-dialects.md §3.3; seed 003 'change_output_name'"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        raw = _raw(cfg, "output_name", "change_output_name")
        if raw is not None and isinstance(raw.value, bool):
            key = raw.origin.key if raw.origin else "output_name"
            yield self.finding(cfg, origin=raw.origin, option="output_name", key=key, value=raw.value)


@register
class ImageFolderNotParent(Rule):
    """The kohya image folder is the *parent* of ``<repeats>_<name>`` folders, not the folder of images.

    Seed 003: "img_folder — the path to the folder containing the training images". With the kohya folder
    convention (``train_data_dir`` / Derrian ``img_folder``) sd-scripts only reads sub-folders named
    ``<repeats>_<name>`` (e.g. ``10_mychar``); images directly inside the folder are ignored, and with no such
    sub-folder the dataset is empty — sd-scripts then logs "No data found" and exits with code 0 without training
    (sd-scripts-reference.md §0 step 5.9, §3.4, §4.1).

    **Anti-pattern**

    ```text
    img/            <- img_folder
      001.png
      001.txt
    ```

    **Best practice**

    ```text
    img/            <- img_folder
      10_mychar/
        001.png
        001.txt
    ```
    """

    code, name, severity = "LC322", "image-folder-not-parent", "error"
    summary = "The image folder has no <repeats>_<name> sub-folders: sd-scripts finds no images."
    message = "{detail}"
    reference = "sd-scripts-reference.md §0, §3.4, §4.1; seed 003 'img_folder'"
    note_codes = ("kohya-folder-empty",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for n in self.claimed_notes(cfg):
            yield self.finding(cfg, origin=n.origin,
                               detail=n.message + " (it must hold <repeats>_<name> sub-folders, e.g. 10_mychar)")


@register
class MaxStepsAreOptimizerSteps(Rule):
    """``max_train_steps`` counts *optimizer* steps, not batches.

    Seed 003: "Training will stop once the model has seen max_steps batches". With
    ``gradient_accumulation_steps = N`` every step consumes N batches, so the run sees N × ``max_train_steps``
    batches (sd-scripts-reference.md §1.4, §4.7).

    **Anti-pattern**

    ```toml
    max_train_steps = 1000        # "1000 batches"
    gradient_accumulation_steps = 4
    ```

    **Best practice**

    ```toml
    max_train_steps = 250         # 250 optimizer steps = 1000 batches
    gradient_accumulation_steps = 4
    ```
    """

    code, name, severity = "LC323", "max-steps-are-optimizer-steps", "info"
    summary = "max_train_steps with gradient accumulation: it counts optimizer steps (N batches each)."
    message = "max_train_steps = {steps} counts optimizer steps: with gradient_accumulation_steps = {acc} that is {batches} batches"
    reference = "sd-scripts-reference.md §1.4, §4.7; seed 003 'max_steps'"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        steps = as_number(cfg.get("max_train_steps"))
        acc = as_number(cfg.get("gradient_accumulation_steps"))
        if steps and acc and acc > 1 and steps * acc < 1e15 and not cfg.get("max_train_epochs"):
            yield self.finding(cfg, option="max_train_steps", steps=int(steps), acc=int(acc),
                               batches=int(steps * acc))


@register
class NetworkDimAboveLayerWidth(Rule):
    """``network_dim`` is the LoRA *rank*; above a layer's width it adds size, not capacity.

    Seed 003: "net_dim — the number of hidden units in the model's network architecture". It is the rank r of
    ``ΔW = up · down`` (sd-scripts-reference.md §6.3); a rank above ``min(in, out)`` of a layer cannot add anything.
    The narrowest layer a kohya LoRA wraps is 320 wide in SD1/SD2 (and in SDXL with conv layers) and 640 wide in a
    plain SDXL LoRA (golden/kohya_lora_keys.json: smallest ``lora_down`` input width per case), so a larger rank
    only grows the file and slows training.

    **Anti-pattern**

    ```json
    {"net_dim": 1024}
    ```

    **Best practice**

    ```json
    {"net_dim": 32}
    ```
    """

    code, name, severity = "LC324", "network-dim-above-layer-width", "warning"
    summary = "network_dim above the width of the narrowest wrapped layer (320; 640 for plain SDXL LoRA)."
    message = "network_dim = {dim:g} is a LoRA rank above {width}, the width of the narrowest wrapped {arch} layer: it grows the file, not the capacity"
    reference = "sd-scripts-reference.md §6.3; golden/kohya_lora_keys.json; seed 003 'net_dim'"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        from lora_compat.lint.query import network_arg

        if not cfg.is_sd_family:
            return  # UNet layer widths; other families have their own
        dim = as_number(cfg.get("network_dim"))
        width = 640 if cfg.is_sdxl and network_arg(cfg, "conv_dim") is None else 320
        if dim and dim > width:
            yield self.finding(cfg, option="network_dim", dim=dim, width=width, arch=cfg.arch().upper())
