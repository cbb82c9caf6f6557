"""The model family of a config, decided once in the spine from what the input says, with its reason.

``detect_family(cfg, doc)`` is called by :func:`lora_compat.config.load.load_config` for every dialect. It
collects the *markers* the document holds and weighs every piece of evidence in this documented priority order
(a stronger kind decides; a weaker one only narrows among what the stronger ones allow):

1. **script** — the training script: a command line's ``flux_train_network.py`` / ``sdxl_train_network.py`` /
   ``train_network.py`` …, a ``# lora-compat: script = "…"`` comment in an sd-scripts TOML, the kohya_ss GUI's
   model checkboxes (``sdxl``, ``flux1_checkbox``, ``sd3_checkbox``, ``hunyuan_image_checkbox``,
   ``anima_checkbox``, ``lumina_checkbox``: the first one set picks the script, none = ``train_network.py``),
   Derrian's ``sdxl`` flag and ``[flux_args]`` / ``[anima_args]`` sections (ArgStore JSON always ran
   ``train_network.py``), the native ``model.arch``. The script's own switches pick within it: ``v2`` (SD2.x with
   ``train_network.py``), ``model_type`` (``chroma`` with ``flux_train_network.py``).
2. **network_module** — ``networks.lora_flux`` names FLUX.1/Chroma, ``networks.lora`` SD1/SD2/SDXL …
3. **options** only some scripts accept (``ae``, ``clip_l``, ``t5xxl``, ``guidance_scale``, ``clip_g``,
   ``gemma2``, ``qwen3`` …), and in a file without a script marker ``v2`` / ``model_type``. Not read from kohya_ss
   GUI files, whose every field is GUI state whether its checkbox is set or not.
4. **base model content** — when ``pretrained_model_name_or_path`` exists on this machine: a diffusers folder's
   ``model_index.json`` / component ``config.json``, or a ``.safetensors`` header (keys, then metadata).
5. **base model name** — a hint from the file/folder name or hub id (``sd_xl_base``, ``flux1-dev``,
   ``sd3.5_large``).

Nothing at all: sd-scripts' own default, ``train_network.py`` = SD1.x, said as such in ``family_source``.
Evidence that contradicts a stronger kind never changes the decision: it becomes a note (``family-conflict``,
``family-base-model-conflict``, ``family-base-model-name``) that show and lint report.

The result is ``cfg.family`` (an id of :mod:`lora_compat.arch.families`), ``cfg.family_source`` (why, e.g.
``script flux_train_network.py (command line line 3)``) and ``cfg.family_origin``. Stages that cannot handle the
family refuse it by name at one place: :func:`require_family`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lora_compat.arch import families
from lora_compat.config.model import CanonicalConfig, Note, Origin

if TYPE_CHECKING:
    from lora_compat.config.document import Document

# Evidence kinds, strongest first.
SCRIPT, MODULE, OPTION, CONTENT, HINT = 0, 1, 2, 3, 4
_KIND_WORDS = {SCRIPT: "script", MODULE: "network_module", OPTION: "option", CONTENT: "base model",
               HINT: "base model name"}

# Families a script trains when its switches (--v2, --model_type) are at their defaults.
DEFAULT_SOURCE = "default: nothing in the config names a model family; train_network.py trains SD1.x"


@dataclass(frozen=True)
class FamilyMarker:
    """One piece of evidence about the family: which families it allows (preferred first) and why.

    Script markers keep the script name: the families are resolved when deciding, with the script's switches
    (``v2``, ``model_type``) as they are then (``train --set v2=true`` changes them after loading).
    """

    kind: int
    what: str                          # "kohya_ss GUI flux1_checkbox (line 40)"
    origin: Origin | None = None
    families: tuple[str, ...] = ()
    script: str | None = None
    model_type: str | None = None      # a front-end's model_type field (kohya_ss GUI), read with the marker


# --- collecting what the document says ---------------------------------------------------------------------------

def _where(origin: Origin | None) -> str:
    if origin is None or not origin.line:
        return ""
    return f" (line {origin.line})"


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value) and value is not None


def document_markers(cfg: CanonicalConfig, doc: Document) -> list[FamilyMarker]:
    """The script-level markers of ``doc`` (what only the raw document holds), per dialect."""
    from lora_compat.config import dialects

    dialect = cfg.dialect
    data = doc.data
    out: list[FamilyMarker] = []
    if dialect == dialects.COMMAND_LINE:
        script = doc.meta.get("script")
        if script:
            line, col = doc.meta.get("script_pos", (None, None))
            origin = Origin(doc.path, script, line, col, script)
            where = f" (command line line {line})" if line else ""
            out.append(FamilyMarker(SCRIPT, f"script {script}{where}", origin, script=script))
    elif dialect == dialects.SD_SCRIPTS_TOML:
        m = _SCRIPT_COMMENT.search(doc.text or "")
        if m:
            line = doc.text.count("\n", 0, m.start()) + 1
            origin = Origin(doc.path, "# lora-compat: script", line, 1, m.group("script"))
            script = m.group("script")
            if families.script_families(script):
                out.append(FamilyMarker(SCRIPT, f"script {script} named in a comment (line {line})", origin,
                                        script=script))
    elif dialect == dialects.KOHYA_GUI and isinstance(data, dict):
        out += _kohya_gui_markers(doc, data)
    elif dialect == dialects.DERRIAN_TOML and isinstance(data, dict):
        out += _derrian_toml_markers(doc, data)
    elif dialect == dialects.DERRIAN_ARGSTORE:
        out.append(FamilyMarker(SCRIPT, "Derrian ArgStore scripts always run train_network.py", None,
                                script="train_network.py"))
    elif dialect == dialects.NATIVE and isinstance(data, dict):
        model = data.get("model")
        arch = model.get("arch") if isinstance(model, dict) else None
        if isinstance(arch, str) and arch in families.FAMILIES:
            origin = doc.origin("model.arch", arch)
            out.append(FamilyMarker(SCRIPT, f"model.arch = \"{arch}\"{_where(origin)}", origin, families=(arch,)))
    return out


_SCRIPT_COMMENT = re.compile(r'^#\s*lora-compat:\s*script\s*=\s*"(?P<script>[\w.-]+)"\s*$', re.M)


def _kohya_gui_markers(doc: Document, data: dict[str, Any]) -> list[FamilyMarker]:
    """The GUI picks the script from its model checkboxes, first one set wins (kohya_gui/lora_gui.py)."""
    for key, script in families.KOHYA_GUI_CHECKBOXES:
        if _truthy(data.get(key)):
            origin = doc.origin(key, data.get(key))
            # the GUI passes --model_type chroma only with the FLUX.1 checkbox (lora_gui.py)
            model_type = data.get("model_type") if key == "flux1_checkbox" else None
            return [FamilyMarker(SCRIPT, f"kohya_ss GUI {key} = true{_where(origin)}, which runs {script}", origin,
                                 script=script, model_type=str(model_type) if model_type else None)]
    unset: Origin | None = doc.origin("sdxl", data.get("sdxl")) if "sdxl" in data else None
    return [FamilyMarker(SCRIPT, "kohya_ss GUI: no model checkbox set (sdxl, flux1_checkbox ...), "
                         "which runs train_network.py", unset, script="train_network.py")]


def _derrian_toml_markers(doc: Document, data: dict[str, Any]) -> list[FamilyMarker]:
    """Derrian's backend: ``sdxl`` -> sdxl_train_network.py, a non-empty ``[flux_args]`` ->
    flux_train_network.py (both: the backend refuses), else train_network.py."""
    out: list[FamilyMarker] = []
    general = data.get("general_args")
    args = general.get("args") if isinstance(general, dict) else None
    if isinstance(args, dict) and _truthy(args.get("sdxl")):
        origin = doc.origin("general_args.args.sdxl", args.get("sdxl"))
        out.append(FamilyMarker(SCRIPT, f"Derrian general_args.args.sdxl = true{_where(origin)}, which runs "
                                "sdxl_train_network.py", origin, script="sdxl_train_network.py"))
    for section, script in families.DERRIAN_SECTIONS.items():
        body = data.get(section)
        if isinstance(body, dict) and any(v for v in body.values()):
            origin = doc.origin(section)
            out.append(FamilyMarker(SCRIPT, f"Derrian [{section}] section{_where(origin)}, which runs {script}", origin,
                                    script=script))
    if not out:
        out.append(FamilyMarker(SCRIPT, "Derrian UI: no sdxl flag and no [flux_args], which runs train_network.py",
                                None, script="train_network.py"))
    return out


# --- evidence that the canonical model and the machine hold ------------------------------------------------------

def _option_value(cfg: CanonicalConfig, name: str) -> tuple[bool, Any, Origin | None]:
    """(present, value, origin) of ``name`` among the canonical options or the keys kept as unknown."""
    if name in cfg.options:
        s = cfg.options[name]
        return True, s.value, s.prov.origin
    for u in cfg.unknown_keys:
        if u.key == name or (u.key.rsplit(".", 1)[-1] == name and cfg.dialect != "kohya-gui"):
            return True, u.value, u.origin
    return False, None, None


def option_markers(cfg: CanonicalConfig, has_script: bool) -> list[FamilyMarker]:
    """``network_module``, family-only options and (without a script marker) ``v2`` / ``model_type``."""
    out: list[FamilyMarker] = []
    module = cfg.get("network_module")
    setting = cfg.options.get("network_module")
    # a module the reader filled in as the front-end's default is not something the file says
    if isinstance(module, str) and setting is not None and setting.prov.kind != "default":
        fams = families.network_module_families(module)
        if fams:
            origin = cfg.locate("network_module")
            out.append(FamilyMarker(MODULE, f"network_module {module}{_where(origin)}", origin, families=fams))
    gui = cfg.dialect == "kohya-gui"
    if not gui:
        for name, fams in families.FAMILY_OPTIONS.items():
            present, value, origin = _option_value(cfg, name)
            if present and value not in (None, "", False):
                names = ", ".join(families.display_name(f) for f in fams)
                out.append(FamilyMarker(OPTION, f"option {name}{_where(origin)} ({names} only)", origin, fams))
    if not has_script:
        if _truthy(cfg.get("v2")):
            origin = cfg.locate("v2")
            out.append(FamilyMarker(OPTION, f"v2 = true{_where(origin)}", origin, families=("sd2",)))
        present, value, origin = _option_value(cfg, "model_type")
        if present and not gui and str(value).lower() in families.FLUX_MODEL_TYPES:
            fam = families.FLUX_MODEL_TYPES[str(value).lower()]
            out.append(FamilyMarker(OPTION, f"model_type {value}{_where(origin)}", origin, families=(fam,)))
    return out


def _model_type(cfg: CanonicalConfig) -> str | None:
    """``model_type`` as the options hold it (never a kohya_ss GUI field: the GUI's marker carries that)."""
    present, value, _ = _option_value(cfg, "model_type")
    return str(value) if present and cfg.dialect != "kohya-gui" else None


def resolve_base_model(cfg: CanonicalConfig, value: str) -> str | None:
    """The local path of a base model value: as given (sd-scripts resolves it from the working directory), else
    next to the file that set it. None when neither exists (a hub id, a path on another machine)."""
    value = value.strip()
    if not value:
        return None
    if os.path.exists(value):
        return value
    origin = cfg.locate("pretrained_model_name_or_path")
    base = origin.file if origin and origin.file and not origin.file.startswith("<") else cfg.source
    if not os.path.isabs(value) and base:
        cand = os.path.join(os.path.dirname(os.path.abspath(base)), value)
        if os.path.exists(cand):
            return cand
    return None


def base_model_markers(cfg: CanonicalConfig, base_model: str | None = None) -> list[FamilyMarker]:
    """What the base model's files (when on this machine) and its name say."""
    origin: Origin | None
    if base_model is not None:
        value, origin, label = base_model, Origin("<command line>", "--base-model", raw=base_model), "--base-model"
    else:
        value = cfg.get("pretrained_model_name_or_path")
        origin = cfg.locate("pretrained_model_name_or_path")
        label = "pretrained_model_name_or_path"
    if not isinstance(value, str) or not value.strip():
        return []
    out: list[FamilyMarker] = []
    path = resolve_base_model(cfg, value) if base_model is None else (value if os.path.exists(value) else None)
    found = None
    if path is not None:
        found = families.family_of_model_path(path)
        if found is not None:
            variant = f" {found.variant}" if found.variant else ""
            out.append(FamilyMarker(CONTENT, f"base model {value} is {families.display_name(found.family)}{variant} "
                                    f"({found.why})", origin, families=(found.family,)))
    if value.startswith("tiny:") and value[5:] in families.SD_FAMILIES:
        out.append(FamilyMarker(CONTENT, f"{label} {value}: the tiny {families.display_name(value[5:])} model", origin,
                                families=(value[5:],)))
    hint = families.family_from_model_name(value)
    # a name that agrees with the files adds nothing; one that disagrees is worth a note
    if hint is not None and not value.startswith("tiny:") and (found is None or found.family != hint.family):
        out.append(FamilyMarker(HINT, f"base model {hint.where} {hint.text!r} suggests "
                                f"{families.display_name(hint.family)}", origin, families=(hint.family,)))
    return out


# --- deciding ----------------------------------------------------------------------------------------------------

def _marker_families(cfg: CanonicalConfig, m: FamilyMarker) -> tuple[str, ...]:
    if m.script is None:
        return m.families
    fam = families.family_of_script(m.script, v2=_truthy(cfg.get("v2")), model_type=m.model_type or _model_type(cfg))
    return (fam,) if fam else ()


def _script_what(cfg: CanonicalConfig, m: FamilyMarker, fam: str) -> str:
    """The marker's text plus the switch that picked within its script (``with v2``, ``--model_type chroma``)."""
    if m.script == "train_network.py" and fam == "sd2":
        return m.what + " with v2"
    if m.script == "flux_train_network.py" and fam == "chroma":
        return m.what + " with model_type chroma"
    return m.what


# What sd-scripts trains when the evidence leaves several families of one script open.
_DEFAULT_WITHIN = {
    frozenset({"sd1", "sd2"}): "SD1.x: train_network.py without v2",
    frozenset({"sd1", "sd2", "sdxl"}): "SD1.x: train_network.py without v2",
    frozenset({"flux1", "chroma"}): "FLUX.1: flux_train_network.py without model_type chroma",
}
_CONFLICT_CODES = {CONTENT: "family-base-model-conflict", HINT: "family-base-model-name"}


def decide_family(cfg: CanonicalConfig, *, base_model: str | None = None,
                  overrides: dict[str, Any] | None = None) -> None:
    """(Re)decide ``cfg.family`` from the stored document markers, the options and the base model.

    ``base_model`` (``train --base-model``) replaces ``pretrained_model_name_or_path`` as the model looked at;
    ``overrides`` (``train --set``): ``sdxl`` replaces the document's script markers (``v2`` is read from the
    options, where ``--set`` already put it). Conflict notes from an earlier decision are replaced.
    """
    cfg.notes = [n for n in cfg.notes if not n.code.startswith("family-")]
    if cfg.dialect == "sd-scripts-dataset":
        cfg.family, cfg.family_source, cfg.family_origin = None, "a dataset config names no model family", None
        return
    if overrides and "sdxl" in overrides:
        script = "sdxl_train_network.py" if _truthy(overrides["sdxl"]) else "train_network.py"
        origin = Origin("<command line>", "--set sdxl", raw=overrides["sdxl"])
        cfg.family_markers = [m for m in cfg.family_markers if m.kind != SCRIPT] + [
            FamilyMarker(SCRIPT, f"--set sdxl={str(overrides['sdxl']).lower()}, which runs {script}", origin,
                         script=script)]
    markers = list(cfg.family_markers)
    has_script = any(m.kind == SCRIPT for m in markers)
    markers += option_markers(cfg, has_script)
    markers += base_model_markers(cfg, base_model)
    markers.sort(key=lambda m: m.kind)  # stable: document order within a kind

    candidates: list[str] | None = None
    decided_by: list[tuple[FamilyMarker, str]] = []
    for m in markers:
        fams = _marker_families(cfg, m)
        if not fams:
            continue
        narrowed = [f for f in candidates if f in fams] if candidates is not None else list(fams)
        if not narrowed:
            _conflict(cfg, m, fams, candidates or [], decided_by)
            continue
        if candidates is None or len(narrowed) < len(candidates):
            decided_by.append((m, narrowed[0]))
        candidates = narrowed
    if candidates is None:
        cfg.family, cfg.family_source, cfg.family_origin = "sd1", DEFAULT_SOURCE, None
        return
    fam = candidates[0]
    first, _ = decided_by[0]
    last = decided_by[-1][0]
    what = _script_what(cfg, last, fam) if last.script else last.what
    source = what if len(decided_by) == 1 or last is first else f"{what}; {first.what}"
    if len(candidates) > 1 and frozenset(candidates) not in _DEFAULT_WITHIN:
        others = ", ".join(families.display_name(f) for f in candidates[1:])
        cfg.notes.append(Note("family-ambiguous", f"the config fits {families.display_name(fam)} and also {others}; "
                              f"{families.display_name(fam)} is taken ({source})", last.origin,
                              {"family": fam, "candidates": candidates}))
    elif len(candidates) > 1:
        source += " (" + _DEFAULT_WITHIN[frozenset(candidates)] + ")"
    cfg.family, cfg.family_source, cfg.family_origin = fam, source, last.origin
    _switch_notes(cfg, fam, last)


def _conflict(cfg: CanonicalConfig, m: FamilyMarker, fams: tuple[str, ...], candidates: list[str],
              decided_by: list[tuple[FamilyMarker, str]]) -> None:
    code = _CONFLICT_CODES.get(m.kind, "family-conflict")
    by = decided_by[-1][0] if decided_by else None
    theirs = " / ".join(families.display_name(f) for f in fams)
    ours = " / ".join(families.display_name(f) for f in candidates)
    decided = (_script_what(cfg, by, candidates[0]) if by and by.script else by.what) if by else "?"
    if m.kind == CONTENT:
        msg = (f"{m.what}, but the config trains {ours} ({decided}): sd-scripts would load it as {ours} and fail; "
               "point the config at a matching model or change the model-family setting")
    elif m.kind == HINT:
        msg = f"{m.what}, but the config trains {ours} ({decided}): check the base model or the model-family setting"
    else:
        word = _KIND_WORDS[by.kind] if by else "marker"
        msg = f"{m.what} is for {theirs}, but the config trains {ours} ({decided}): the {word} decides"
    cfg.notes.append(Note(code, msg, m.origin, {"family": candidates[0] if candidates else None,
                                                "other": list(fams), "evidence": m.what}))


def _switch_notes(cfg: CanonicalConfig, fam: str, last: FamilyMarker) -> None:
    """A family taken from the base model when the config lacks the switch sd-scripts needs to train it."""
    if last.kind not in (CONTENT, HINT) or any(m.kind == SCRIPT for m in cfg.family_markers):
        return
    if fam == "sd2" and not _truthy(cfg.get("v2")):
        cfg.notes.append(Note("family-switch-missing", "the base model is SD2.x but v2 is not set: sd-scripts' "
                              "train_network.py loads it as SD1.x and fails; set v2 = true", last.origin,
                              {"family": fam, "switch": "v2"}))
    elif fam == "chroma" and str(_model_type(cfg) or "").lower() != "chroma":
        cfg.notes.append(Note("family-switch-missing", "the base model is Chroma but model_type is not \"chroma\": "
                              "flux_train_network.py loads it as FLUX.1 and fails; set model_type = \"chroma\"",
                              last.origin, {"family": fam, "switch": "model_type"}))


def detect_family(cfg: CanonicalConfig, doc: Document) -> None:
    """Decide the family of a freshly read config (the spine calls this once per load, every dialect)."""
    cfg.family_markers = document_markers(cfg, doc)
    decide_family(cfg)


# --- refusing --------------------------------------------------------------------------------------------------

#: What each stage is called in a refusal (the command a user ran).
STAGE_COMMANDS = {families.CONFIG: "lint", families.MIGRATE: "migrate", families.PLAN: "plan",
                  families.TRAIN: "train", families.WEIGHTS: "convert"}


def require_family(cfg: CanonicalConfig, stage: str) -> None:
    """Refuse (UnsupportedFamilyError: one line, exit 2) when ``stage`` cannot handle the config's family yet.

    The one place migrate, plan and train pass through before they use SD code paths. A dataset config (no
    family) passes: the stage decides what it does with it.
    """
    from lora_compat.errors import UnsupportedFamilyError

    if cfg.family is None:
        return
    fam = families.family(cfg.family)
    if fam.supports(stage):
        if stage == families.TRAIN:
            # training would load gigabytes and then fail on the mismatch: say it now, in one line
            clash = next((n for n in cfg.notes if n.code == "family-base-model-conflict"), None)
            if clash is not None:
                from lora_compat.errors import UserError

                raise UserError(clash.message, file=cfg.source, key="pretrained_model_name_or_path")
        return
    command = STAGE_COMMANDS.get(stage, stage)
    ok = ", ".join(families.display_name(f) for f in families.supported_families(stage))
    raise UnsupportedFamilyError(f"{fam.label} is not supported by `{command}` yet (family from {cfg.family_source}); "
                            f"`{command}` handles {ok}; `show` and `lint` read this file", file=cfg.source,
                            family=fam.id)


def family_summary(cfg: CanonicalConfig) -> dict[str, Any]:
    """``family``, ``family_name``, ``family_source`` for ``show --format json`` (a stable contract)."""
    return {"family": cfg.family, "family_name": families.display_name(cfg.family) if cfg.family else None,
            "family_source": cfg.family_source}
