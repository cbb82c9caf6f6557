"""LC4xx — SD2 / SDXL specifics: options that behave differently, or not at all, per architecture."""

from __future__ import annotations

from typing import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding, Fix
from lora_compat.lint.query import as_number, effective, truthy
from lora_compat.lint.registry import Rule, register

# Options that only sdxl_train_network.py defines (reference §1.11, §8); used when the schema has no x-arch.
_SDXL_ONLY_FALLBACK = ("cache_text_encoder_outputs", "cache_text_encoder_outputs_to_disk",
                       "disable_mmap_load_safetensors")


def _sdxl_only_options() -> tuple[str, ...]:
    try:
        from lora_compat.config.options import option_names, spec

        found = tuple(n for n in option_names() if (spec(n) or {}).get("x-arch") == ["sdxl"] and n != "sdxl")
    except (OSError, ValueError):
        found = ()
    return found or _SDXL_ONLY_FALLBACK


@register
class ClipSkipOnSdxl(Rule):
    """``clip_skip`` has no effect on SDXL.

    sdxl_train_network.py always uses TE1 layer 11 and TE2's penultimate layer; it warns "clip_skip will be
    unexpected" and ignores the value, which is still written to ``ss_clip_skip`` (sd-scripts-reference.md §1.4,
    §4.5.3; peers-and-users.md §1f). Remove it so the metadata does not claim a setting that was not used.

    Seen in the wild: derrian-distro/LoRA_Easy_Training_Scripts#239, Akegarasu/lora-scripts#341.

    **Anti-pattern**

    ```toml
    # sdxl_train_network.py
    clip_skip = 2
    ```

    **Best practice**

    ```toml
    # no clip_skip for SDXL
    ```
    """

    code, name, severity = "LC401", "clip-skip-on-sdxl", "warning"
    summary = "clip_skip on SDXL is ignored (but recorded in ss_clip_skip)."
    message = "clip_skip = {v} has no effect on SDXL (sd-scripts ignores it, but records it in the metadata)"
    reference = "sd-scripts-reference.md §1.4, §4.5.3"
    fixable = True

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("clip_skip")
        # 1 is the same as unset for SD (reference §5), so only a real skip (>= 2) expresses an intent
        if not cfg.is_sdxl or v is None or (as_number(v) or 0) < 2:
            return
        o = cfg.locate("clip_skip")
        fix = None
        if o is not None and cfg.dialect in ("sd-scripts-toml", "native", "derrian-toml"):
            fix = Fix("remove clip_skip", o.file, o.key, action="delete", line=o.line)
        yield self.finding(cfg, option="clip_skip", fix=fix, v=v)


@register
class SdxlFp16Vae(Rule):
    """The SDXL VAE overflows in fp16: use ``no_half_vae`` (or a fixed fp16 VAE).

    With ``mixed_precision = "fp16"`` the frozen models, VAE included, are cast to fp16 (sd-scripts-reference.md
    §1.4); the original SDXL VAE produces NaN/black latents in fp16. ``no_half_vae`` keeps the VAE in fp32
    (§1.2; sd-scripts ``docs/sdxl_train_network.md``, peers-and-users.md §1h).

    **Anti-pattern**

    ```toml
    # sdxl_train_network.py
    mixed_precision = "fp16"
    ```

    **Best practice**

    ```toml
    # sdxl_train_network.py
    mixed_precision = "fp16"
    no_half_vae = true
    ```
    """

    code, name, severity = "LC402", "sdxl-fp16-vae", "warning"
    summary = "SDXL with fp16 mixed precision and neither no_half_vae nor a replacement VAE."
    message = "SDXL with mixed_precision 'fp16' and no no_half_vae: the SDXL VAE overflows in fp16 (NaN latents)"
    reference = "sd-scripts-reference.md §1.2, §1.4; peers-and-users.md §1h"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not cfg.is_sdxl or truthy(cfg.get("no_half_vae")) or cfg.get("vae"):
            return
        if (effective(cfg, "mixed_precision") or "no") == "fp16":
            yield self.finding(cfg, option="mixed_precision")


@register
class SdxlWithV2(Rule):
    """``v2`` cannot be set for SDXL.

    ``verify_sdxl_training_args`` asserts that ``v2`` is off (sd-scripts-reference.md §1.2, §1.13 E13).

    **Anti-pattern**

    ```json
    {"sdxl": true, "v2": true}
    ```

    **Best practice**

    ```json
    {"sdxl": true, "v2": false}
    ```
    """

    code, name, severity = "LC403", "sdxl-with-v2", "error"
    summary = "v2 together with SDXL: asserts."
    message = "v2 cannot be combined with SDXL: sdxl_train_network.py stops with an AssertionError"
    reference = "sd-scripts-reference.md §1.2, §1.13 E13"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.is_sdxl and truthy(cfg.get("v2")):
            yield self.finding(cfg, option="v2")


@register
class VParameterizationWithoutV2(Rule):
    """``v_parameterization`` on an SD1.x (or SDXL) base that predicts noise.

    The flag switches the training target to v-prediction; sd-scripts does not check it against the model
    (sd-scripts-reference.md §1.2). SD1.x and the SDXL base are ε-prediction models; only SD2-768-v style (or
    v-prediction fine-tunes) want it. On an ε model the LoRA learns the wrong target.

    **Anti-pattern**

    ```toml
    v2 = false
    v_parameterization = true
    ```

    **Best practice**

    ```toml
    v2 = true                     # SD2.x 768-v
    v_parameterization = true
    ```
    """

    code, name, severity = "LC404", "v-parameterization-without-v2", "warning"
    summary = "v_parameterization on SD1.x/SDXL (ε-prediction bases)."
    message = "v_parameterization on {arch}: the base model predicts noise unless it is a v-prediction fine-tune"
    reference = "sd-scripts-reference.md §1.2"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if truthy(cfg.get("v_parameterization")) and not cfg.is_v2:
            yield self.finding(cfg, option="v_parameterization", arch="SDXL" if cfg.is_sdxl else "SD1.x")


@register
class ClipSkipOnSd2(Rule):
    """``clip_skip`` on SD2 counts from a 23-layer text encoder.

    sd-scripts builds the SD2 text encoder without the last OpenCLIP layer and only warns about ``clip_skip``
    with ``v2`` (sd-scripts-reference.md §1.2, §4.5.3). SD2 models were trained on that penultimate layer already,
    so ``clip_skip = 2`` skips one layer more than people coming from SD1 expect.

    **Anti-pattern**

    ```toml
    v2 = true
    clip_skip = 2
    ```

    **Best practice**

    ```toml
    v2 = true
    ```
    """

    code, name, severity = "LC405", "clip-skip-on-sd2", "warning"
    summary = "clip_skip with v2: SD2's text encoder already ends at the penultimate layer."
    message = "clip_skip = {v} with v2: SD2's 23-layer text encoder already is the penultimate layer"
    reference = "sd-scripts-reference.md §1.2, §4.5.3"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = as_number(cfg.get("clip_skip"))
        if cfg.is_v2 and not cfg.is_sdxl and v is not None and v > 1:
            yield self.finding(cfg, option="clip_skip", v=int(v))


@register
class SdxlOnlyOptionOnSd(Rule):
    """An SDXL-only option in an SD1/SD2 config is silently ignored.

    ``cache_text_encoder_outputs``, ``cache_text_encoder_outputs_to_disk`` and ``disable_mmap_load_safetensors``
    exist only in sdxl_train_network.py; train_network.py ignores them in a ``--config_file`` (and rejects them on
    the command line) (sd-scripts-reference.md §1.11, §8).

    **Anti-pattern**

    ```toml
    # train_network.py (SD1.5)
    cache_text_encoder_outputs = true
    ```

    **Best practice**

    ```toml
    # SD1.5: text-encoder outputs cannot be cached; remove the option
    ```
    """

    code, name, severity = "LC406", "sdxl-only-option-on-sd", "warning"
    summary = "SDXL-only option in an SD1/SD2 config: ignored."
    message = "{opt} exists only for SDXL (sdxl_train_network.py): ignored for {arch}"
    reference = "sd-scripts-reference.md §1.11, §8"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.is_sdxl:
            return
        for opt in _sdxl_only_options():
            if truthy(cfg.get(opt)):
                yield self.finding(cfg, option=opt, opt=opt, arch="SD2" if cfg.is_v2 else "SD1.x")


@register
class ZeroTerminalSnrWithoutVPred(Rule):
    """``zero_terminal_snr`` without ``v_parameterization``.

    Rescaling the betas to zero terminal SNR makes the last timestep pure noise, which an ε-prediction target
    cannot learn; sd-scripts warns (sd-scripts-reference.md §1.4, §1.13 warnings).

    **Anti-pattern**

    ```toml
    zero_terminal_snr = true
    ```

    **Best practice**

    ```toml
    zero_terminal_snr = true
    v_parameterization = true
    ```
    """

    code, name, severity = "LC407", "zero-terminal-snr-without-v-pred", "warning"
    summary = "zero_terminal_snr without v_parameterization."
    message = "zero_terminal_snr without v_parameterization: the ε target is undefined at the terminal timestep"
    reference = "sd-scripts-reference.md §1.4"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if truthy(cfg.get("zero_terminal_snr")) and not truthy(cfg.get("v_parameterization")):
            yield self.finding(cfg, option="zero_terminal_snr")


@register
class TextEncoderLrSecondValueIgnored(Rule):
    """Only the first ``text_encoder_lr`` value is used; SDXL's two text encoders share it.

    For networks.lora (and dylora, lora_fa, oft) sd-scripts reads ``text_encoder_lr[0]`` for every text encoder
    (sd-scripts-reference.md §1.7, §12 item 9). The docs' ``--text_encoder_lr1/2`` do not exist (§9). A second,
    different value is silently ignored.

    **Anti-pattern**

    ```toml
    text_encoder_lr = [1e-5, 5e-6]
    ```

    **Best practice**

    ```toml
    text_encoder_lr = 1e-5
    ```
    """

    code, name, severity = "LC408", "text-encoder-lr-second-value-ignored", "warning"
    summary = "text_encoder_lr with several different values: only the first is used."
    message = "text_encoder_lr = {v!r}: only the first value ({first:g}) is used, for every text encoder"
    reference = "sd-scripts-reference.md §1.7, §9, §12 item 9"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("text_encoder_lr")
        if isinstance(v, (list, tuple)) and len(v) > 1:
            nums = [as_number(x) for x in v]
            if len({n for n in nums if n is not None}) > 1 and nums[0] is not None:
                yield self.finding(cfg, option="text_encoder_lr", v=list(v), first=nums[0])
