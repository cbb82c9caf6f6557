"""The rule registry: one small class per rule, grouped by family, its docstring IS the user-facing explanation.

Modelled on sqlfluff's rule classes and ruff's ``ruff rule CODE``: a rule has a stable code (``LC1xx`` types and
schema, ``LC2xx`` semantics and interactions, ``LC3xx`` misconceptions from seed 003, ``LC4xx`` SD2/SDXL,
``LC5xx`` security and privacy, ``LC6xx`` deprecated keys, front-end quirks and portability), a kebab-case name, a
default severity, a one-line ``summary``, a ``message`` template, and ``check(cfg)`` yielding findings.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Iterator

from lora_compat.lint.finding import SEVERITIES, Finding, Fix

if TYPE_CHECKING:
    from lora_compat.config.model import CanonicalConfig, Origin

FAMILIES: dict[str, str] = {
    "LC1": "Types and schema",
    "LC2": "Semantics and interactions",
    "LC3": "Misconceptions (values shaped like a wrong description users copied)",
    "LC4": "SD2 / SDXL specifics",
    "LC5": "Security and privacy",
    "LC6": "Deprecated keys, front-end quirks and portability",
}

_CODE_RE = re.compile(r"^LC[1-6]\d\d$")
_NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

_REGISTRY: dict[str, type[Rule]] = {}


class Rule:
    """Base class. Subclasses set the class attributes and implement :meth:`check`."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[str]
    summary: ClassVar[str]            # one line: what the rule detects (SARIF shortDescription)
    message: ClassVar[str]            # str.format template for findings
    reference: ClassVar[str] = ""     # where the fact comes from, e.g. "sd-scripts-reference.md §1.13 E11"
    fixable: ClassVar[bool] = False   # offers a safe fix (applied by ``lint --fix``)
    note_codes: ClassVar[tuple[str, ...]] = ()   # front-end Note codes this rule explains

    # -- text -------------------------------------------------------------------------------------
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
        return f"{cls.code.lower()}-{cls.name}"

    @classmethod
    def to_json(cls) -> dict[str, Any]:
        return {
            "code": cls.code, "name": cls.name, "severity": cls.severity, "family": cls.family(),
            "summary": cls.summary, "message": cls.message, "reference": cls.reference,
            "fixable": cls.fixable, "explanation": cls.explanation(),
        }

    # -- checking ---------------------------------------------------------------------------------
    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:  # pragma: no cover - abstract
        raise NotImplementedError

    def claimed_notes(self, cfg: CanonicalConfig) -> list:
        """The reader Notes of ``cfg`` whose code this rule explains (``note_codes``)."""
        return [n for n in cfg.notes if n.code in self.note_codes]

    def finding(self, cfg: CanonicalConfig, *, option: str | None = None, origin: Origin | None = None,
                fix: Fix | None = None, severity: str | None = None, **fmt: Any) -> Finding:
        """A finding at ``origin`` (or at where ``option`` was written; else at the file itself)."""
        if option is not None:
            fmt.setdefault("option", option)
        if origin is None and option is not None:
            origin = cfg.locate(option)
        if origin is not None:
            file, line, col, key = origin.file or cfg.source, origin.line, origin.col, origin.key
        else:
            file, line, col, key = cfg.source, None, None, option
        return Finding(code=self.code, name=self.name, severity=severity or self.severity, file=file,
                       line=line, col=col, key=key, message=self.message.format(**fmt), fix=fix)


def register(cls: type[Rule]) -> type[Rule]:
    """Class decorator adding a rule to the registry (validates code, name, severity, docs)."""
    if not _CODE_RE.match(cls.code):
        raise ValueError(f"bad rule code {cls.code!r}")
    if not _NAME_RE.match(cls.name):
        raise ValueError(f"{cls.code}: rule name {cls.name!r} is not kebab-case")
    if cls.severity not in SEVERITIES:
        raise ValueError(f"{cls.code}: bad severity {cls.severity!r}")
    if cls.code in _REGISTRY and _REGISTRY[cls.code] is not cls:
        raise ValueError(f"duplicate rule code {cls.code}")
    if any(r.name == cls.name and r is not cls for r in _REGISTRY.values()):
        raise ValueError(f"duplicate rule name {cls.name}")
    if not (cls.__doc__ or "").strip():
        raise ValueError(f"{cls.code}: a rule's docstring is its explanation and must not be empty")
    _REGISTRY[cls.code] = cls
    return cls


def _load_rules() -> None:
    # Importing the family modules registers their rules (kept lazy: the registry module imports fast).
    from lora_compat.lint import rules  # noqa: F401


def all_rules() -> list[type[Rule]]:
    """Every registered rule, sorted by code."""
    _load_rules()
    return [_REGISTRY[c] for c in sorted(_REGISTRY)]


def get_rule(code_or_name: str) -> type[Rule] | None:
    """The rule with this code (case-insensitive) or kebab-case name, else None."""
    _load_rules()
    wanted = code_or_name.strip()
    rule = _REGISTRY.get(wanted.upper())
    if rule is not None:
        return rule
    for r in _REGISTRY.values():
        if r.name == wanted.lower():
            return r
    return None


def _matches(rule: type[Rule], selector: str) -> bool:
    s = selector.strip()
    if not s:
        return False
    if s.upper() == "ALL":
        return True
    return rule.code.startswith(s.upper()) or rule.name == s.lower()


def select_rules(select: Iterable[str] = (), ignore: Iterable[str] = ()) -> list[type[Rule]]:
    """Rules chosen like ruff: ``select`` (codes, code prefixes such as ``LC3``, names; empty = all) minus ``ignore``."""
    sel = [s for s in select if s.strip()]
    ign = [s for s in ignore if s.strip()]
    out = []
    for rule in all_rules():
        if sel and not any(_matches(rule, s) for s in sel):
            continue
        if any(_matches(rule, s) for s in ign):
            continue
        out.append(rule)
    return out


def unknown_selectors(selectors: Iterable[str]) -> list[str]:
    """Selectors that match no rule (usage errors)."""
    rules = all_rules()
    return [s for s in selectors if s.strip() and not any(_matches(r, s) for r in rules)]


def iter_findings(cfg: CanonicalConfig, rules: Iterable[type[Rule]]) -> Iterator[Finding]:
    for rule_cls in rules:
        yield from rule_cls().check(cfg)
