"""Apply safe fixes to the ORIGINAL file (JSON or TOML) at the key as written, and write the result atomically.

JSON is edited structurally (key order and indentation kept); TOML is edited on the line the key was read from
(comments and layout kept) and the result is re-parsed to prove the edit did what it says. Credentials are
always blanked in a fixed copy: no output lora-compat writes contains one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from typing import Any

from lora_compat.errors import UserError
from lora_compat.lint.finding import DELETE, RENAME, SET, Finding, Fix

_PATH_RE = re.compile(r"[^.\[\]]+|\[\d+\]")


def _split_key(key: str) -> list[str | int]:
    out: list[str | int] = []
    for part in _PATH_RE.findall(key):
        out.append(int(part[1:-1]) if part.startswith("[") else part)
    return out


def fixed_name(path: str) -> str:
    """``cfg.json`` -> ``cfg.fixed.json``."""
    root, ext = os.path.splitext(path)
    return f"{root}.fixed{ext}"


# -- JSON ---------------------------------------------------------------------------------------------

def _json_indent(text: str) -> int | None:
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" ")
        if stripped and len(line) != len(stripped):
            return len(line) - len(stripped)
    return None


_JSON_SCALAR = r'("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)'


def _json_lookup(data: Any, parts: list[str | int]) -> Any:
    for p in parts:
        data = data[p]
    return data


def _apply_json_lines(text: str, fixes: list[Fix]) -> str | None:
    """Edit scalar values/keys on their own line (formatting kept exactly); None when not possible."""
    lines = text.splitlines(keepends=True)
    for fx in fixes:
        if fx.action == DELETE or not fx.line or fx.line > len(lines):
            return None
        last = str(_split_key(fx.key)[-1])
        pat = re.compile(r'"' + re.escape(last) + r'"(\s*:\s*)' + _JSON_SCALAR)
        line = lines[fx.line - 1]
        if len(pat.findall(line)) != 1:
            return None
        key = f'"{last}"' if fx.action == SET else f'"{fx.new_key}"'
        value = json.dumps(fx.value, ensure_ascii=False) if fx.action == SET else None
        m = pat.search(line)
        assert m is not None     # findall found exactly one match above
        lines[fx.line - 1] = (line[:m.start()] + key + m.group(1) + (m.group(2) if value is None else value)
                              + line[m.end():])
    out = "".join(lines)
    data = json.loads(out)     # still valid, and every edit landed where the key path says
    for fx in fixes:
        parts = _split_key(fx.key)
        if fx.action == SET and _json_lookup(data, parts) != fx.value:
            return None
        if fx.action == RENAME and _json_lookup(data, [*parts[:-1], fx.new_key or ""]) is None:
            return None
    return out


def _apply_json(text: str, fixes: list[Fix]) -> str:
    try:
        by_line = _apply_json_lines(text, fixes)
    except (KeyError, IndexError, TypeError, ValueError):
        by_line = None
    if by_line is not None:
        return by_line
    data = json.loads(text)
    for fx in fixes:
        parts = _split_key(fx.key)
        parent: Any = data
        for p in parts[:-1]:
            parent = parent[p]
        last = parts[-1]
        if not isinstance(parent, dict) or last not in parent:
            raise KeyError(fx.key)
        if fx.action == SET:
            parent[last] = fx.value
        elif fx.action == DELETE:
            del parent[last]
        elif fx.action == RENAME:
            items = [((fx.new_key if k == last else k), v) for k, v in parent.items()]
            parent.clear()
            parent.update(items)
    out = json.dumps(data, indent=_json_indent(text), ensure_ascii=False)
    out += "\n" if text.endswith("\n") else ""
    return out.replace("\n", "\r\n") if "\r\n" in text else out   # keep Windows line endings


# -- TOML ---------------------------------------------------------------------------------------------

def _toml_value(value: Any) -> str:
    import tomli_w

    return tomli_w.dumps({"x": value}).split("=", 1)[1].strip()


def _toml_lookup(data: Any, parts: list[str | int]) -> Any:
    for p in parts:
        data = data[p]
    return data


def _apply_toml(text: str, fixes: list[Fix]) -> str:
    from lora_compat.tomlparse import tomllib

    lines = text.splitlines(keepends=True)
    for fx in sorted(fixes, key=lambda f: -(f.line or 0)):
        if not fx.line or fx.line > len(lines):
            raise KeyError(fx.key)
        last = str(_split_key(fx.key)[-1])
        line = lines[fx.line - 1]
        m = re.match(r'^(\s*)(["\']?)' + re.escape(last) + r'\2(\s*=\s*)(.*?)(\s*(#.*)?)(\r?\n)?$', line)
        if m is None:
            raise KeyError(fx.key)
        indent, quote, eq, _value, comment, _c, nl = m.groups()
        nl = nl or ""
        if fx.action == DELETE:
            lines[fx.line - 1] = ""
        elif fx.action == RENAME:
            lines[fx.line - 1] = f"{indent}{quote}{fx.new_key}{quote}{eq}{_value}{comment or ''}{nl}"
        else:
            lines[fx.line - 1] = f"{indent}{quote}{last}{quote}{eq}{_toml_value(fx.value)}{comment or ''}{nl}"
    out = "".join(lines)
    data = tomllib.loads(out)   # the edit must leave valid TOML with the intended value
    for fx in fixes:
        parts = _split_key(fx.key)
        if fx.action == SET and _toml_lookup(data, parts) != fx.value:
            raise KeyError(fx.key)
    return out


# -- orchestration ------------------------------------------------------------------------------------

def credential_fixes(findings: Iterable[Finding]) -> list[Fix]:
    """The credential-blanking fixes (always applied to a fixed copy, even when LC501 is not selected)."""
    return [f.fix for f in findings if f.code == "LC501" and f.fix is not None]


def apply_fixes(path: str, fixes: list[Fix]) -> str:
    """The text of ``path`` with ``fixes`` applied. Raises UserError when a fix cannot be applied safely."""
    try:
        # newline="": CRLF files stay CRLF (universal newlines would rewrite every line ending)
        with open(path, encoding="utf-8", newline="") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read for fixing: {exc}", file=path) from None
    unique: dict[tuple, Fix] = {}
    for fx in fixes:
        unique.setdefault((fx.key, fx.action), fx)
    fixes = list(unique.values())
    bom = "\ufeff" if text.startswith("\ufeff") else ""   # a Windows editor's BOM: kept, but not parsed
    text = text[len(bom):]
    stripped = text.lstrip()
    from lora_compat.config.secrets import scrub

    try:
        fixed = _apply_json(text, fixes) if stripped.startswith("{") else _apply_toml(text, fixes)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise UserError(f"cannot apply the fixes safely (key {exc}); file left unchanged", file=path) from None
    return bom + scrub(fixed)   # a credential also carried elsewhere (additional_parameters) never lands


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` atomically with :func:`lora_compat.atomic.write_text` (kept as the lint wing's entry point);
    an existing file keeps its permission bits, a new one gets 0o644 (not mkstemp's 0o600)."""
    from lora_compat.atomic import write_text

    write_text(path, text)
