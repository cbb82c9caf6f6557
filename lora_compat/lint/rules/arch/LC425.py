"""LC425 sd-only-option-on-flux: an SD-only option in a FLUX.1/Chroma config: flux_train_network.py ignores it."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import DEFAULT, DERIVED, CanonicalConfig
from lora_compat.lint.facts import flux
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import truthy
from lora_compat.lint.registry import Rule, register

# ignored options whose loss is harmless: FLUX always uses SDPA, its own AE and its own Euler sampler
_HARMLESS = frozenset({"mem_eff_attn", "xformers", "sdpa", "vae", "sample_sampler"})
# values that ask for what SD does anyway (the kohya_ss GUI writes them into every preset): nothing is lost
_NEUTRAL = {"clip_skip": 1, "max_timestep": 1000, "min_timestep": 0}


def _ignored_on_flux() -> dict[str, str]:
    """Options the schema marks as ignored by flux_train_network.py (``x-ignored-by``) -> why."""
    from lora_compat.config.options import option_names, spec

    out = {}
    for name in option_names():
        why = ((spec(name) or {}).get("x-ignored-by") or {}).get("flux_train_network.py")
        if why:
            out[name] = why
    return out


@register
class SdOnlyOptionOnFlux(Rule):
    """An SD-only option in a FLUX.1/Chroma config has no effect: flux_train_network.py replaces what it configures.

    ``flux_train_network.py`` inherits train_network.py's whole parser, so SD options are accepted without a
    word, but FLUX overrides the code that reads them: its noise is plain ``randn_like`` (no ``noise_offset``,
    multires or adaptive noise), its timesteps come from ``timestep_sampling`` (no ``min_timestep``,
    ``max_timestep``, ``zero_terminal_snr``), its target is always the flow (no ``v_parameterization``), its
    ``post_process_loss`` leaves the loss alone (no ``min_snr_gamma``, ``debiased_estimation_loss``, v-pred loss
    scaling), its text encoding has no ``clip_skip``/``max_token_length`` (see ``t5xxl_max_token_length``), the
    AE replaces ``vae``, and the transformer always uses SDPA. Settings copied from an SD preset therefore do
    nothing; the attention, VAE and sampler ones are harmless (a note), the training ones change what the user
    expects (a warning).

    **Anti-pattern**

    ```toml
    network_module = "networks.lora_flux"
    noise_offset = 0.05
    min_snr_gamma = 5
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora_flux"
    timestep_sampling = "shift"
    discrete_flow_shift = 3.1582
    ```
    """

    code, name, severity = "LC425", "arch.sd_only_option_on_flux", "warning"
    groups = ("arch", "flux")
    summary = "SD-only option (noise_offset, min_snr_gamma, clip_skip ...) in a FLUX.1/Chroma config: no effect."
    message = "{option} = {value!r} has no effect on {label}: {why}"
    reference = "sd-scripts flux_train_network.py FluxNetworkTrainer (get_noise_pred_and_target, post_process_loss)"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not flux.is_flux(cfg):
            return
        label = "Chroma" if cfg.family == "chroma" else "FLUX.1"
        for name, why in _ignored_on_flux().items():
            s = cfg.options.get(name)
            if s is None or s.prov.kind in (DEFAULT, DERIVED) or not truthy(s.value):
                continue
            if name in _NEUTRAL and s.value == _NEUTRAL[name]:
                continue
            yield self.finding(cfg, option=name, value=s.value, label=label, why=why,
                               severity="info" if name in _HARMLESS else None)
