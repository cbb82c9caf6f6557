"""Read a file safely and parse it into a :class:`Document` with the position of every key.

Three formats: JSON (a position-recording pass over the JSON tokens after ``json.loads``), TOML (``tomllib``
then a line scanner mapping table headers and ``key =`` lines to key paths) and command lines (see
:mod:`lora_compat.config.cmdline`). Every problem with the bytes (missing, directory, too large, binary,
not UTF-8, syntax error) ends as a one-line :class:`~lora_compat.errors.UserError` naming the file and,
for syntax errors, line and column.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import sys
from typing import Any

from lora_compat.config.document import CMDLINE, JSON, TOML, Document, join_key
from lora_compat.errors import UserError

# Real configs are a few KB; refusing big files early keeps a mistaken argument (a checkpoint, a dataset
# archive) from being read into memory.
MAX_CONFIG_BYTES = 10 * 1024 * 1024

COMMAND_LINE_SUFFIXES = (".sh", ".bash", ".bat", ".cmd", ".ps1", ".txt", ".command")


def read_text(path: str, *, max_bytes: int = MAX_CONFIG_BYTES) -> str:
    """Return the UTF-8 text of ``path`` or raise a UserError saying exactly why it cannot be read."""
    if not os.path.exists(path):
        if os.path.lexists(path):  # a symlink whose target is missing or that points back at itself
            raise UserError("broken symbolic link (its target is missing or it loops)", file=path)
        raise UserError("file not found", file=path)
    if os.path.isdir(path):
        raise UserError("is a directory, expected a config file", file=path)
    if not os.path.isfile(path):
        # a FIFO or a device would block the read forever or stream without end
        raise UserError("not a regular file (a pipe, socket or device?), expected a config file", file=path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise UserError(f"cannot read file: {exc.strerror or exc}", file=path) from None
    if size > max_bytes:
        raise UserError(
            f"file is {size / 2**20:.1f} MiB; configs larger than {max_bytes / 2**20:g} MiB are refused "
            "(is this really a config?)", file=path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise UserError(f"cannot read file: {exc.strerror or exc}", file=path) from None
    if not raw.strip():
        raise UserError("file is empty", file=path)
    if raw.startswith(b"\xef\xbb\xbf"):  # UTF-8 BOM written by Windows editors: harmless, drop it
        raw = raw[3:]
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError("file is UTF-16 encoded; save it as UTF-8", file=path)
    if b"\x00" in raw[:8192]:
        raise UserError("binary data, not a text config (a model or image file?)", file=path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UserError("not valid UTF-8 text (saved in a legacy encoding such as GBK or cp1252?); "
                        "re-save it as UTF-8", file=path, line=line, col=col) from None


def guess_format(path: str, text: str) -> str:
    """``json``, ``toml`` or ``cmdline`` from the file name, else from the content."""
    low = path.lower()
    if low.endswith(".json"):
        return JSON
    if low.endswith(".toml"):
        return TOML
    if low.endswith(COMMAND_LINE_SUFFIXES):
        return CMDLINE
    head = text.lstrip()
    if head.startswith(("{", "[")) and not re.match(r"\[[A-Za-z0-9_.\-\" ]+\]\s*$", head.splitlines()[0]):
        return JSON
    if re.search(r"(^|[\s/\\\"'])(\w+_)?train_network\.py\b", text):
        return CMDLINE
    return TOML


def load_document(path: str, *, fmt: str | None = None) -> Document:
    """Read and parse ``path`` into a :class:`Document` (format from ``fmt``, suffix or content)."""
    text = read_text(path)
    return parse_document(path, text, fmt or guess_format(path, text))


def parse_document(path: str, text: str, fmt: str) -> Document:
    """Parse already read text of format ``fmt`` (``json``, ``toml`` or ``cmdline``)."""
    if fmt == JSON:
        return parse_json(path, text)
    if fmt == TOML:
        return parse_toml(path, text)
    from lora_compat.config.cmdline import parse_command_file

    return parse_command_file(path, text)


# --------------------------------------------------------------------------------------------- JSON
class _LineIndex:
    """Offset -> (line, col), both 1-based."""

    def __init__(self, text: str):
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def at(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, offset) - 1
        return i + 1, offset - self.starts[i] + 1


# strings as an "unrolled loop" (runs of ordinary characters in one step): a megabyte string value is one fast match
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+', re.S)


def parse_json(path: str, text: str) -> Document:
    """Parse JSON text; positions of every object key and array element."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno, col=exc.colno) from None
    except RecursionError:
        raise UserError("invalid JSON: nested too deeply", file=path) from None
    except ValueError:  # Python's int() digit limit (CVE-2020-10735 guard) on an absurd number
        raise _huge_number_error(path, text) from None
    duplicates: list[tuple[str, tuple[int, int], tuple[int, int]]] = []
    positions = json_positions(text, duplicates)
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        _refuse_lone_surrogates(path, data, positions)
    doc = Document(path=path, text=text, fmt=JSON, data=data, positions=positions)
    if duplicates:
        doc.meta["duplicate_keys"] = duplicates
    return doc


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_lone_surrogates(path: str, data: Any, positions: dict[str, tuple[int, int]]) -> None:
    """A JSON escape such as ``"\\ud800"`` alone (half of a UTF-16 surrogate pair) decodes to a string that is
    not Unicode text: no output (JSON, TOML, SARIF, a terminal) can carry it. Decided once, here: a UserError
    naming the key and its line (UTF-8 files cannot hold such text, so JSON escapes are the only way in)."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, dict):
            for k, v in value.items():
                sub = join_key(key, k)
                if _LONE_SURROGATE.search(k):
                    _surrogate_error(path, sub, k, positions)
                stack.append((sub, v))
        elif isinstance(value, list):
            stack.extend((join_key(key, i), v) for i, v in enumerate(value))
        elif isinstance(value, str) and _LONE_SURROGATE.search(value):
            _surrogate_error(path, key, value, positions)


def _surrogate_error(path: str, key: str, text: str, positions: dict[str, tuple[int, int]]) -> None:
    ch = _LONE_SURROGATE.search(text).group()  # type: ignore[union-attr]
    line, col = positions.get(key, (None, None))
    shown = key.encode("ascii", "backslashreplace").decode("ascii")
    raise UserError(f"not valid Unicode text: the JSON escape \\u{ord(ch):04x} is half of a surrogate pair with no "
                    "other half; remove it or write the character itself", file=path, line=line, col=col,
                    key=shown)


def _huge_number_error(path: str, text: str) -> UserError:
    """A number too long for Python's int() (more than ``sys.get_int_max_str_digits()`` digits), located."""
    m = re.search(r"\d{1000,}", text)
    line, col = _LineIndex(text).at(m.start()) if m else (None, None)
    limit = getattr(sys, "get_int_max_str_digits", lambda: 4300)()
    return UserError(f"number too long to be a setting (more than {limit} digits)", file=path, line=line, col=col)


def json_positions(text: str, duplicates: list[tuple[str, tuple[int, int], tuple[int, int]]] | None = None
                   ) -> dict[str, tuple[int, int]]:
    """Map key paths to the (line, col) of the key (objects) or of the value (array elements).

    Runs over text already accepted by ``json.loads``, so the token stream is well formed. A key written twice
    in one object maps to its LAST position (``json.loads`` keeps the last value, like every front-end's
    ``json.load``); each repeat is appended to ``duplicates`` as ``(key path, earlier position, later position)``.
    """
    index = _LineIndex(text)
    positions: dict[str, tuple[int, int]] = {}
    # stack entries: [kind, path, array_index, pending_key_path]
    stack: list[list[Any]] = []
    expect_key = False
    for m in _JSON_TOKEN.finditer(text):
        tok = m.group()
        top = stack[-1] if stack else None
        if tok == "{" or tok == "[":
            path = _value_path(top, positions, index, m.start())
            stack.append(["o" if tok == "{" else "a", path, 0, None])
            expect_key = tok == "{"
        elif tok == "}" or tok == "]":
            stack.pop()
            expect_key = False
        elif tok == ":":
            expect_key = False
        elif tok == ",":
            if top is not None:
                if top[0] == "a":
                    top[2] += 1
                else:
                    expect_key = True
        elif top is not None and top[0] == "o" and expect_key:
            key = tok[1:-1] if "\\" not in tok else json.loads(tok)   # decode only keys with escapes (fast path)
            top[3] = join_key(top[1], key)
            here = index.at(m.start())
            if duplicates is not None and top[3] in positions:
                duplicates.append((top[3], positions[top[3]], here))
            positions[top[3]] = here
            expect_key = False
        else:
            _value_path(top, positions, index, m.start())
    return positions


def _value_path(top: list[Any] | None, positions: dict[str, tuple[int, int]], index: _LineIndex,
                offset: int) -> str:
    """Key path of a value starting at ``offset``; records array element positions."""
    if top is None:
        return ""
    if top[0] == "o":
        return top[3] or top[1]
    path = join_key(top[1], top[2])
    positions.setdefault(path, index.at(offset))
    return path


# --------------------------------------------------------------------------------------------- TOML
_TOML_ERR_POS = re.compile(r"\(at line (\d+), column (\d+)\)")
_TOML_KEY_PART = r'(?:[A-Za-z0-9_\-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_TOML_KEY = re.compile(rf"\s*({_TOML_KEY_PART}(?:\s*\.\s*{_TOML_KEY_PART})*)\s*=")
_TOML_HEADER = re.compile(rf"\s*(\[\[?)\s*({_TOML_KEY_PART}(?:\s*\.\s*{_TOML_KEY_PART})*)\s*\]\]?")
_TOML_PART = re.compile(_TOML_KEY_PART)


def parse_toml(path: str, text: str) -> Document:
    """Parse TOML text; positions of every key (tables, arrays of tables, dotted keys)."""
    from lora_compat.tomlparse import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_ERR_POS.search(msg)
        line = col = None
        if m:
            line, col = int(m.group(1)), int(m.group(2))
            msg = msg[:m.start()].strip()
        raise UserError(f"invalid TOML: {msg}", file=path, line=line, col=col) from None
    except RecursionError:
        raise UserError("invalid TOML: nested too deeply", file=path) from None
    except ValueError:  # Python's int() digit limit (CVE-2020-10735 guard) on an absurd number
        raise _huge_number_error(path, text) from None
    return Document(path=path, text=text, fmt=TOML, data=data, positions=toml_positions(text))


def _key_parts(dotted: str) -> list[str]:
    parts = []
    for m in _TOML_PART.finditer(dotted):
        p = m.group()
        if p.startswith('"'):
            p = json.loads(p)
        elif p.startswith("'"):
            p = p[1:-1]
        parts.append(p)
    return parts


def toml_positions(text: str) -> dict[str, tuple[int, int]]:
    """Line scanner for TOML already accepted by the parser: table headers and ``key =`` lines.

    Multi-line strings and multi-line arrays are skipped (their inner lines are values, not keys).
    Keys inside one-line inline tables get their own positions; multi-line values fall back to their key.
    """
    positions: dict[str, tuple[int, int]] = {}
    aot_count: dict[str, int] = {}  # resolved array-of-tables path -> last index
    prefix = ""
    depth = 0          # open [ / { of a multi-line value
    in_string: str | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if in_string in line:
                in_string = None
            continue
        if depth > 0:
            depth = _bracket_depth(line, depth)
            continue
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        col = len(line) - len(stripped) + 1
        if stripped.startswith("["):
            m = _TOML_HEADER.match(line)
            if m:
                parts = _key_parts(m.group(2))
                is_array = m.group(1) == "[["
                prefix = _resolve_table(parts, aot_count, is_array)
                # the table and its implicit parents ([a.b] defines a; [[a]] the array a) start here
                # unless written earlier
                parent = prefix
                while parent:
                    positions.setdefault(parent, (lineno, col))
                    parent = parent[:max(parent.rfind("."), parent.rfind("["), 0)]
                continue
        m = _TOML_KEY.match(line)
        if not m:
            continue
        key_path = prefix
        parts = _key_parts(m.group(1))
        for i, part in enumerate(parts):
            key_path = join_key(key_path, part)
            if i < len(parts) - 1:   # a dotted key a.b = 1 defines the table a here unless written earlier
                positions.setdefault(key_path, (lineno, col))
        positions[key_path] = (lineno, col)
        rest = line[m.end():]
        if rest.lstrip().startswith("{"):
            _inline_table_positions(rest, key_path, lineno, m.end(), positions)
        triple = _opens_multiline_string(rest)
        if triple:
            in_string = triple
            continue
        depth = _bracket_depth(rest, 0)
    return positions


_INLINE_KEY = re.compile(rf"\s*({_TOML_KEY_PART}(?:\s*\.\s*{_TOML_KEY_PART})*)\s*=")


def _inline_table_positions(rest: str, prefix: str, lineno: int, offset: int,
                            positions: dict[str, tuple[int, int]]) -> None:
    """Keys of a one-line inline table ``{a = 1, b = {c = 2}}`` (nested tables too; arrays are skipped)."""
    stack: list[str] = []   # key path of each open inline table
    pending = prefix        # key whose value starts next
    expect_key = False
    i = 0
    while i < len(rest):
        ch = rest[i]
        if expect_key and not ch.isspace() and ch != "}":
            m = _INLINE_KEY.match(rest, i)
            if not m:
                return
            pending = stack[-1]
            for part in _key_parts(m.group(1)):
                pending = join_key(pending, part)
            positions[pending] = (lineno, offset + i + 1)
            expect_key = False
            i = m.end()
            continue
        if ch in "\"'":
            m = _STRING_LIT.match(rest, i)
            i = m.end() if m else len(rest)
            continue
        if ch == "{":
            stack.append(pending)
            expect_key = True
        elif ch == "}":
            if stack:
                stack.pop()
            expect_key = False
        elif ch == "," and stack:
            expect_key = True
        elif ch == "#":
            break
        i += 1


def _resolve_table(parts: list[str], aot_count: dict[str, int], is_array: bool) -> str:
    """Key path of a ``[a.b]`` / ``[[a.b]]`` header, indexing arrays of tables seen so far."""
    path = ""
    for i, part in enumerate(parts):
        path = join_key(path, part)
        last = i == len(parts) - 1
        if last and is_array:
            n = aot_count.get(path, -1) + 1
            aot_count[path] = n
            return join_key(path, n)
        if path in aot_count:
            path = join_key(path, aot_count[path])
    return path


def _opens_multiline_string(rest: str) -> str | None:
    s = rest.strip()
    for q in ('"""', "'''"):
        if s.startswith(q) and s.count(q) == 1:
            return q
    return None


_STRING_LIT = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')


def _bracket_depth(fragment: str, depth: int) -> int:
    """Depth of unclosed ``[``/``{`` after ``fragment`` (strings and comments ignored)."""
    frag = _STRING_LIT.sub("", fragment)
    hash_at = frag.find("#")
    if hash_at != -1:
        frag = frag[:hash_at]
    for ch in frag:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return max(depth, 0)
