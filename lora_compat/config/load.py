"""The spine's entry points: ``load_config(path) -> CanonicalConfig`` and ``detect(path) -> Detection``.

load (bytes -> Document with positions) -> detect dialect -> the dialect's reader (-> canonical model)
-> schema validation (``lora_compat.config.validate.validate_options``). Every bad input
ends as one :class:`~lora_compat.errors.UserError` line.
"""

from __future__ import annotations

from lora_compat.config import dialects
from lora_compat.config.detect import detect_document, era_and_tab
from lora_compat.config.detection import Detection
from lora_compat.config.document import CMDLINE, JSON, TOML, Document
from lora_compat.config.model import CanonicalConfig
from lora_compat.errors import UserError

# The container format each dialect is written in (for --dialect overrides of oddly named files).
DIALECT_FORMATS = {
    dialects.KOHYA_GUI: JSON, dialects.DERRIAN_ARGSTORE: JSON, dialects.DERRIAN_TOML: TOML,
    dialects.SD_SCRIPTS_TOML: TOML, dialects.SD_SCRIPTS_DATASET: TOML, dialects.NATIVE: TOML,
    dialects.COMMAND_LINE: CMDLINE,
}


def _check_dialect(dialect: str | None) -> None:
    if dialect is not None and dialect not in dialects.DIALECTS:
        raise UserError(f"unknown dialect {dialect!r}; choose one of {', '.join(dialects.DIALECTS)}", key="--dialect")


def read_document(path: str, *, dialect: str | None = None) -> Document:
    """Parse ``path`` (format from ``dialect`` when given, else from the name/content)."""
    from lora_compat.config.loaders import guess_format, parse_document, read_text

    _check_dialect(dialect)
    text = read_text(path)
    guessed = guess_format(path, text)
    fmt = DIALECT_FORMATS[dialect] if dialect else guessed
    if fmt != CMDLINE and guessed in (JSON, TOML) and guessed != fmt:
        # a .json file forced to a TOML dialect (or the reverse) is a user mistake worth saying plainly
        raise UserError(f"--dialect {dialect} reads {fmt.upper()} files, but this file is {guessed.upper()}",
                        file=path)
    return parse_document(path, text, fmt)


def detect(path: str, *, dialect: str | None = None) -> Detection:
    """What ``path`` is (dialect, era, tab, reasons); raises UserError only for unreadable files."""
    doc = read_document(str(path), dialect=dialect)
    return _detection(doc, dialect)


def _detection(doc: Document, dialect: str | None) -> Detection:
    found = detect_document(doc)
    if dialect is None or dialect == found.dialect:
        return found
    reasons = [f"--dialect {dialect} (content suggests {found.dialect or 'no known dialect'})"]
    era = tab = None
    if isinstance(doc.data, dict):
        era, tab, more = era_and_tab(dialect, doc.data)
        reasons += more
    return Detection(dialect, era=era, tab=tab, reasons=reasons)


def printable(text: str) -> str:
    """``text`` with control characters (newlines, ESC, BEL ...) written as escapes (``\\n``, ``\\x1b``):
    values from a config must not break a one-line message or drive the terminal (ANSI sequences)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


def load_config(path: str, *, dialect: str | None = None, resolve_dataset: bool = False,
                image_counts: dict[str, int] | None = None) -> CanonicalConfig:
    """Load any supported config into the canonical model; every error is one line (:class:`UserError`).

    ``dialect`` overrides detection. Non-training files (GUI settings, LECO prompts, caption metadata,
    block-weight presets ...) are refused with a UserError saying what the file is. Files the config points to
    (a dataset config, a ``--config_file``, image folders, the base model) may be absent: show, lint, migrate and
    plan read what is there and say what is unknown in notes. Only training needs them: ``resolve_dataset=True``
    makes a missing dataset config / ``--config_file`` an error (else a ``dataset-config-missing`` Note).
    ``image_counts`` (``--images FOLDER=COUNT``) gives the number of images of folders that are not here, by
    path or by sub-folder name (``"10_sks dog": 25``): front-ends that derived a length or a warmup from their
    own image count are then resolved exactly as they did.
    """
    path = str(path)
    doc = read_document(path, dialect=dialect)
    detection = _detection(doc, dialect)
    if not detection.training:
        raise UserError(f"this is {detection.what or 'not a training config'}; nothing to load", file=path)
    if detection.dialect is None:
        why = "; ".join(detection.reasons) or "no known markers"
        raise UserError(f"cannot tell which config dialect this is ({why}); pass --dialect, one of: "
                        f"{', '.join(dialects.DIALECTS)}", file=path)
    if not isinstance(doc.data, (dict, list)) or (doc.fmt != CMDLINE and not isinstance(doc.data, dict)):
        raise UserError("top level must be an object of keys (a config), not "
                        f"{type(doc.data).__name__}", file=path)
    doc.meta["resolve_dataset"] = resolve_dataset
    doc.meta["image_counts"] = dict(image_counts or {})
    read = dialects.reader(detection.dialect)
    try:
        cfg = read(doc, detection)
    except UserError:
        raise
    except RecursionError:
        raise UserError("config nested too deeply", file=path) from None
    except Exception as exc:  # a reader bug must still not surface as a traceback to users
        raise UserError(f"internal error in the {detection.dialect} reader ({type(exc).__name__}: {exc}); "
                        "please report this file", file=path) from exc
    cfg.document = doc   # the parsed input, for consumers that account for every key (migrate's report)
    _note_duplicate_keys(doc, cfg)
    _load_referenced_dataset(cfg, resolve_dataset)
    from lora_compat.config.family import detect_family

    detect_family(cfg, doc)
    if cfg.era is None:
        cfg.era = detection.era
    if cfg.tab is None:
        cfg.tab = detection.tab
    _validate(cfg)
    from lora_compat.config.secrets import iter_secret_values, remember

    remember(iter_secret_values(cfg))   # scrubbed from every output of this run, wherever they travel
    return cfg


def _note_duplicate_keys(doc: Document, cfg: CanonicalConfig) -> None:
    """A ``duplicate-key`` note for each earlier, dead occurrence of a repeated JSON key or command-line option.

    TOML needs none: the TOML parser refuses a repeated key. JSON front-ends (``json.load``) and sd-scripts'
    argparse (every option is a ``store`` action) silently keep the last value.
    """
    from lora_compat.config.model import Note, Origin
    from lora_compat.config.secrets import redact

    for key, (line, col), (last_line, _) in doc.meta.get("duplicate_keys", ()):
        cfg.notes.append(Note("duplicate-key", f"{key} is written again on line {last_line}: only that last "
                              f"value is used, this one (line {line}) has no effect",
                              Origin(doc.path, key, line, col), data={"last_line": last_line}))
    parsed = doc.meta.get("parsed")
    given = list(getattr(parsed, "given", None) or ())
    last_of = {g.dest: g for g in given}          # argparse keeps the last occurrence (one pass: linear)
    for opt in given:
        last = last_of[opt.dest]
        if last is opt or last.value == opt.value:
            continue  # the last one itself, a repeated flag or the same value twice changes nothing

        def written(g) -> str:  # credentials never reach a note
            return f"{g.written} {redact(g.dest, ' '.join(g.raw))}".rstrip()

        cfg.notes.append(Note("duplicate-key", f"{written(opt)} is overridden by {written(last)} later on the "
                              "command line (argparse keeps the last value)",
                              Origin(doc.path, opt.written, opt.token.line, opt.token.col),
                              data={"last_line": last.token.line}))


def _load_referenced_dataset(cfg: CanonicalConfig, required: bool) -> None:
    """Readers that keep ``dataset_config`` as an option without reading it: read it here (sd-scripts
    receives ``--dataset_config`` and reads it, whichever front-end wrote the config)."""
    import os

    value = cfg.get("dataset_config")
    if not value or cfg.datasets or cfg.general:
        return
    if any(n.code.startswith("dataset-config-") for n in cfg.notes) or \
            any(i.option == "dataset_config" for i in cfg.invalid):
        return  # the reader already tried
    from lora_compat.config.dialects.dataset_toml import load_dataset_reference

    origin = cfg.locate("dataset_config")
    base = os.path.dirname(os.path.abspath(origin.file if origin and origin.file else cfg.source))
    load_dataset_reference(cfg, value, origin, base_dir=base, required=required)


def _validate(cfg: CanonicalConfig) -> None:
    """Schema validation (:func:`~lora_compat.config.validate.validate_options`), deduplicated."""
    from lora_compat.config.validate import validate_options  # jsonschema: imported when a config is loaded

    seen = {(iv.option, iv.origin.key) for iv in cfg.invalid}
    for iv in validate_options(cfg):
        if (iv.option, iv.origin.key) not in seen:
            seen.add((iv.option, iv.origin.key))
            cfg.invalid.append(iv)
