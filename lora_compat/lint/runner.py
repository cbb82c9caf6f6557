"""Lint orchestration: expand paths, load each config, run the selected rules, collect a :class:`LintReport`.

A file that cannot be loaded (syntax error, not a training config ...) is a *load error*: it is reported next
to the findings of the other files and makes the run exit 2. With ``skip_non_configs`` files that parse but are
not training configs (package.json, pyproject.toml, GUI settings ...) are listed as skipped instead.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lora_compat.config.secrets import redact_text
from lora_compat.errors import UserError
from lora_compat.lint.finding import SEVERITY_RANK, Finding
from lora_compat.lint.registry import Rule, get_rule, iter_findings, matches

if TYPE_CHECKING:
    from lora_compat.config.model import CanonicalConfig

# Config-file extensions picked up when a folder is given (explicit file arguments may have any extension;
# .txt is left out of folder scans because image folders are full of .txt captions).
CONFIG_EXTENSIONS = (".json", ".toml", ".sh", ".bat", ".cmd", ".ps1")
# Generic type/schema findings, dropped where a more specific error rule reports the same key.
GENERIC_CODES = frozenset({"LC101", "LC103"})
_SKIP_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".mypy_cache"}


@dataclass
class FileResult:
    """The outcome for one file: findings, or a load error, or skipped (not a training config)."""

    path: str
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None
    dialect: str | None = None
    era: str | None = None
    cfg: CanonicalConfig | None = field(default=None, repr=False)
    fixed: list[Finding] = field(default_factory=list)
    fixed_output: str | None = None
    suppressed: int = 0


@dataclass
class LintReport:
    """All results of one lint run."""

    results: list[FileResult]
    rules: list[type[Rule]]

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings]

    @property
    def errors(self) -> list[FileResult]:
        return [r for r in self.results if r.error is not None]

    def summary(self) -> dict:
        """Counts for the ``summary`` object of ``--format json``."""
        findings = self.findings
        by_code: dict[str, int] = {}
        for f in findings:
            by_code[f.code] = by_code.get(f.code, 0) + 1
        return {
            "files": len(self.results),
            "files_with_findings": sum(1 for r in self.results if r.findings),
            "load_errors": len(self.errors),
            "skipped": sum(1 for r in self.results if r.skipped),
            "findings": len(findings),
            "error": sum(1 for f in findings if f.severity == "error"),
            "warning": sum(1 for f in findings if f.severity == "warning"),
            "info": sum(1 for f in findings if f.severity == "info"),
            "fixable": sum(1 for f in findings if f.fix is not None),
            "fixed": sum(len(r.fixed) for r in self.results),
            "suppressed": sum(r.suppressed for r in self.results),
            "by_code": dict(sorted(by_code.items())),
        }

    def exit_code(self, fail_on: str = "error") -> int:
        """2 = a file could not be loaded; 1 = unfixed findings at or above ``fail_on``; else 0."""
        if self.errors:
            return 2
        threshold = SEVERITY_RANK[fail_on]
        for r in self.results:
            fixed = {id(f) for f in r.fixed}
            if any(SEVERITY_RANK[f.severity] >= threshold and id(f) not in fixed for f in r.findings):
                return 1
        return 0


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files, folders (recursive, config extensions only) and glob patterns -> sorted unique file list.

    Raises UserError for a path that matches nothing (a missing file, a glob without match, a folder
    without config files).
    """
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            before = len(out)
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
                for name in sorted(files):
                    if name.lower().endswith(CONFIG_EXTENSIONS):
                        out.append(os.path.join(root, name))
            if len(out) == before:
                # "All checks passed" for a folder holding no config would be a false green (a typo'd path)
                raise UserError(f"no config files ({', '.join(CONFIG_EXTENSIONS)}) in this folder", file=p)
        elif os.path.exists(p):
            out.append(p)
        elif glob.has_magic(p):
            matches = sorted(m for m in glob.glob(p, recursive=True) if os.path.isfile(m))
            if not matches:
                raise UserError(f"no file matches {p!r}")
            out.extend(matches)
        else:
            raise UserError("file not found", file=p)
    seen: set[str] = set()
    unique = []
    for p in out:
        key = os.path.normpath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _not_a_config(path: str) -> str | None:
    """Why ``path`` is not a training config (it parses, but is something else), else None."""
    from lora_compat.config.load import detect

    try:
        det = detect(path)
    except UserError:
        return _unparsable_non_config(path)
    if not det.training:
        return det.what or "not a training config"
    if det.dialect is None:
        return "not a recognised config dialect"
    return None


def _training_words() -> frozenset[str]:
    """Key names that only training configs use: sd-scripts options with an underscore (not ``seed`` or
    ``v2``, which other files use too) and the legacy front-ends' marker keys and sections."""
    from lora_compat.config.detect import ARGSTORE_MARKERS, DERRIAN_SECTIONS, KOHYA_GUI_MARKERS
    from lora_compat.config.options import option_names

    return frozenset([n for n in option_names() if "_" in n] + list(ARGSTORE_MARKERS) + list(KOHYA_GUI_MARKERS)
                     + list(DERRIAN_SECTIONS) + ["datasets", "subsets", "image_dir", "num_repeats"])


def _unparsable_non_config(path: str) -> str | None:
    """With ``--skip-non-configs``: a file that does not parse is skipped when its text names no training key
    (``tsconfig.json`` or ``.vscode/settings.json`` with comments in a pre-commit run); a broken training config
    (any training key) stays a load error."""
    from lora_compat.config.loaders import read_text

    try:
        text = read_text(path)
    except UserError:
        return None       # unreadable (binary, not UTF-8, too large): a real load error
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    if words & _training_words():
        return None
    return "does not parse, and names no training option"


def lint_config(cfg: CanonicalConfig, rules: Iterable[type[Rule]]) -> list[Finding]:
    """Findings of ``rules`` for one loaded config, sorted by position, credentials redacted."""
    from dataclasses import replace

    from lora_compat.config.secrets import iter_secret_values

    secrets = list(iter_secret_values(cfg))
    findings = list(iter_findings(cfg, rules))
    if secrets:
        findings = [replace(f, message=redact_text(f.message, secrets),
                            key=redact_text(f.key, secrets) if f.key else f.key) for f in findings]
    unique: dict[tuple, Finding] = {}
    for f in findings:
        unique.setdefault((f.code, f.file, f.line, f.key, f.message), f)
    # A generic "invalid value" finding adds nothing where a specific error rule explains the same key.
    specific = {(f.file, f.line, f.key) for f in unique.values()
                if f.severity == "error" and f.code not in GENERIC_CODES}
    kept = [f for f in unique.values() if not (f.code in GENERIC_CODES and (f.file, f.line, f.key) in specific)]
    return sorted(kept, key=lambda f: (f.file, f.line or 0, f.code, f.key or ""))


_SUPPRESS_RE = re.compile(r"lora-compat:\s*ignore(-file)?(?:\[([^\]]*)\])?", re.I)


def _suppressions(path: str) -> tuple[dict[int, set[str] | None], set[str] | None] | None:
    """Inline suppressions of a text config: ``# lora-compat: ignore[LC202,LC401]`` on a finding's line (no
    list = every rule), ``# lora-compat: ignore-file[group:frontend_quirks]`` anywhere. Returns (per line, whole
    file); None when the file has none. A value of None means "all codes"."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read(2_000_000)
    except OSError:
        return None
    if "lora-compat" not in text:
        return None
    per_line: dict[int, set[str] | None] = {}
    whole: set[str] | None = set()
    for no, line in enumerate(text.splitlines(), start=1):
        for m in _SUPPRESS_RE.finditer(line):
            codes = {c.strip().upper() for c in m.group(2).split(",") if c.strip()} if m.group(2) else None
            if m.group(1):
                whole = None if (codes is None or whole is None) else whole | codes
            else:
                prev = per_line.get(no, set())
                per_line[no] = None if (codes is None or prev is None) else prev | codes
    return per_line, whole


def _suppressed(f: Finding, sup: tuple[dict[int, set[str] | None], set[str] | None]) -> bool:
    rule = get_rule(f.code)

    def hit(codes: set[str] | None) -> bool:
        # the selectors of --select/--ignore: codes, prefixes, names, old codes (aliases), group:NAME
        if codes is None:
            return True
        if rule is None:
            return any(f.code.startswith(c) or f.name == c.lower() for c in codes)
        return any(matches(rule, c) for c in codes)

    per_line, whole = sup
    if whole is None or (whole and hit(whole)):
        return True
    return f.line is not None and f.line in per_line and hit(per_line[f.line])


def apply_suppressions(findings: list[Finding]) -> tuple[list[Finding], int]:
    """Drop findings suppressed by comments in the files they point at; returns (kept, number dropped)."""
    cache: dict[str, tuple | None] = {}
    kept = []
    for f in findings:
        if f.file not in cache:
            cache[f.file] = _suppressions(f.file)
        sup = cache[f.file]
        if sup is not None and _suppressed(f, sup):
            continue
        kept.append(f)
    return kept, len(findings) - len(kept)


def lint_file(path: str, rules: list[type[Rule]], *, dialect: str | None = None,
              skip_non_configs: bool = False) -> FileResult:
    """Load and lint one file. Never raises for bad input: the problem becomes ``error``."""
    from lora_compat.config.load import load_config

    if skip_non_configs:
        why = _not_a_config(path)
        if why:
            return FileResult(path, skipped=why)
    try:
        cfg = load_config(path, dialect=dialect, resolve_dataset=False)
    except UserError as err:
        return FileResult(path, error=str(err))
    except (OSError, ValueError, RecursionError, MemoryError) as exc:  # keep one bad file from stopping the run
        return FileResult(path, error=f"{path}: cannot load ({type(exc).__name__}: {exc})")
    try:
        findings = lint_config(cfg, rules)
    except Exception as exc:
        return FileResult(path, error=f"{path}: internal lint error ({type(exc).__name__}: {exc}); please report",
                          cfg=cfg, dialect=cfg.dialect, era=cfg.era)
    if cfg.dialect == "command-line":
        # fixes edit JSON/TOML files at a key; a shell/batch command line is left to the user
        from dataclasses import replace

        findings = [replace(f, fix=None) if f.fix is not None else f for f in findings]
    findings, suppressed = apply_suppressions(findings)
    return FileResult(path, findings=findings, dialect=cfg.dialect, era=cfg.era, cfg=cfg, suppressed=suppressed)


def lint_paths(paths: Iterable[str], rules: list[type[Rule]], *, dialect: str | None = None,
               skip_non_configs: bool = False,
               progress: Callable[[str], None] | None = None) -> LintReport:
    """Lint every file named by ``paths`` (files, folders, globs).

    A finding is reported once: a dataset config shared by several configs (and linted itself) has its findings
    under the first file that reports them, not repeated under every config that points at it."""
    results = []
    seen: set[tuple] = set()
    for path in expand_paths(paths):
        res = lint_file(path, rules, dialect=dialect, skip_non_configs=skip_non_configs)
        unique = []
        for f in res.findings:
            ident = (f.code, os.path.normpath(f.file), f.line, f.key, f.message)
            if ident not in seen:
                seen.add(ident)
                unique.append(f)
        res.findings = unique
        results.append(res)
        if progress is not None:
            progress(path)
    return LintReport(results, rules)
