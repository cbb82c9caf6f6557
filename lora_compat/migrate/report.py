"""The migration report: what happened to every key on the way legacy file -> canonical -> output.

Each :class:`ReportEntry` combines the reader's provenance (how the legacy key became a canonical value) with
the writer's action (where the value went in the output, or why it could not go anywhere).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lora_compat.config.model import (
    CONVERTED,
    DEFAULT,
    DERIVED,
    FRONTEND,
    KEPT,
    RENAMED,
    CanonicalConfig,
    Provenance,
)
from lora_compat.config.secrets import redact

# Report kinds: the provenance kinds plus what writers add.
DROPPED = "dropped"            # the value is not written (why: credential, null, front-end only, unknown key)
NO_EQUIVALENT = "no-equivalent"  # the target format cannot express it
REPORT_KINDS = (KEPT, RENAMED, CONVERTED, DERIVED, DEFAULT, FRONTEND, DROPPED, NO_EQUIVALENT)
# kinds that lose information (``--strict`` fails on them)
LOSS_KINDS = (DROPPED, NO_EQUIVALENT)
# reader notes whose code ends like this record a value the legacy tool derived but the reader could not
UNRESOLVED_SUFFIX = "-unresolved"


@dataclass
class ReportEntry:
    """One key's fate. ``source_key`` is the key as written in the input (None for defaults / derived)."""

    kind: str
    option: str                      # canonical option (or dataset param path, or the legacy key)
    source_key: str | None = None
    source_file: str | None = None
    line: int | None = None
    target_key: str | None = None    # key written in the output, None when not written
    value: Any = None                # output value (credentials redacted)
    detail: str | None = None        # the arithmetic / reason
    loss: bool = False               # counts for --strict

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "option": self.option, "source_key": self.source_key,
                "source_file": self.source_file, "line": self.line, "target_key": self.target_key,
                "value": self.value, "detail": self.detail, "loss": self.loss}


@dataclass
class MigrationReport:
    """All entries of one migration, plus the files written."""

    source: str
    dialect: str
    target: str
    entries: list[ReportEntry] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def losses(self) -> list[ReportEntry]:
        return [e for e in self.entries if e.loss]

    def add(self, entry: ReportEntry) -> None:
        self.entries.append(entry)

    def scrub(self, cfg: CanonicalConfig) -> None:
        """Replace every credential of ``cfg`` wherever it appears in the report (a front-end-only string such
        as the GUI's additional_parameters can carry ``--wandb_api_key KEY``): :func:`config.secrets.scrub`."""
        from lora_compat.config.secrets import iter_secret_values, scrub

        secrets = list(iter_secret_values(cfg))

        def clean(v: Any) -> Any:
            if isinstance(v, str):
                return scrub(v, secrets)
            if isinstance(v, list):
                return [clean(x) for x in v]
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v

        for e in self.entries:
            e.value, e.detail = clean(e.value), clean(e.detail)
        self.notes = [clean(n) for n in self.notes]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(REPORT_KINDS, 0)
        for e in self.entries:
            out[e.kind] = out.get(e.kind, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        """The ``migrate --format json`` object (stable contract, see docs/cli.md)."""
        return {"source": self.source, "dialect": self.dialect, "target": self.target,
                "outputs": list(self.outputs), "counts": self.counts(), "losses": len(self.losses),
                "entries": [e.to_json() for e in self.entries], "notes": list(self.notes)}


def written(option: str, prov: Provenance | None, target_key: str, value: Any, *,
            conversion: str | None = None) -> ReportEntry:
    """Entry for a value that was written: the reader's kind, or renamed/converted by the writer."""
    origin = prov.origin if prov else None
    kind = prov.kind if prov else DEFAULT
    detail = prov.conversion if prov else None
    if prov is not None and len(prov.origins) == 1 and origin is not None and origin.key == target_key \
            and type(origin.raw) is type(value) and origin.raw == value:
        # same key, same value in and out (e.g. native -> native): whatever happened inside is invisible
        kind, detail = KEPT, None
    elif conversion:
        kind, detail = CONVERTED, (f"{detail}; {conversion}" if detail else conversion)
    elif kind == KEPT and origin is not None and _last(origin.key) != _last(target_key):
        kind = RENAMED
    return ReportEntry(kind, option, origin.key if origin else None, origin.file if origin else None,
                       origin.line if origin else None, target_key, redact(option, value), detail)


def lost(option: str, prov: Provenance | None, kind: str, why: str, value: Any = None, *,
         loss: bool = True) -> ReportEntry:
    """Entry for a value that could not be written."""
    origin = prov.origin if prov else None
    return ReportEntry(kind, option, origin.key if origin else None, origin.file if origin else None,
                       origin.line if origin else None, None, redact(option, value), why, loss)


def add_unmapped(report: MigrationReport, cfg: CanonicalConfig) -> None:
    """Unknown and front-end-only keys of the input: never written, always reported."""
    for u in cfg.unknown_keys:
        report.add(ReportEntry(DROPPED, u.key, u.origin.key, u.origin.file, u.origin.line, None,
                               redact(u.key, u.value), u.reason, True))
    for f in cfg.frontend_only:
        report.add(ReportEntry(DROPPED, f.key, f.origin.key, f.origin.file, f.origin.line, None,
                               redact(f.key, f.value), f.reason, False))
    for n in cfg.notes:
        o = n.origin
        if is_unresolved(n):
            # the legacy tool computed a value (training length, warmup steps) from image folders that are
            # not here: the output cannot carry it, and the default would silently apply instead
            report.add(ReportEntry(NO_EQUIVALENT, o.key if o else n.code, o.key if o else None,
                                   o.file if o else None, o.line if o else None, None, None,
                                   f"{n.message} (not written: the default applies; run `lora-compat plan` "
                                   "with --images, or set the value in the output)", True))
        report.notes.append({"code": n.code, "message": n.message, "key": o.key if o else None,
                             "line": o.line if o else None})


def add_uncovered(report: MigrationReport, cfg: CanonicalConfig) -> None:
    """A report line for every key of the input files that no other line mentions: ``null`` values (the kohya_ss
    GUI keeps its current field value), section separators such as ``"=== Basic ===": null``, and anything a
    reader left untouched — so the report accounts for every source key."""
    from lora_compat.config.document import CMDLINE, is_separator, split_key_path
    from lora_compat.config.load import read_document
    from lora_compat.errors import UserError

    mentioned = {e.source_key for e in report.entries if e.source_key}
    mentioned |= {n["key"] for n in report.notes if n.get("key")}
    settings = list(cfg.options.values()) + list(cfg.general.values())
    for ds in cfg.datasets:
        settings += list(ds.params.values()) + [v for sub in ds.subsets for v in sub.params.values()]
    mentioned |= {o.key for s in settings for o in s.prov.origins if o.key}
    for origin, why in cfg.consumed:
        if origin.key not in mentioned:
            mentioned.add(origin.key)
            if why:      # "" = a structural key (a format marker): accounted for, nothing to report
                report.add(ReportEntry(DROPPED, origin.key, origin.key, origin.file, origin.line, None,
                                       redact(origin.key, origin.raw), why, False))

    def ancestors(key: str) -> list[str]:
        out, cut = [], len(key)
        while cut > 0:
            cut = max(key.rfind(".", 0, cut), key.rfind("[", 0, cut))
            if cut > 0:
                out.append(key[:cut])
        return out

    def covered(path: str) -> bool:
        # a path is covered when a line names it, one of its parents, or one of its children (set lookups only:
        # a generated file with 100k keys stays linear)
        return bool(path in mentioned or path in under or any(a in mentioned for a in ancestors(path)))

    under = {a for key in mentioned for a in ancestors(key)}
    for file in dict.fromkeys(cfg.files or [cfg.source]):
        doc = cfg.document if file == cfg.source and cfg.document is not None else None
        if doc is None:
            try:
                doc = read_document(file, dialect=cfg.dialect if file == cfg.source else None)
            except UserError:
                continue
        if doc.fmt == CMDLINE or not isinstance(doc.data, dict):
            continue
        for path, (line, _col) in sorted(doc.positions.items(), key=lambda kv: kv[1]):
            value = doc.value_at(path)
            if (isinstance(value, (dict, list)) and value) or covered(path):
                continue
            if value is None:
                last = split_key_path(path)[-1]
                why = ("a section separator of the preset (no setting)" if isinstance(last, str)
                       and is_separator(last) else
                       "null: the front-end keeps its current value for this field (nothing is passed)")
                loss = False
            elif value in (False, "", 0) or value == [] or value == {}:
                why, loss = f"{value!r}: empty/false, the front-end passes nothing for it", False
            else:
                why, loss = "not carried: no setting of the output depends on it", True
            mentioned.add(path)
            report.add(ReportEntry(DROPPED, path, path, file, line, None, redact(path, value), why, loss))




def is_unresolved(note: Any) -> bool:
    """A reader note saying the legacy tool derived a value from image folders that are not here."""
    if note.code.endswith(UNRESOLVED_SUFFIX):
        return True
    # A1 (before 2023-02-04) turned num_epochs into max_train_steps; the reader records None when it cannot count
    return note.code == "derrian-a1-epochs-to-steps" and note.data.get("max_train_steps", 0) is None


def _last(key: str) -> str:
    return key.lstrip("-").rsplit(".", 1)[-1].split("[")[0]
