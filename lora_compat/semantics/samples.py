"""Sample images and validation loss: sd-scripts' rules as pure functions (stdlib only).

* Prompt files (``train_util.load_prompts`` / ``line_to_prompt_dict``): ``.txt`` lines with ``--n`` negative prompt,
  ``--w``/``--h`` size, ``--d`` seed, ``--l`` CFG scale, ``--s`` steps, ``--ss`` sampler (and the newer ``--g``,
  ``--cn``, ``--ctr``, ``--rcfg``, ``--fs`` of other families); ``.toml`` files (``[prompt]`` defaults merged into
  every ``[[prompt.subset]]``); ``.json`` files (a list of prompt objects or lines).
* When to sample (``sample_images_common``'s first lines), how the image file is named, and the ``sample_sampler``
  names with the diffusers scheduler each one builds (``get_my_scheduler``).
* When to validate and at which fixed timesteps (``train_network.py``'s validation loop).

Values are kept as the prompt file gives them; family defaults (SD: 512x512, 30 steps, CFG 7.5; FLUX: 20 steps,
guidance 3.5, CFG 1.0) and size rounding are applied by the engine's family, since they differ per family.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from lora_compat.errors import UserError

#: Prompt-object keys sd-scripts reads (``sample_image_inference`` of every family), with their Python types.
PROMPT_KEYS: dict[str, tuple[type, ...]] = {
    "prompt": (str,), "negative_prompt": (str,), "width": (int,), "height": (int,), "seed": (int,),
    "sample_steps": (int,), "scale": (int, float), "guidance_scale": (int, float), "sample_sampler": (str,),
    "controlnet_image": (str,), "cfg_trunc_ratio": (int, float), "renorm_cfg": (int, float),
    "flow_shift": (str, int, float),
}
_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number"}

# line_to_prompt_dict: (regex, key, convert); tried in this order on every " --" piece, the prompt itself included.
_LINE_OPTIONS: tuple[tuple[re.Pattern[str], str, Any], ...] = (
    (re.compile(r"w (\d+)", re.IGNORECASE), "width", int),
    (re.compile(r"h (\d+)", re.IGNORECASE), "height", int),
    (re.compile(r"d (\d+)", re.IGNORECASE), "seed", int),
    (re.compile(r"s (\d+)", re.IGNORECASE), "sample_steps", lambda v: max(1, min(1000, int(v)))),
    (re.compile(r"l ([\d\.]+)", re.IGNORECASE), "scale", float),
    (re.compile(r"g ([\d\.]+)", re.IGNORECASE), "guidance_scale", float),
    (re.compile(r"n (.+)", re.IGNORECASE), "negative_prompt", str),
    (re.compile(r"ss (.+)", re.IGNORECASE), "sample_sampler", str),
    (re.compile(r"cn (.+)", re.IGNORECASE), "controlnet_image", str),
    (re.compile(r"ctr (.+)", re.IGNORECASE), "cfg_trunc_ratio", float),
    (re.compile(r"rcfg (.+)", re.IGNORECASE), "renorm_cfg", float),
    (re.compile(r"fs (.+)", re.IGNORECASE), "flow_shift", str),
)


@dataclass
class SamplePrompt:
    """One sample image to make: the prompt file's values (None = the family default) and its position.

    ``index`` is the prompt's position in the file (sd-scripts' ``enum``, the ``_NN_`` of the image name);
    ``extra`` holds keys of a ``.toml``/``.json`` prompt object that sd-scripts does not read.
    """

    index: int
    prompt: str = ""
    negative_prompt: str | None = None
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    sample_steps: int | None = None
    scale: float | None = None
    guidance_scale: float | None = None
    sample_sampler: str | None = None
    controlnet_image: str | None = None
    cfg_trunc_ratio: float | None = None
    renorm_cfg: float | None = None
    flow_shift: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)   # pieces sd-scripts logs as parse errors and skips

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("extra", "problems") and v is not None}
        if self.extra:
            out["extra"] = dict(self.extra)
        if self.problems:
            out["problems"] = list(self.problems)
        return out


def parse_prompt_line(line: str, index: int = 0) -> SamplePrompt:
    """One ``.txt`` line as sd-scripts' ``line_to_prompt_dict`` reads it.

    The line is split on ``" --"``; the first piece is the prompt. *Every* piece, the prompt included, is then
    matched (from its start, case-insensitively) against ``w N``, ``h N``, ``d N``, ``s N`` (clamped to 1..1000),
    ``l X``, ``g X``, ``n TEXT``, ``ss NAME``, ``cn PATH``, ``ctr X``, ``rcfg X``, ``fs X``, the first match wins,
    later pieces override earlier ones. So a prompt that itself starts with ``n dog`` also sets the negative
    prompt, as in sd-scripts. A value that does not convert (``--l 7.5.1``) is skipped (sd-scripts logs it) and
    recorded in ``problems``.
    """
    pieces = line.split(" --")
    values: dict[str, Any] = {"prompt": pieces[0]}
    problems: list[str] = []
    for piece in pieces:
        for pattern, key, convert in _LINE_OPTIONS:
            m = pattern.match(piece)
            if m:
                try:
                    values[key] = convert(m.group(1))
                except ValueError:
                    problems.append(f"--{piece}")
                break
    return SamplePrompt(index=index, problems=problems, **values)


def _prompt_from_object(obj: dict[str, Any], index: int, where: str) -> SamplePrompt:
    known: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in obj.items():
        types = PROMPT_KEYS.get(key)
        if types is None:
            extra[key] = value
            continue
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            want = " or ".join(_TYPE_WORDS[t] for t in types if not (t is int and float in types))
            raise UserError(f"{key} must be {want}, not {value!r}", key=f"{where}.{key}")
        if key in ("width", "height", "sample_steps") and isinstance(value, int) and value < 1:
            raise UserError(f"{key} must be at least 1, not {value}", key=f"{where}.{key}")
        known[key] = value
    for key in ("scale", "guidance_scale", "cfg_trunc_ratio", "renorm_cfg"):
        if key in known:
            known[key] = float(known[key])
    if "flow_shift" in known:
        known["flow_shift"] = str(known["flow_shift"])
    return SamplePrompt(index=index, extra=extra, **known)


def prompts_from_text(text: str) -> list[SamplePrompt]:
    """The prompts of a ``.txt`` prompt file's text: stripped non-empty lines, except lines whose *first
    character* is ``#`` (an indented ``# x`` is a prompt, as in sd-scripts), each parsed by
    :func:`parse_prompt_line`."""
    lines = [line.strip() for line in text.splitlines(keepends=True) if line.strip() and line[0] != "#"]
    return [parse_prompt_line(line, i) for i, line in enumerate(lines)]


def load_sample_prompts(path: str | os.PathLike[str]) -> list[SamplePrompt]:
    """Read a ``sample_prompts`` file as sd-scripts' ``load_prompts`` does; bad input is a one-line UserError.

    * ``.txt``: stripped non-empty lines, except lines whose *first character* is ``#`` (an indented ``# x`` is a
      prompt, as in sd-scripts), each parsed by :func:`parse_prompt_line`;
    * ``.toml``: ``[prompt]`` holds defaults, each ``[[prompt.subset]]`` one image; a key given in both is an error
      (sd-scripts' ``dict(**prompt, **subset)`` raises TypeError);
    * ``.json``: a list whose items are prompt objects or ``.txt``-style lines.

    The extension is matched case-sensitively like sd-scripts (which fails on any other name).
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise UserError("the sample prompt file does not exist", file=name, key="sample_prompts")
    try:
        with open(name, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the sample prompt file: {exc}", file=name, key="sample_prompts") from None
    if name.endswith(".txt"):
        return prompts_from_text(text)
    if name.endswith(".toml"):
        return _load_toml_prompts(name, text)
    if name.endswith(".json"):
        return _load_json_prompts(name, text)
    raise UserError("a sample prompt file must end in .txt, .toml or .json (sd-scripts reads no other)",
                    file=name, key="sample_prompts")


def _load_toml_prompts(name: str, text: str) -> list[SamplePrompt]:
    from lora_compat.config.loaders import parse_toml  # the one TOML reader: one-line errors with positions

    data = parse_toml(name, text).data
    table = data.get("prompt")
    if not isinstance(table, dict) or not isinstance(table.get("subset"), list):
        raise UserError("a TOML prompt file needs a [prompt] table with [[prompt.subset]] entries", file=name,
                        key="prompt.subset")
    defaults = {k: v for k, v in table.items() if k != "subset"}
    out = []
    for i, subset in enumerate(table["subset"]):
        where = f"prompt.subset[{i}]"
        if not isinstance(subset, dict):
            raise UserError("each [[prompt.subset]] must be a table", file=name, key=where)
        twice = sorted(set(defaults) & set(subset))
        if twice:
            raise UserError(f"{', '.join(twice)} given both in [prompt] and in this subset (sd-scripts stops with "
                            "TypeError: keep it in one place)", file=name, key=where)
        merged = {**defaults, **subset}
        try:
            out.append(_prompt_from_object(merged, i, where))
        except UserError as exc:
            raise UserError(exc.reason, file=name, key=exc.key) from None
    return out


def _load_json_prompts(name: str, text: str) -> list[SamplePrompt]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg}", file=name, line=exc.lineno, col=exc.colno) from None
    if not isinstance(data, list):
        raise UserError("a JSON prompt file must hold a list of prompts", file=name)
    out = []
    for i, item in enumerate(data):
        if isinstance(item, str):
            out.append(parse_prompt_line(item, i))
        elif isinstance(item, dict):
            try:
                out.append(_prompt_from_object(item, i, f"[{i}]"))
            except UserError as exc:
                raise UserError(exc.reason, file=name, key=exc.key) from None
        else:
            raise UserError(f"a prompt must be an object or a string, not {item!r}", file=name, key=f"[{i}]")
    return out


# ------------------------------------------------------------------------------------------------ when to sample
def sampling_interval(value: int | None) -> int | None:
    """``sample_every_n_steps`` / ``_epochs`` after sd-scripts' check: 0 or less disables it (with a warning)."""
    return value if value is not None and value > 0 else None


def sample_due(*, global_step: int, epoch: int | None, every_n_steps: int | None, every_n_epochs: int | None,
               at_first: bool) -> bool:
    """Whether sd-scripts' ``sample_images_common`` makes images at this call.

    It is called before training (``global_step`` 0, ``epoch`` 0), after every optimizer step (``epoch`` None) and
    at the end of every epoch (``epoch`` = the 1-based number just finished). ``every_n_epochs`` makes
    ``every_n_steps`` ignored. Intervals are as :func:`sampling_interval` returns them.
    """
    if global_step == 0:
        return at_first
    if every_n_steps is None and every_n_epochs is None:
        return False
    if every_n_epochs is not None:
        return epoch is not None and epoch % every_n_epochs == 0
    assert every_n_steps is not None
    return epoch is None and global_step % every_n_steps == 0


def sample_image_name(*, output_name: str | None, index: int, global_step: int, epoch: int | None,
                      seed: int | None, when: float | None = None) -> str:
    """The file name sd-scripts gives a sample image (in ``<output_dir>/sample``).

    ``[<output_name>_]<e{epoch:06d} | {step:06d}>_<index:02d>_<YYYYmmddHHMMSS local time>[_<seed>].png``: the
    epoch form at epoch ends and before training (``e000000``), the step form after a step.
    """
    stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(when))
    number = f"e{epoch:06d}" if epoch is not None else f"{global_step:06d}"
    prefix = "" if output_name is None else output_name + "_"
    return f"{prefix}{number}_{index:02d}_{stamp}{'' if seed is None else f'_{seed}'}.png"


# --------------------------------------------------------------------------------------------------- samplers
#: sd-scripts' DDPM schedule for sampling (``get_my_scheduler``): SD1, SD2 and SDXL alike.
SAMPLE_SCHEDULE: dict[str, Any] = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                                   "beta_schedule": "scaled_linear"}


@dataclass(frozen=True)
class SamplerSpec:
    """The diffusers scheduler a ``sample_sampler`` name builds: class name, extra keyword arguments, and the
    package it needs beyond diffusers (None: none)."""

    name: str
    scheduler_class: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    needs: str | None = None


def _spec(name: str, cls: str, needs: str | None = None, **kwargs: Any) -> SamplerSpec:
    return SamplerSpec(name, cls, tuple(sorted(kwargs.items())), needs)


#: Every name sd-scripts' ``--sample_sampler`` accepts, plus ``ddpm`` (not an argparse choice, but a
#: ``--config_file`` TOML or a prompt's ``--ss`` reaches it), each with what ``get_my_scheduler`` builds.
SAMPLERS: dict[str, SamplerSpec] = {
    "ddim": _spec("ddim", "DDIMScheduler"),
    "ddpm": _spec("ddpm", "DDPMScheduler"),
    "pndm": _spec("pndm", "PNDMScheduler"),
    "lms": _spec("lms", "LMSDiscreteScheduler", needs="scipy"),
    "k_lms": _spec("k_lms", "LMSDiscreteScheduler", needs="scipy"),
    "euler": _spec("euler", "EulerDiscreteScheduler"),
    "k_euler": _spec("k_euler", "EulerDiscreteScheduler"),
    "euler_a": _spec("euler_a", "EulerAncestralDiscreteScheduler"),
    "k_euler_a": _spec("k_euler_a", "EulerAncestralDiscreteScheduler"),
    "dpmsolver": _spec("dpmsolver", "DPMSolverMultistepScheduler", algorithm_type="dpmsolver"),
    "dpmsolver++": _spec("dpmsolver++", "DPMSolverMultistepScheduler", algorithm_type="dpmsolver++"),
    "dpmsingle": _spec("dpmsingle", "DPMSolverSinglestepScheduler"),
    "heun": _spec("heun", "HeunDiscreteScheduler"),
    "dpm_2": _spec("dpm_2", "KDPM2DiscreteScheduler"),
    "k_dpm_2": _spec("k_dpm_2", "KDPM2DiscreteScheduler"),
    "dpm_2_a": _spec("dpm_2_a", "KDPM2AncestralDiscreteScheduler"),
    "k_dpm_2_a": _spec("k_dpm_2_a", "KDPM2AncestralDiscreteScheduler"),
}


def sampler_spec(name: str | None) -> tuple[SamplerSpec, str | None]:
    """The scheduler for a sampler name and a note when the name is unknown: sd-scripts then builds DDIM
    without a word (a prompt's ``--ss`` is never checked); the note says so."""
    if name is not None and name in SAMPLERS:
        return SAMPLERS[name], None
    if name is None:
        return SAMPLERS["ddim"], None
    return SAMPLERS["ddim"], (f"sampler {name!r} is not one sd-scripts knows; it samples with ddim "
                              f"(known: {', '.join(SAMPLERS)})")


def scheduler_kwargs(spec: SamplerSpec, *, v_parameterization: bool) -> dict[str, Any]:
    """The scheduler's constructor arguments (``get_my_scheduler``): the SD DDPM schedule, the sampler's own
    arguments, ``prediction_type="v_prediction"`` for v-parameterization. sd-scripts then switches
    ``clip_sample`` on for schedulers that have it (DDIM, DDPM): the engine passes ``clip_sample=True`` to those."""
    out = dict(SAMPLE_SCHEDULE)
    out.update(dict(spec.kwargs))
    if v_parameterization:
        out["prediction_type"] = "v_prediction"
    return out


# ------------------------------------------------------------------------------------------------ validation
#: sd-scripts validates every item at this many fixed timesteps (``NUM_VALIDATION_TIMESTEPS``).
NUM_VALIDATION_TIMESTEPS = 4


def validation_timesteps(min_timestep: int | None, max_timestep: int | None, num_train_timesteps: int = 1000,
                         count: int = NUM_VALIDATION_TIMESTEPS) -> list[int]:
    """The fixed timesteps of a validation pass: ``np.linspace(min, max, count + 2, dtype=int)[1:-1]`` with
    ``min`` = ``min_timestep`` or 0 and ``max`` = ``max_timestep`` or the scheduler's 1000 (200, 400, 600, 800
    by default). Computed as numpy does (``i * step + start`` in double precision, truncated)."""
    lo = 0 if min_timestep is None else int(min_timestep)
    hi = num_train_timesteps if max_timestep is None else int(max_timestep)
    div = count + 1
    step = (hi - lo) / div
    values = [float(lo) if step == 0 else i * step + lo for i in range(div + 1)]
    return [int(v) for v in values[1:-1]]   # the last value (set to max by numpy) is dropped anyway


def validation_steps(num_batches: int, max_validation_steps: int | None) -> int:
    """How many validation batches a pass runs (``min(max_validation_steps, len(val_dataloader))``)."""
    return num_batches if max_validation_steps is None else max(0, min(max_validation_steps, num_batches))


def validate_after_step(global_step: int, every_n_steps: int | None) -> bool:
    """sd-scripts validates after optimizer step ``global_step`` when ``validate_every_n_steps`` divides it."""
    return every_n_steps is not None and global_step % every_n_steps == 0


def validate_after_epoch(epoch: int, every_n_epochs: int | None) -> bool:
    """sd-scripts validates at the end of (1-based) ``epoch`` when ``validate_every_n_epochs`` divides it, and after
    every epoch when it is not set."""
    return every_n_epochs is None or epoch % every_n_epochs == 0
