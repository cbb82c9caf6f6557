"""The rule registry: one small class per rule in one file per rule, its docstring IS the user-facing explanation.

Modelled on sqlfluff's rule classes (``src/sqlfluff/rules/<group>/<CODE>.py``) and ruff's ``ruff rule CODE``. A
rule lives in ``lora_compat/lint/rules/<topic>/<CODE>.py`` and has:

- a stable ``code`` (``LC1xx`` types and schema, ``LC2xx`` semantics and interactions, ``LC3xx`` misconceptions
  from seed 003, ``LC4xx`` architectures, ``LC5xx`` security and privacy, ``LC6xx`` front-end quirks and
  portability);
- a readable dotted ``name`` ``<topic>.<what_it_finds>`` whose last part, in kebab case, is the rule's ``slug``
  (the ``name`` field of ``--format json`` findings, the SARIF rule name and the docs anchor: stable);
- ``groups`` (the topic first, then cross-cutting groups such as ``sdxl``): ``lint --select group:security``;
- ``aliases``: old codes and names that keep working in ``--select``/``--ignore``, inline ignores and ``explain``;
- a default ``severity``, a one-line ``summary``, a ``message`` template and ``check(cfg)`` yielding findings;
- ``note_codes``: the reader notes (``lora_compat.config.notes``) this rule explains and reports. Every note code
  has exactly one home rule (see :func:`note_homes`), so every note a reader writes is explainable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

from lora_compat.lint.finding import SEVERITIES, Finding, Fix

if TYPE_CHECKING:
    from lora_compat.config.model import CanonicalConfig, Note, Origin

FAMILIES: dict[str, str] = {
    "LC1": "Types and schema",
    "LC2": "Semantics and interactions",
    "LC3": "Misconceptions (values shaped like a wrong description users copied)",
    "LC4": "Architectures (SD1 / SD2 / SDXL specifics, other model families)",
    "LC5": "Security and privacy",
    "LC6": "Front-end quirks, deprecated keys and portability",
}

# The topic folders under lora_compat/lint/rules/ (each rule's first group) and the cross-cutting groups.
TOPICS: dict[str, str] = {
    "schema": "Types, schema and malformed values",
    "network": "Network module, rank (dim), alpha and network_args",
    "captions": "Captions: shuffling, keep_tokens, dropout, caption files",
    "caches": "Latent and text-encoder output caches",
    "buckets": "Aspect-ratio buckets and resolution",
    "schedulers": "Learning-rate schedulers and warmup",
    "optimizers": "Optimizers and their arguments",
    "training": "What is trained, at which learning rate, for how long",
    "data": "Datasets, image folders, regularisation, data loading",
    "outputs": "Saving, logging and metadata",
    "noise": "Noise, timesteps and loss options",
    "precision": "Mixed precision, fp8 and saved precision",
    "misconceptions": "Values shaped like a wrong description users copied (a widely shared option table)",
    "arch": "Architectures: SD1 / SD2 / SDXL specifics and other model families",
    "security": "Credentials, pickles and values that make sd-scripts import code",
    "frontend_quirks": "What the kohya_ss GUI or Derrian's scripts really passed to sd-scripts",
}
GROUPS: dict[str, str] = TOPICS | {"sdxl": "Rules that only concern SDXL training",
                                   "flux": "Rules that only concern FLUX.1 and Chroma training"}

_CODE_RE = re.compile(r"^LC[1-6]\d\d$")
_NAME_RE = re.compile(r"^([a-z][a-z0-9_]*)\.([a-z0-9]+(?:_[a-z0-9]+)*)$")
_SLUG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
GROUP_PREFIX = "group:"

_REGISTRY: dict[str, type[Rule]] = {}
_IDENTS: dict[str, tuple[str, str]] = {}   # lower-case code / name / slug / alias -> ("own"|"alias", code)


@cache
def _slug(dotted: str) -> str:
    return dotted.rsplit(".", 1)[-1].replace("_", "-")


class Rule:
    """Base class. Subclasses set the class attributes and implement :meth:`check`."""

    code: ClassVar[str]
    name: ClassVar[str]               # dotted: "<topic>.<what_it_finds>"
    severity: ClassVar[str]
    summary: ClassVar[str]            # one line: what the rule detects (SARIF shortDescription)
    message: ClassVar[str]            # str.format template for findings
    groups: ClassVar[tuple[str, ...]] = ()       # the topic folder first, then cross-cutting groups
    aliases: ClassVar[tuple[str, ...]] = ()      # old codes / names that keep selecting this rule
    reference: ClassVar[str] = ""     # where the fact comes from: an sd-scripts file and function, our docs
    fixable: ClassVar[bool] = False   # offers a safe fix (applied by ``lint --fix``)
    note_codes: ClassVar[tuple[str, ...]] = ()   # reader Note codes this rule explains and reports
    quiet_notes: ClassVar[tuple[str, ...]] = ()  # reader Note codes this rule explains; only its check reports

    # -- names ------------------------------------------------------------------------------------
    @classmethod
    def slug(cls) -> str:
        """The kebab-case name (``keep-tokens-no-effect``): ``name`` of JSON findings, SARIF and docs anchors."""
        return _slug(cls.name)

    @classmethod
    def topic(cls) -> str:
        """The rule's topic folder (its first group)."""
        return cls.groups[0]

    @classmethod
    def explanation(cls) -> str:
        """The long explanation (markdown): the class docstring, dedented."""
        import inspect  # only explain/docs/SARIF need it: keep `lint` start-up light

        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def family(cls) -> str:
        return FAMILIES[cls.code[:3]]

    @classmethod
    def anchor(cls) -> str:
        """The docs/rules.md heading anchor (GitHub style) of this rule."""
        return f"{cls.code.lower()}-{cls.slug()}"

    @classmethod
    def explained_notes(cls) -> tuple[str, ...]:
        """Every reader note code this rule is the home of."""
        return cls.note_codes + cls.quiet_notes

    @classmethod
    def to_json(cls) -> dict[str, Any]:
        """The ``explain --format json`` object of this rule (fields are only ever added)."""
        return {
            "code": cls.code, "name": cls.slug(), "dotted_name": cls.name, "groups": list(cls.groups),
            "aliases": list(cls.aliases), "severity": cls.severity, "family": cls.family(),
            "summary": cls.summary, "message": cls.message, "reference": cls.reference,
            "fixable": cls.fixable, "note_codes": list(cls.explained_notes()), "explanation": cls.explanation(),
        }

    # -- checking ---------------------------------------------------------------------------------
    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, cfg: CanonicalConfig) -> list[Finding]:
        """The rule's findings for ``cfg``: its :meth:`check`, and when that finds nothing, the reader notes it is
        the home of (``note_codes``) — so no note a reader records is ever lost."""
        found = list(self.check(cfg))
        if not found and self.note_codes:
            found = [self.note_finding(cfg, n) for n in self.claimed_notes(cfg)]
        return found

    def claimed_notes(self, cfg: CanonicalConfig) -> list[Note]:
        """The reader Notes of ``cfg`` whose code this rule reports (``note_codes``)."""
        return [n for n in cfg.notes if n.code in self.note_codes]

    def note_finding(self, cfg: CanonicalConfig, note: Note, *, severity: str | None = None) -> Finding:
        """A finding that reports a reader note as it is: its message, tagged with its code (``explain`` it)."""
        return self.finding(cfg, origin=note.origin, severity=severity, message=f"{note.message} [{note.code}]",
                            note=note.code)

    def finding(self, cfg: CanonicalConfig, *, option: str | None = None, origin: Origin | None = None,
                fix: Fix | None = None, severity: str | None = None, message: str | None = None,
                note: str | None = None, **fmt: Any) -> Finding:
        """A finding at ``origin`` (or at where ``option`` was written; else at the file itself)."""
        if option is not None:
            fmt.setdefault("option", option)
        if origin is None and option is not None:
            origin = cfg.locate(option)
        key: str | None
        if origin is not None:
            file, line, col, key = origin.file or cfg.source, origin.line, origin.col, origin.key
        else:
            file, line, col, key = cfg.source, None, None, option
        text = message if message is not None else self.message.format(**fmt)
        return Finding(code=self.code, name=self.slug(), severity=severity or self.severity, file=file,
                       line=line, col=col, key=key, message=text, fix=fix, note=note)


def register(cls: type[Rule]) -> type[Rule]:
    """Class decorator adding a rule to the registry (validates code, names, groups, severity, docs)."""
    if not _CODE_RE.match(cls.code):
        raise ValueError(f"bad rule code {cls.code!r}")
    m = _NAME_RE.match(cls.name)
    if not m:
        raise ValueError(f"{cls.code}: rule name {cls.name!r} is not '<topic>.<snake_case>'")
    if not cls.groups or m.group(1) != cls.groups[0]:
        raise ValueError(f"{cls.code}: the first group must be the name's topic {m.group(1)!r}")
    unknown = [g for g in cls.groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"{cls.code}: unknown groups {unknown} (declare them in lint.registry.GROUPS)")
    folder = cls.__module__.rsplit(".", 2)
    if cls.__module__.startswith("lora_compat.lint.rules.") and folder[-2:] != [cls.groups[0], cls.code]:
        raise ValueError(f"{cls.code}: lives in {cls.__module__}, expected rules/{cls.groups[0]}/{cls.code}.py")
    if cls.severity not in SEVERITIES:
        raise ValueError(f"{cls.code}: bad severity {cls.severity!r}")
    if _REGISTRY.get(cls.code) is cls:
        return cls
    if cls.code in _REGISTRY:
        raise ValueError(f"duplicate rule code {cls.code}")
    if not (cls.__doc__ or "").strip():
        raise ValueError(f"{cls.code}: a rule's docstring is its explanation and must not be empty")
    # one index of every identifier (O(1) per rule: discovery registers ~130 rules at every `lint` start)
    own = {cls.code.lower(), cls.name, cls.slug()}
    aliases = {a.lower() for a in cls.aliases}
    for ident in own | aliases:
        kind, owner = _IDENTS.get(ident, ("", ""))
        if owner and (ident in own or kind == "own"):
            raise ValueError(f"{cls.code}: {ident!r} is already taken by {owner}")
    for ident in own:
        _IDENTS[ident] = ("own", cls.code)
    for ident in aliases - own:
        _IDENTS.setdefault(ident, ("alias", cls.code))
    _REGISTRY[cls.code] = cls
    return cls


def _load_rules() -> None:
    # Importing the rules package imports every rule file (kept lazy: the registry module imports fast).
    from lora_compat.lint import rules

    rules.load_all()


def all_rules() -> list[type[Rule]]:
    """Every registered rule, sorted by code."""
    _load_rules()
    return [_REGISTRY[c] for c in sorted(_REGISTRY)]


def rules_for(code_or_name: str) -> list[type[Rule]]:
    """The rules a code, name, slug or alias names (case-insensitive): one rule, several for a retired code that
    was split (``LC605``), none when unknown."""
    _load_rules()
    wanted = code_or_name.strip()
    rule = _REGISTRY.get(wanted.upper())
    if rule is not None:
        return [rule]
    low = wanted.lower()
    exact = [r for r in _REGISTRY.values() if low in (r.name, r.slug())]
    if exact:
        return exact
    return [_REGISTRY[c] for c in sorted(_REGISTRY)
            if any(a.lower() == low for a in _REGISTRY[c].aliases)]


def get_rule(code_or_name: str) -> type[Rule] | None:
    """The one rule with this code, dotted name, kebab-case name or alias, else None."""
    found = rules_for(code_or_name)
    return found[0] if len(found) == 1 else None


def matches(rule: type[Rule], selector: str) -> bool:
    """Whether a ``--select``/``--ignore``/inline-ignore selector picks ``rule``: ``ALL``, a code or code prefix
    (``LC3``), the dotted or kebab-case name, an alias (old code or name), or ``group:NAME``."""
    s = selector.strip()
    if not s:
        return False
    if s.upper() == "ALL":
        return True
    low = s.lower()
    if low.startswith(GROUP_PREFIX):
        return low[len(GROUP_PREFIX):] in rule.groups
    if rule.code.startswith(s.upper()) or low in (rule.name, rule.slug()):
        return True
    return any(a.lower() == low for a in rule.aliases)


def select_rules(select: Iterable[str] = (), ignore: Iterable[str] = ()) -> list[type[Rule]]:
    """Rules chosen like ruff: ``select`` (see :func:`matches`; empty = all) minus ``ignore``."""
    sel = [s for s in select if s.strip()]
    ign = [s for s in ignore if s.strip()]
    out = []
    for rule in all_rules():
        if sel and not any(matches(rule, s) for s in sel):
            continue
        if any(matches(rule, s) for s in ign):
            continue
        out.append(rule)
    return out


def unknown_selectors(selectors: Iterable[str]) -> list[str]:
    """Selectors that match no rule (usage errors)."""
    rules = all_rules()
    return [s for s in selectors if s.strip() and not any(matches(r, s) for r in rules)]


def all_groups() -> dict[str, list[type[Rule]]]:
    """Group name -> its rules (sorted by code), in the order of :data:`GROUPS`."""
    rules = all_rules()
    return {g: [r for r in rules if g in r.groups] for g in GROUPS}


@lru_cache(maxsize=1)
def note_homes() -> dict[str, type[Rule]]:
    """Reader note code -> the one rule that explains it (computed from every rule's ``note_codes`` and
    ``quiet_notes``; a code claimed twice is a registry error)."""
    homes: dict[str, type[Rule]] = {}
    for r in all_rules():
        for c in r.explained_notes():
            if c in homes:
                raise ValueError(f"note code {c!r} is claimed by {homes[c].code} and {r.code}")
            homes[c] = r
    return homes


def iter_findings(cfg: CanonicalConfig, rules: Iterable[type[Rule]]) -> Iterator[Finding]:
    for rule_cls in rules:
        yield from rule_cls().run(cfg)
