"""Sample images and validation loss in the plan: ``sample_prompts`` & co. and ``validation_split`` & co.

The prompt file is read here (a missing or malformed one stops ``train`` before anything is loaded, unlike
sd-scripts, which trains on and logs an error at every sampling step); the sampler names are checked against
sd-scripts' table (:data:`lora_compat.semantics.samples.SAMPLERS`). The validation part records sd-scripts' fixed
validation timesteps and the seed each pass starts from.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from lora_compat.config.dataset import ResolvedDataset
from lora_compat.config.dialects.kohya_gui import gui_prompt_text
from lora_compat.config.model import CanonicalConfig
from lora_compat.errors import UserError
from lora_compat.plan.parts import NoisePlan, SamplePlan, Unsupported, ValidationPlan
from lora_compat.semantics.flux_sampling import flux_ignored_prompt_options, flux_sample_settings
from lora_compat.semantics.samples import (
    SAMPLERS,
    SamplePrompt,
    load_sample_prompts,
    prompts_from_text,
    sampler_spec,
    sampling_interval,
    validation_timesteps,
)

#: the families whose samples and validation follow flux_train_network.py
FLUX_FAMILIES = ("flux1", "chroma")


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def resolve_prompt_file(name: str, base_dir: str | None) -> str:
    """``sample_prompts`` as given (sd-scripts opens it from the working folder), else next to the config file."""
    if os.path.isfile(name) or os.path.isabs(name) or not base_dir:
        return name
    candidate = os.path.join(base_dir, name)
    return candidate if os.path.isfile(candidate) else name


def sample_plan(cfg: CanonicalConfig, output_dir: str, base_dir: str | None, notes: list[str],
                unsupported: list[Unsupported], family: str | None = None) -> SamplePlan:
    """The :class:`SamplePlan` of ``cfg``; problems go to ``unsupported`` (a bad prompt file is refused). For
    FLUX.1 (``family``) every prompt is resolved as the FLUX sampler runs it and what FLUX does not read is said."""
    get = cfg.effective
    every_steps, every_epochs = _int(get("sample_every_n_steps")), _int(get("sample_every_n_epochs"))
    at_first = bool(get("sample_at_first"))
    sampler = get("sample_sampler")
    sampler = sampler if isinstance(sampler, str) else "ddim"
    name = get("sample_prompts")
    plan = SamplePlan(every_n_steps=sampling_interval(every_steps), every_n_epochs=sampling_interval(every_epochs),
                      at_first=at_first, sampler=sampler, output_dir=os.path.join(output_dir, "sample"))
    for option, value in (("sample_every_n_steps", every_steps), ("sample_every_n_epochs", every_epochs)):
        if value is not None and value <= 0:
            notes.append(f"{option} = {value} disables sampling (sd-scripts warns and turns it off)")
    if plan.every_n_epochs is not None and plan.every_n_steps is not None:
        notes.append("sample_every_n_epochs makes sample_every_n_steps ignored (as in sd-scripts)")
    wants_images = at_first or plan.every_n_steps is not None or plan.every_n_epochs is not None
    if not isinstance(name, str) or not name:
        if wants_images:
            unsupported.append(Unsupported("sample_prompts", "sampling is asked for but there is no prompt file: no "
                                           "images are made (sd-scripts stops with TypeError at the first sample)"))
        return plan
    plan.prompt_file = resolve_prompt_file(name, base_dir)
    inline = gui_prompt_text(cfg)
    try:
        if inline is not None and not os.path.isfile(plan.prompt_file):
            # the kohya_ss GUI holds the prompt text itself and writes it to this file when training starts
            prompts = prompts_from_text(inline)
            notes.append(f"sample prompts from the kohya_ss GUI file's own text (the GUI writes {name} at start)")
        else:
            prompts = load_sample_prompts(plan.prompt_file)
    except UserError as exc:
        unsupported.append(Unsupported("sample_prompts", str(exc), refused=True))
        return plan
    plan.prompts = prompts
    if not wants_images:
        notes.append("sample_prompts is set but no sample_every_n_steps / sample_every_n_epochs / sample_at_first: "
                     "no images are made (as in sd-scripts)")
    if not prompts:
        notes.append(f"{plan.prompt_file} holds no prompts: no images are made")
    if family in FLUX_FAMILIES:
        _flux_samples(cfg, plan, prompts, unsupported)
    else:
        _check_samplers(plan, prompts, unsupported)
    return plan


def _flux_samples(cfg: CanonicalConfig, plan: SamplePlan, prompts: list[SamplePrompt],
                  unsupported: list[Unsupported]) -> None:
    """FLUX.1: each prompt's settings (what the sampler runs) and the prompt options it does not read (sampler
    names are not read at all, so neither checked nor refused for a missing package)."""
    plan.resolved = [flux_sample_settings(p).to_json() for p in prompts]
    if cfg.get("sample_sampler") is not None:
        unsupported.append(Unsupported("sample_sampler", f"{plan.sampler!r} is not read for FLUX.1: sd-scripts' FLUX "
                                       "sampler always takes flow-matching Euler steps"))
    for p in prompts:
        where = f"{plan.prompt_file} prompt {p.index}"
        unsupported.extend(Unsupported("sample_prompts", f"{where}: {phrase}")
                           for phrase in flux_ignored_prompt_options(p))
        _check_prompt(where, p, unsupported)


def _check_prompt(where: str, p: SamplePrompt, unsupported: list[Unsupported]) -> None:
    """What every family's sampler skips in a prompt: unconverted values, ``--cn``, keys sd-scripts does not read."""
    for problem in p.problems:
        unsupported.append(Unsupported("sample_prompts", f"{where}: {problem!r} is not a number; sd-scripts "
                                       "logs it and skips it"))
    if p.controlnet_image:
        unsupported.append(Unsupported("sample_prompts", f"{where}: --cn (ControlNet image) is not used: "
                                       "lora-compat samples without ControlNet"))
    for key in p.extra:
        unsupported.append(Unsupported("sample_prompts", f"{where}: {key!r} is not a prompt setting "
                                       "sd-scripts reads; ignored"))


def _check_samplers(plan: SamplePlan, prompts: list[SamplePrompt], unsupported: list[Unsupported]) -> None:
    if plan.sampler not in SAMPLERS:
        # the spine refuses names outside argparse's choices; a --config_file TOML can still bring one
        _, note = sampler_spec(plan.sampler)
        unsupported.append(Unsupported("sample_sampler", str(note)))
    used = {plan.sampler} | {p.sample_sampler for p in prompts if p.sample_sampler}
    for p in prompts:
        where = f"{plan.prompt_file} prompt {p.index}"
        if p.sample_sampler and p.sample_sampler not in SAMPLERS:
            unsupported.append(Unsupported("sample_prompts", f"{where}: {sampler_spec(p.sample_sampler)[1]}"))
        _check_prompt(where, p, unsupported)
    for name in sorted(n for n in used if n in SAMPLERS):
        needs = SAMPLERS[name].needs
        if needs and importlib.util.find_spec(needs) is None:
            unsupported.append(Unsupported("sample_sampler", f"{name}: diffusers' {SAMPLERS[name].scheduler_class} "
                                           f"needs the Python package {needs!r}, which is not installed here (pip "
                                           f"install {needs})", refused=True))


def validation_plan(cfg: CanonicalConfig, blueprints: list[ResolvedDataset], noise: NoisePlan, notes: list[str],
                    unsupported: list[Unsupported], family: str | None = None) -> ValidationPlan:
    """The :class:`ValidationPlan` of ``cfg`` (reference §4.13, ``train_network.py``'s validation loop).

    FLUX.1 (``family``): ``flux_train_network.py`` runs each batch once per validation timestep, but its
    ``get_noisy_model_input_and_timesteps`` ignores the timestep sd-scripts sets (``min_timestep = max_timestep =
    t``): each run draws its sigma with ``timestep_sampling``, from the RNG the pass reseeds (so every pass draws
    the same). ``fixed_timesteps`` is then False and a note says so."""
    get = cfg.effective
    plan = ValidationPlan(every_n_steps=_int(get("validate_every_n_steps")),
                          every_n_epochs=_int(get("validate_every_n_epochs")),
                          max_steps=_int(get("max_validation_steps")), seed=_int(get("validation_seed")))
    plan.splits = [float(bp.params.get("validation_split") or 0.0) for bp in blueprints]
    if not blueprints:  # folders not on this machine: the command-line split still says what will happen
        split = get("validation_split")
        plan.splits = [float(split)] if isinstance(split, (int, float)) and not isinstance(split, bool) else []
    for option in ("validate_every_n_steps", "validate_every_n_epochs"):
        value = _int(get(option))
        if value == 0:
            unsupported.append(Unsupported(option, "0: sd-scripts stops with ZeroDivisionError at the first check; "
                                           "leave it out (or a positive number)", refused=True))
    bad = [s for s in plan.splits if not 0.0 <= s <= 1.0]
    if bad:
        notes.append(f"validation_split {bad[0]} is outside [0, 1]: no images are held out (sd-scripts skips it)")
    if not plan.enabled:
        if plan.every_n_steps or plan.every_n_epochs or plan.max_steps is not None:
            notes.append("validate_every_n_* / max_validation_steps without validation_split: nothing to validate")
        return plan
    plan.timesteps = validation_timesteps(noise.min_timestep, noise.max_timestep)
    if family in FLUX_FAMILIES:
        plan.fixed_timesteps = False
        notes.append(f"FLUX.1 validation: each batch is run {len(plan.timesteps)} times, each with a sigma drawn by "
                     "timestep_sampling (flux_train_network.py ignores the fixed validation timesteps); the pass is "
                     "reseeded, so every pass draws the same noise and sigmas")
    if any(not bp.is_dreambooth for bp in blueprints if float(bp.params.get("validation_split") or 0) > 0):
        notes.append("validation_split on a fine-tune (metadata_file) dataset: sd-scripts splits nothing there and "
                     "validates on a copy of the training images; lora-compat does the same")
    return plan
