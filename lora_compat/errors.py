"""The one error type users see: a clear, one-line message, exit code 2, no traceback."""

from __future__ import annotations

from typing import TypedDict


class Where(TypedDict, total=False):
    """Where a problem is, as keyword arguments of :class:`UserError` (``raise UserError(msg, **where)``)."""

    file: str | None
    line: int | None
    col: int | None
    key: str | None


class UserError(Exception):
    """Bad input or usage. The CLI prints ``str(err)`` on one line and exits with ``exit_code``.

    Build messages as ``file[:line[:col]]: [key: ]what is wrong`` via :func:`located`.
    """

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 col: int | None = None, key: str | None = None):
        self.file, self.line, self.col, self.key = file, line, col, key
        self.reason = message
        super().__init__(located(message, file=file, line=line, col=col, key=key))


class UnsupportedFamilyError(UserError):
    """A model family the command cannot handle yet (named, never handled as another family); exit 2."""

    def __init__(self, message: str, *, family: str, file: str | None = None):
        self.family = family
        super().__init__(message, file=file)


def located(message: str, *, file: str | None = None, line: int | None = None,
            col: int | None = None, key: str | None = None) -> str:
    """Format ``file:line:col: key: message`` leaving out the parts that are unknown."""
    where = ""
    if file:
        where = str(file)
        if line:
            where += f":{line}"
            if col:
                where += f":{col}"
        where += ": "
    if key:
        where += f"{key}: "
    return one_line(where + message)


# Control characters (C0, DEL, C1) and Unicode line/paragraph separators: a key or value quoted from a hostile file
# must neither break the one-line contract nor drive the terminal (ANSI escapes).
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_ESCAPES.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def one_line(text: str) -> str:
    """``text`` with control characters and line separators written as escapes (``\\n``, ``\\x1b``, ...)."""
    return text.translate(_ESCAPES)


MAX_MESSAGE_CHARS = 2000


def clip_message(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A one-line message cut to ``limit`` characters (a config value quoted in an error can be megabytes)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"
