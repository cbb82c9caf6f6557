"""Shell scripts as people write them: a lexer and a bounded evaluator for sh/bash, cmd.exe batch and PowerShell.

A training command usually sits in a launcher script with variables, arrays, comments, continuation lines and
substitutions (``$(date +%s)``, ``%~dp0``, ``$env:USERPROFILE``). This module turns such a script into plain
commands (lists of :class:`Token` words) the way the shell would, as far as the script itself says:

- variables assigned earlier in the script are expanded (sh ``X=v``/``export``/``declare``, arrays ``A=(...)``
  and ``"${A[@]}"``, ``${X:-default}``; batch ``set X=v``, ``set "X=v"``, ``set /A`` arithmetic, ``%X%``/``!X!``;
  PowerShell ``$x = v``, ``$env:X = v``, ``@(...)`` arrays and ``@x`` splatting); unquoted sh/batch expansions
  are split into words like the shell does;
- what the script cannot tell (command substitutions, the script's own arguments, variables set outside it,
  ``$((...))`` with unknown operands) stays in the word as written and is listed in :attr:`Token.unresolved`,
  so readers say "value unknown" instead of guessing or refusing.

Nothing is executed: arithmetic (``set /A``, ``$((...))``) is evaluated by a small integer evaluator over
literals only. The lexer is one linear pass; expansion is capped (:data:`MAX_VALUE_CHARS`,
:data:`MAX_TOTAL_CHARS`) so a variable that doubles itself 30 times ends as one clear error, not a hang.
"""

from __future__ import annotations

import bisect
import os
import re
from dataclasses import dataclass, field
from typing import Union

from lora_compat.errors import UserError

SH, CMD, PS = "sh", "cmd", "ps"

# One expanded variable value, and all expanded text of one script, may not exceed these (real launcher scripts
# stay far below: a few KB). Values are stored expanded, so a self-doubling chain stops at the first variable
# that crosses the limit.
MAX_VALUE_CHARS = 1 << 20
MAX_TOTAL_CHARS = 16 << 20
# ... and no expansion may hold more words than this (an array that doubles itself: each word is an object)
MAX_WORDS = 1 << 16


@dataclass(frozen=True)
class Token:
    """One word of a command with the position where it starts (1-based).

    ``unresolved``: the shell expressions in this word whose value the script does not define (as written,
    e.g. ``$(date +%s)``); ``text`` then still holds them as written. ``opaque``: the whole word is one unquoted
    unresolved expansion, which a shell could turn into any number of words (``$EXTRA_ARGS``, ``"$@"``).
    """

    text: str
    line: int
    col: int
    unresolved: tuple[str, ...] = ()
    opaque: bool = False


class CommandSyntaxError(ValueError):
    """A shell-syntax problem (unterminated quote) at ``line``:``col``."""

    def __init__(self, message: str, line: int, col: int):
        super().__init__(message)
        self.message, self.line, self.col = message, line, col


# ------------------------------------------------------------------------------------------------ flavors
def script_flavor(path: str, text: str) -> str:
    """``sh``, ``cmd`` or ``ps`` from the file suffix, else from the content (pasted text files)."""
    low = path.lower()
    if low.endswith((".bat", ".cmd")):
        return CMD
    if low.endswith(".ps1"):
        return PS
    if low.endswith((".sh", ".bash", ".command", ".zsh")):
        return SH
    return guess_flavor(text)


def guess_flavor(text: str) -> str:
    """The flavor of a text without a telling suffix (a README snippet, a .txt paste)."""
    if re.search(r"`[ \t]*\r?$", text, re.M) or re.search(r"^\s*\$(env:)?[A-Za-z_]\w*\s*=", text, re.M) \
            or re.search(r"^\s*&\s*[\"'$]", text, re.M):
        return PS
    if re.search(r"\^[ \t]*\r?$", text, re.M) or re.search(r"^\s*@?(set|rem|call|echo off)\b", text, re.M | re.I) \
            or re.search(r"[A-Za-z]:\\", text):
        return CMD
    return SH


# ------------------------------------------------------------------------------------------------ lexing
@dataclass
class Lit:
    text: str
    quoted: bool


@dataclass
class Ref:
    """A variable reference: ``name`` (``@``/``*`` index = every element), optional default (``${X:-d}``)."""

    name: str
    src: str
    quoted: bool
    index: str | None = None          # "@", "*", a number, or None
    default: Word | None = None     # ${X:-word} / ${X-word} / ${X:=word}
    default_if_empty: bool = True     # the ':' forms also replace an empty value
    length: bool = False              # ${#X}
    splat: bool = False               # PowerShell @x


@dataclass
class Unknown:
    """An expression the script does not define: command substitution, script arguments ..."""

    src: str
    quoted: bool


@dataclass
class Arith:
    """``$((expr))`` (sh) or the right side of ``set /A`` (batch): evaluated when its operands are known."""

    expr: str
    src: str
    quoted: bool


Part = Lit | Ref | Unknown | Arith


@dataclass
class Word:
    parts: list[Part]
    offset: int


@dataclass
class ArrayLit:
    """``NAME=( w1 w2 ... )`` (sh) or ``@( a, b )`` (PowerShell): element words with their positions."""

    name: str | None
    words: list[Word]
    offset: int
    append: bool = False
    group: bool = False      # a PowerShell ( ... ) expression, not an array


Item = Word | ArrayLit


class _Lexer:
    """One pass over the script text; ``commands`` = lists of words (and array literals)."""

    def __init__(self, text: str, flavor: str, starts: list[int] | None = None, end: int | None = None):
        self.t = text
        self.n = len(text) if end is None else end
        self.flavor = flavor
        self.starts = starts if starts is not None else [0] + [m.end() for m in re.finditer("\n", text)]
        self.commands: list[list[Item]] = []
        self.seps: list[str] = []                  # what ended each command: "\n", ";", "&&", "||", "|", "&"
        self.spans: list[tuple[int, int]] = []     # source offsets of each command
        self.cur: list[Item] = []
        self.parts: list[Part] | None = None
        self.word_at = 0
        self.lbuf: list[str] = []          # pending literal text of the current word (joined once: linear)
        self.lq: bool | None = None        # whether that pending text was quoted
        self.plain_run = _PLAIN_RUN[flavor]

    # -- positions -----------------------------------------------------------------------------------
    def pos(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, offset) - 1
        return i + 1, offset - self.starts[i] + 1

    def error(self, message: str, offset: int) -> CommandSyntaxError:
        return CommandSyntaxError(message, *self.pos(offset))

    # -- building ------------------------------------------------------------------------------------
    def start(self, at: int) -> None:
        if self.parts is None:
            self.parts, self.word_at = [], at

    def flush(self) -> None:
        if self.lq is not None and self.parts is not None:
            self.parts.append(Lit("".join(self.lbuf), self.lq))
        self.lbuf, self.lq = [], None

    def add(self, part: Part, at: int) -> None:
        self.start(at)
        self.flush()
        self.parts.append(part)  # type: ignore[union-attr]

    def lit(self, text: str, at: int, quoted: bool = False) -> None:
        self.start(at)
        if self.lq is not None and self.lq != quoted:
            self.flush()
        self.lbuf.append(text)
        self.lq = quoted

    def plain_so_far(self) -> str | None:
        """The current word's text when it is only literal so far."""
        if self.parts is None:
            return None
        self.flush()
        return _plain(self.parts)

    def end_word(self) -> None:
        if self.parts is not None:
            self.flush()
            self.cur.append(Word(self.parts, self.word_at))
        self.parts = None

    def end_command(self, sep: str = "\n", at: int | None = None) -> None:
        self.end_word()
        if self.cur:
            self.commands.append(self.cur)
            self.seps.append(sep)
            self.spans.append((self.cur[0].offset, self.n if at is None else at))
        self.cur = []

    # -- the pass ------------------------------------------------------------------------------------
    def run(self, i: int = 0) -> list[list[Item]]:
        t, n = self.t, self.n
        line_start = True
        while i < n:
            if line_start:
                line_start = False
                j = i
                while j < n and t[j] in " \t":
                    j += 1
                if not self.cur and self.parts is None and _COMMENT_LINE.match(t, j):
                    i = min(_line_end(t, j), n)
                    continue
            c = t[i]
            if c == "\n":
                self.end_command("\n", i)
                i += 1
                line_start = True
                continue
            if c in " \t\r":
                self.end_word()
                i += 1
                continue
            if self.parts is None:
                # fast path: a whole plain word (most words of a command line)
                m = self.plain_run.match(t, i, n)
                if m and (m.end() >= n or t[m.end()] in " \t\r\n") and c != "#":
                    self.cur.append(Word([Lit(m.group(), False)], i))
                    i = m.end()
                    continue
            nxt = self.step(i, c)
            i = -nxt if nxt < 0 else nxt   # negative: a line continuation consumed the newline
        self.end_command("\n", n)
        return self.commands

    def step(self, i: int, c: str) -> int:
        """Lex the construct starting at ``i``; returns the next offset (negative: after a line continuation)."""
        t, fl = self.t, self.flavor
        nxt = t[i + 1] if i + 1 < self.n else ""
        m = self.plain_run.match(t, i, self.n)
        if m and (c != "#" or self.parts is not None):
            self.lit(m.group(), i)
            return m.end()
        if c == "#" and self.parts is None and fl in (SH, PS):
            return min(_line_end(t, i), self.n)     # a comment runs to the end of the line
        if c == "'" and fl in (SH, PS):
            return self.single_quoted(i)
        if c == '"':
            return self.double_quoted(i)
        if fl == SH:
            if c == "\\":
                if _at_eol(t, i + 1, self.n):
                    return -_skip_eol(t, i + 1, self.n)
                if nxt:
                    self.lit(nxt, i)
                    return i + 2
                return i + 1
            if c == "$":
                return self.dollar(i, quoted=False)
            if c == "`":
                end = _find_closing(t, i + 1, "`", self.n)
                if end < 0:
                    raise self.error("unterminated ` command substitution", i)
                self.add(Unknown(t[i:end + 1], False), i)
                return end + 1
            if c == "(" and _ASSIGN_PREFIX.fullmatch(self.plain_so_far() or ""):
                return self.array(i)
        elif fl == CMD:
            if c == "^":
                if _at_eol(t, i + 1, self.n):
                    self.end_word()
                    return -_skip_eol(t, i + 1, self.n)
                if nxt:
                    self.lit(nxt, i)
                    return i + 2
                return i + 1
            if c == "%":
                return self.percent(i, quoted=False)
            if c == "!":
                m = _BANG_VAR.match(t, i, self.n)
                if m:
                    self.add(Ref(m.group(1), m.group(0), False), i)
                    return m.end()
        else:  # PowerShell
            if c == "`":
                if _at_eol(t, i + 1, self.n):
                    self.end_word()
                    return -_skip_eol(t, i + 1, self.n)
                if nxt:
                    self.lit(_PS_ESCAPES.get(nxt, nxt), i)
                    return i + 2
                return i + 1
            if c == "$":
                return self.dollar(i, quoted=False)
            if c == "@" and nxt == "(" and self.parts is None:
                return self.array(i + 1, ps=True)
            if c == "@" and self.parts is None:
                m = _PS_NAME.match(t, i + 1, self.n)
                if m:
                    self.add(Ref(m.group(0), t[i:m.end()], False, splat=True), i)
                    return m.end()
            if c == "," and len(self.cur) >= 2 and isinstance(self.cur[1], Word) and _plain(self.cur[1].parts) == "=":
                self.end_word()     # an element separator of a list assigned to a variable: $a = "x", "y"
                self.cur.append(Word([Lit(",", False)], i))
                return i + 1
        if c in ";|&":
            if fl == PS and c == "&" and nxt != "&" and not self.cur and self.parts is None:
                return i + 1   # the call operator: & "python.exe" ...
            j = i + 1
            while j < self.n and t[j] in ";|&":
                j += 1
            self.end_command(t[i:j], i)
            return j
        if fl == PS and c == "(" and self.parts is None:
            return self.group(i)
        if fl == PS and c in "{}" and self.parts is None:
            # a script block: its own command, so the evaluator sees where if/else bodies start and end
            self.end_command("\n", i)
            self.cur.append(Word([Lit(c, False)], i))
            self.end_command("\n", i + 1)
            return i + 1
        if c in "()" and self.parts is None:
            # a subshell/block bracket at the start of a word (sh ( ... ), batch if (...) ( ... )): a boundary
            self.end_command(c, i)
            return i + 1
        self.lit(c, i)
        return i + 1

    def single_quoted(self, i: int) -> int:
        t = self.t
        j = i + 1
        buf = []
        while True:
            end = t.find("'", j, self.n)
            if end < 0:
                raise self.error("unterminated ' quote", i)
            buf.append(t[j:end])
            if self.flavor == PS and t.startswith("''", end) and end + 1 < self.n:   # PowerShell: '' = '
                buf.append("'")
                j = end + 2
                continue
            break
        self.lit("".join(buf), i, quoted=True)
        return end + 1

    def double_quoted(self, i: int) -> int:
        t, fl, n = self.t, self.flavor, self.n
        self.lit("", i, quoted=True)   # "" is an (empty) word
        j = i + 1
        start = j
        while j < n:
            c = t[j]
            if c == '"':
                if fl == PS and j + 1 < n and t[j + 1] == '"':   # PowerShell: "" inside "..." is a quote
                    self.lit(t[start:j] + '"', i, quoted=True)
                    j += 2
                    start = j
                    continue
                self.lit(t[start:j], i, quoted=True)
                return j + 1
            if fl == SH and c == "\\" and j + 1 < n and t[j + 1] in '"\\$`\n':
                self.lit(t[start:j], i, quoted=True)
                if t[j + 1] != "\n":
                    self.lit(t[j + 1], i, quoted=True)
                j += 2
                start = j
                continue
            if fl == PS and c == "`" and j + 1 < n:
                self.lit(t[start:j] + _PS_ESCAPES.get(t[j + 1], t[j + 1]), i, quoted=True)
                j += 2
                start = j
                continue
            if c == "$" and fl in (SH, PS):
                self.lit(t[start:j], i, quoted=True)
                j = self.dollar(j, quoted=True)
                start = j
                continue
            if fl == SH and c == "`":
                self.lit(t[start:j], i, quoted=True)
                end = _find_closing(t, j + 1, "`", n)
                if end < 0:
                    raise self.error("unterminated ` command substitution", j)
                self.add(Unknown(t[j:end + 1], True), j)
                j = end + 1
                start = j
                continue
            if fl == CMD and c == "%":
                self.lit(t[start:j], i, quoted=True)
                j = self.percent(j, quoted=True)
                start = j
                continue
            if fl == CMD and c == "!":
                m = _BANG_VAR.match(t, j, n)
                if m:
                    self.lit(t[start:j], i, quoted=True)
                    self.add(Ref(m.group(1), m.group(0), True), j)
                    j = m.end()
                    start = j
                    continue
            if fl == CMD and c == "\n":
                break  # cmd.exe ends a quote at the end of the line
            j += 1
        if fl == CMD:
            self.lit(t[start:j].rstrip("\r"), i, quoted=True)
            return j
        raise self.error('unterminated " quote', i)

    def dollar(self, i: int, *, quoted: bool) -> int:
        """``$...`` at ``i`` (sh or PowerShell)."""
        t, fl, n = self.t, self.flavor, self.n
        nxt = t[i + 1] if i + 1 < n else ""
        if nxt == "(":
            if fl == SH and t.startswith("((", i + 1):
                end = _find_closing_paren(t, i + 2, n)
                if end >= 0 and end + 1 < n and t[end + 1] == ")":
                    self.add(Arith(t[i + 3:end], t[i:end + 2], quoted), i)
                    return end + 2
            end = _find_closing_paren(t, i + 1, n)
            if end < 0:
                raise self.error("unterminated $( substitution", i)
            self.add(Unknown(t[i:end + 1], quoted), i)
            return end + 1
        if nxt == "{":
            end = t.find("}", i + 2, n)
            if end < 0:
                raise self.error("unterminated ${ expansion", i)
            self.add(self.braced(t[i + 2:end], t[i:end + 1], quoted, i), i)
            return end + 1
        m = (_PS_VAR if fl == PS else _SH_NAME).match(t, i + 1, n)
        if m:
            self.add(Ref(m.group(0), t[i:m.end()], quoted), i)
            return m.end()
        if fl == SH and nxt and nxt in "@*#?$!0123456789-":
            self.add(Unknown(t[i:i + 2], quoted), i)   # the script's arguments and other specials
            return i + 2
        self.lit("$", i, quoted)
        return i + 1

    def braced(self, inner: str, src: str, quoted: bool, at: int) -> Part:
        if self.flavor == PS:
            return Ref(inner, src, quoted)
        m = _BRACED.fullmatch(inner)
        if not m:
            return Unknown(src, quoted)   # ${X#pattern}, ${X/a/b} ...: not evaluated
        length, name, index, op, rest = m.group(1), m.group(2), m.group(3), m.group(4), m.group(5)
        ref = Ref(name, src, quoted, index=index, length=bool(length))
        if op:
            if op in (":+", "+", ":?", "?"):
                return Unknown(src, quoted)
            ref.default = _word_of(rest, quoted, at)
            ref.default_if_empty = op.startswith(":")
        return ref

    def percent(self, i: int, *, quoted: bool) -> int:
        t, n = self.t, self.n
        if t.startswith("%%", i):
            self.lit("%", i, quoted)
            return i + 2
        m = _BATCH_ARG.match(t, i, n)
        if m:
            src = m.group(0)
            part: Part = Ref("%~dp0", src, quoted) if src.lower() == "%~dp0" else Unknown(src, quoted)
            self.add(part, i)
            return m.end()
        m = _BATCH_VAR.match(t, i, n)
        if m:
            self.add(Ref(m.group(1), m.group(0), quoted), i)
            return m.end()
        self.lit("%", i, quoted)
        return i + 1

    def group(self, i: int) -> int:
        """PowerShell ``( ... )`` at the start of a word (an ``if`` condition): its words as one item."""
        end = _find_closing_paren(self.t, i, self.n)
        if end < 0:
            raise self.error("unterminated ( expression", i)
        words = self._sub_words(i + 1, end, commas=False)
        self.end_word()
        self.cur.append(ArrayLit(None, words, i, group=True))
        return end + 1

    def _sub_words(self, start: int, end: int, *, commas: bool) -> list[Word]:
        """The words between ``start`` and ``end`` lexed in place (each keeps its own line and column)."""
        sub = _Lexer(self.t, self.flavor, starts=self.starts, end=end)
        k = start
        while k < end:
            ch = self.t[k]
            if ch in " \t\r\n" or (ch == "," and commas):
                sub.end_word()
                k += 1
                continue
            if ch == "#" and sub.parts is None:
                k = min(_line_end(self.t, k), end)
                continue
            k = abs(sub.step(k, ch))
        sub.end_word()
        return [w for c in sub.commands for w in c if isinstance(w, Word)] + \
            [w for w in sub.cur if isinstance(w, Word)]

    def array(self, i: int, ps: bool = False) -> int:
        """``NAME=(`` (sh, ``i`` at the parenthesis) or ``@(`` (PowerShell): elements up to the closing ``)``."""
        name = None
        append = False
        if not ps:
            prefix = self.plain_so_far() or ""
            append = prefix.endswith("+=")
            name = prefix[:-2] if append else prefix[:-1]
            at = self.word_at
        else:
            at = i - 1
        end = _find_closing_paren(self.t, i, self.n)
        if end < 0:
            raise self.error("unterminated ( array", i)
        words = self._sub_words(i + 1, end, commas=ps)
        self.parts = None
        self.lbuf, self.lq = [], None
        self.cur.append(ArrayLit(name, words, at, append))
        return end + 1


def _word_of(text: str, quoted: bool, at: int) -> Word:
    """The parts of a ``${X:-default}`` default (expansions inside it included)."""
    sub = _Lexer(text, SH)
    sub.start(0)
    k = 0
    while k < len(text):
        if text[k] in " \t":
            sub.lit(text[k], k, quoted)
            k += 1
            continue
        k = abs(sub.step(k, text[k]))
    sub.flush()
    parts = sub.parts or [Lit("", quoted)]
    if quoted:
        parts = [Lit(p.text, True) if isinstance(p, Lit) else p for p in parts]
    return Word(parts, at)


_COMMENT_LINE = re.compile(r"(#|::|@?rem(\s|$))", re.I)
# runs of ordinary characters per flavor (lexed in one step, so a 1 MB word costs one regex match)
_PLAIN_RUN = {
    SH: re.compile(r"[^ \t\r\n'\"\\$`;|&()]+"),
    CMD: re.compile(r"[^ \t\r\n\"^%!;|&()]+"),
    PS: re.compile(r"[^ \t\r\n'\"`$;|&(),@#{}]+"),
}
_ASSIGN_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
_SH_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PS_VAR = re.compile(r"(?:env:|script:|global:|local:)?[A-Za-z_][A-Za-z0-9_]*", re.I)
_BRACED = re.compile(r"(#?)([A-Za-z_][A-Za-z0-9_]*)(?:\[([@*]|\d+)\])?(?:(:?[-=+?])(.*))?", re.S)
_BATCH_VAR = re.compile(r"%([A-Za-z_][A-Za-z0-9_#$\-.]*)%")
_BATCH_ARG = re.compile(r"%(?:~[a-z]*)?[0-9*]", re.I)
_BANG_VAR = re.compile(r"!([A-Za-z_][A-Za-z0-9_]*)!")
_MANY_WORDS = ("$@", "$*", "%*")     # the script's arguments: any number of words, quoted or not
_PS_CONSTANTS = {"true": "True", "false": "False", "null": "", "psscriptroot": ""}
_PS_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def _line_end(t: str, i: int) -> int:
    j = t.find("\n", i)
    return len(t) if j < 0 else j


def _at_eol(t: str, i: int, n: int) -> bool:
    """Only spaces/tabs (and a CR) between ``i`` and the end of the line."""
    j = i
    while j < n and t[j] in " \t\r":
        j += 1
    return j >= n or t[j] == "\n"


def _skip_eol(t: str, i: int, n: int) -> int:
    j = t.find("\n", i, n)
    return n if j < 0 else j + 1


def _find_closing(t: str, i: int, ch: str, n: int) -> int:
    j = i
    while j < n:
        if t[j] == "\\":
            j += 2
            continue
        if t[j] == ch:
            return j
        j += 1
    return -1


def _find_closing_paren(t: str, i: int, n: int) -> int:
    """Offset of the ``)`` matching the ``(`` at ``i`` (quotes respected), or -1."""
    depth = 0
    j = i
    while j < n:
        c = t[j]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j
        elif c in "\"'":
            end = t.find(c, j + 1, n)
            if end < 0:
                return -1
            j = end
        elif c == "\\":
            j += 1
        j += 1
    return -1


def _plain(parts: list[Part]) -> str | None:
    """The text of a word made only of literal parts, else None."""
    if not all(isinstance(p, Lit) for p in parts):
        return None
    return "".join(p.text for p in parts)  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------------ evaluating
Value = Union[str, "list[Token]"]   # a string, or an array of words (each keeps where it was written)


@dataclass
class Script:
    """The evaluated script: commands as tokens, plus what was learned on the way."""

    commands: list[list[Token]]
    flavor: str
    variables: dict[str, Value] = field(default_factory=dict)


class _Evaluator:
    def __init__(self, flavor: str, lexer: _Lexer, path: str):
        self.flavor = flavor
        self.lexer = lexer
        self.path = path
        self.env: dict[str, Value] = {}
        self.ps_types: dict[str, str] = {}      # PowerShell: num / str / bool / list of each variable
        self.certain = True
        self.total = 0
        self.script_dir = os.path.dirname(os.path.abspath(path)) + os.sep if path else ""

    def key(self, name: str) -> str:
        # batch and PowerShell names are case-insensitive
        return name if self.flavor == SH else name.lower()

    def limit(self, text_len: int, what: str, offset: int) -> None:
        """Count ``text_len`` expanded characters; one clear error past the caps."""
        self.total += text_len
        if text_len > MAX_VALUE_CHARS or self.total > MAX_TOTAL_CHARS:
            line, col = self.lexer.pos(offset)
            raise UserError(f"shell expansion of {what} grows beyond {MAX_VALUE_CHARS // 2**20} MiB or "
                            f"{MAX_WORDS:,} words (a variable built from itself?); lora-compat stops expanding here",
                            file=self.path, line=line, col=col)

    # -- words ---------------------------------------------------------------------------------------
    def expand(self, word: Word, *, split: bool = True) -> list[Token]:
        """A word -> the words the shell passes (several for arrays and unquoted sh/batch expansions)."""
        line, col = self.lexer.pos(word.offset)
        if len(word.parts) == 1 and isinstance(word.parts[0], Lit):   # fast path: a literal word
            text = word.parts[0].text
            self.total += len(text) + 1
            if self.total > MAX_TOTAL_CHARS:
                self.limit(0, "the script", word.offset)
            return [Token(text, line, col)] if text or word.parts[0].quoted else []
        out = _Fields(self, word.offset, split and self.flavor in (SH, CMD))
        for part in word.parts:
            if isinstance(part, Lit):
                out.text(part.text, part.quoted)
            elif isinstance(part, Unknown):
                out.unknown(part.src)
            elif isinstance(part, Arith):
                value = self.arith(part.expr)
                if value is None:
                    out.unknown(part.src)
                else:
                    out.text(str(value), True)
            else:
                self._expand_ref(part, out)
        parts = [p for p in word.parts if not (isinstance(p, Lit) and not p.text)]
        lone = parts[0] if len(parts) == 1 else None
        lone_opaque = (isinstance(lone, Unknown) and (not lone.quoted or lone.src in _MANY_WORDS)) or \
            (isinstance(lone, Ref) and not lone.quoted and bool(out.unresolved))
        return [Token(text, pos[0] if pos else line, pos[1] if pos else col, here, bool(here) and (lone_opaque or opq))
                for text, here, pos, opq in out.result()]

    def _expand_ref(self, ref: Ref, out: _Fields) -> None:
        value = self.lookup(ref)
        if ref.default is not None and (value is None or (value == "" and ref.default_if_empty)):
            value = " ".join(t.text for t in self.expand(ref.default, split=False))
            ref = Ref(ref.name, ref.src, True)  # the default is used as one piece
        if value is None:
            out.unknown(ref.src)
            return
        if ref.length:
            out.text(str(len(value)), ref.quoted)
            return
        if isinstance(value, list):
            elements = self.index(value, ref)
            separate = (ref.index == "@" or ref.splat or (self.flavor == PS and not ref.quoted))
            if not separate and elements:
                joined = " ".join(e.text for e in elements)
                elements = [Token(joined, elements[0].line, elements[0].col,
                                  tuple(u for e in elements for u in e.unresolved))]
            out.elements(elements, ref.quoted)
            return
        out.expansion(value, ref.quoted)
        if isinstance(value, UnresolvedText):
            out.unresolved.extend(value.exprs)

    def lookup(self, ref: Ref) -> Value | None:
        """The variable's value, None when the script does not set it (an unresolved expression)."""
        name = ref.name.lower()
        if name == "%~dp0":
            return self.script_dir        # the batch file's own folder
        value = self.env.get(self.key(ref.name))
        if value is None and self.flavor == PS and name in _PS_CONSTANTS:
            return self.script_dir.rstrip(os.sep) if name == "psscriptroot" else _PS_CONSTANTS[name]
        return value

    def index(self, value: list[Token], ref: Ref) -> list[Token]:
        """The elements ``ref`` selects: all (``[@]``, ``[*]``, PowerShell), the first (bash ``$arr``) or one."""
        if ref.index in (None, "@", "*") or ref.splat:
            if ref.index is None and not ref.splat and self.flavor == SH:
                return value[:1]      # bash: $arr is ${arr[0]}
            return list(value)
        try:
            return [value[int(ref.index)]]
        except (IndexError, ValueError):
            return []

    # -- arithmetic (set /A, $((...))): integers only, no names it does not know, nothing executed -------
    def arith(self, expr: str) -> int | None:
        def name(m: re.Match) -> str:
            v = self.env.get(self.key(m.group(1)))
            if isinstance(v, str) and re.fullmatch(r"\s*-?\d+\s*", v):
                return v.strip()
            raise LookupError(m.group(1))

        try:
            text = re.sub(r"[$%]?\{?([A-Za-z_][A-Za-z0-9_]*)\}?%?", name, expr)
        except LookupError:
            return None
        return safe_int_arith(text, integer_division=True)

    # -- commands ------------------------------------------------------------------------------------
    def run(self, commands: list[list[Item]]) -> list[list[Token]]:
        """Evaluate the commands in order: assignments update the variables, conditions the script can decide
        select branches, the rest become commands of tokens."""
        out: list[list[Token]] = []
        self.frames: list[_Frame] = []
        self.pending: tuple[str, bool | None] | None = None     # PowerShell: if/elseif/else waiting for "{"
        self.certain = True
        seps, spans = self.lexer.seps, self.lexer.spans
        for k, cmd in enumerate(commands):
            before, after = (seps[k - 1] if k else "\n"), seps[k]
            rest = self._control(cmd, before, after)
            if not rest:
                continue
            state = self._state()
            if state is False:
                continue            # a branch the script does not take
            self.certain = state is True
            self.span = spans[k]
            if self.assignment(rest):
                continue
            tokens: list[Token] = []
            for item in rest:
                if isinstance(item, ArrayLit):
                    continue  # an array literal outside an assignment (PowerShell @() passed inline) is rare
                tokens.extend(self.expand(item))
            if tokens:
                out.append(tokens)
        return out

    def _state(self) -> bool | None:
        """True: every enclosing branch is taken; False: one is not; None: one depends on the run."""
        state: bool | None = True
        for f in self.frames:
            if f.closed:
                continue
            if f.taken is False:
                return False
            if f.taken is None:
                state = None
        return state

    def _control(self, cmd: list[Item], before: str, after: str) -> list[Item] | None:
        """Handle control keywords (if/elif/else/fi, loops, PowerShell blocks); the command left to run, if any."""
        head = _plain(cmd[0].parts) if isinstance(cmd[0], Word) else None
        if self.flavor == PS:
            return self._ps_control(cmd, head)
        if self.flavor != SH or head is None:
            return cmd
        word = head
        if word == "if":
            cond = None if (after in ("&&", "||") or before in ("&&", "||") or self._state() is False) \
                else self._sh_condition(cmd[1:])
            self.frames.append(_Frame("if", cond, cond))
            return None
        if word in ("then", "do"):
            return cmd[1:]
        if word in ("elif", "else"):
            top = self.frames[-1] if self.frames and self.frames[-1].kind == "if" else None
            if top is not None:
                cond = True if word == "else" else self._sh_condition(cmd[1:])
                top.branch(cond)
            return cmd[1:] if word == "else" else None
        if word in ("fi", "done", "esac"):
            if self.frames:
                self.frames.pop()
            return cmd[1:]
        if word in ("for", "while", "until", "select", "case"):
            self.frames.append(_Frame("loop", None, None))   # runs 0..n times: what it sets is unknown
            return None
        return cmd

    def _ps_control(self, cmd: list[Item], head: str | None) -> list[Item] | None:
        low = (head or "").lower()
        top = self.frames[-1] if self.frames else None
        if top is not None and top.closed and low not in ("else", "elseif") and not (low == "{" and self.pending):
            self.frames.pop()           # the if statement ended with its last body
            top = self.frames[-1] if self.frames else None
        group = cmd[1] if len(cmd) > 1 and isinstance(cmd[1], ArrayLit) and cmd[1].group else None
        if low == "if" and group is not None:
            self.pending = ("if", None if self._state() is False else self._ps_condition(group.words))
            return None
        if low == "elseif" and group is not None and top is not None and top.closed:
            self.pending = ("elseif", self._ps_condition(group.words))
            return None
        if low == "else" and top is not None and top.closed:
            self.pending = ("else", True)
            return None
        if low == "{":
            if self.pending and self.pending[0] == "if":
                self.frames.append(_Frame("if", self.pending[1], self.pending[1]))
            elif self.pending and top is not None and top.kind == "if":
                top.branch(self.pending[1])
                top.closed = False
            else:
                self.frames.append(_Frame("block", None, None))   # foreach, function, try ... bodies
            self.pending = None
            return None
        if low == "}":
            if top is not None and top.kind == "if":
                top.closed = True       # an else/elseif may follow
            elif top is not None:
                self.frames.pop()
            return None
        self.pending = None
        return cmd

    # -- conditions the script can decide -----------------------------------------------------------
    def _sh_condition(self, items: list[Item]) -> bool | None:
        words = [w for w in items if isinstance(w, Word)]
        if len(words) != len(items) or not words:
            return None
        texts: list[str] = []
        for w in words:
            toks = self.expand(w, split=False)
            if any(t.unresolved for t in toks):
                return None
            texts.append(" ".join(t.text for t in toks))
        if (texts[0] == "[[" and texts[-1] == "]]") or (texts[0] == "[" and texts[-1] == "]"):
            texts = texts[1:-1]
        elif texts[0] == "test":
            texts = texts[1:]
        else:
            return None          # a command's exit status: known only when it runs
        return _test_expression(texts)

    def _ps_condition(self, words: list[Word]) -> bool | None:
        operands: list[tuple[str, str] | str] = []
        for w in words:
            plain = _plain(w.parts)
            if plain is not None and plain.startswith("-") and plain[1:].isalpha() and not w.parts[0].quoted:
                operands.append(plain.lower())
                continue
            operand = self._ps_operand(w)
            if operand is None:
                return None
            operands.append(operand)
        negate = False
        if operands and operands[0] in ("-not", "!"):
            negate, operands = True, operands[1:]
        result: bool | None
        if len(operands) == 1 and isinstance(operands[0], tuple):
            result = _ps_truthy(*operands[0])
        elif len(operands) == 3 and isinstance(operands[1], str) and isinstance(operands[0], tuple) \
                and isinstance(operands[2], tuple):
            result = _ps_compare(operands[0], operands[1], operands[2])
        else:
            result = None
        return None if result is None else (not result if negate else result)

    def _ps_operand(self, word: Word) -> tuple[str, str] | None:
        """(value, kind) of a condition operand: kind num / str / bool, as PowerShell types it."""
        parts = [p for p in word.parts if not (isinstance(p, Lit) and not p.text and not p.quoted)]
        if len(parts) == 1 and isinstance(parts[0], Ref):
            name = self.key(parts[0].name)
            if name in ("true", "false") and name not in self.env:
                return ("True" if name == "true" else "False"), "bool"
            value = self.lookup(parts[0])
            if value is None or isinstance(value, list):
                return None if value is None else (" ".join(t.text for t in value), "list")
            return value, self.ps_types.get(self.key(parts[0].name), "str")
        toks = self.expand(word, split=False)
        if any(t.unresolved for t in toks) or len(toks) != 1:
            return None
        quoted = any(isinstance(p, Lit) and p.quoted for p in word.parts)
        return toks[0].text, ("str" if quoted or not _NUMBER.fullmatch(toks[0].text) else "num")

    def assignment(self, cmd: list[Item]) -> bool:
        """Apply ``cmd`` when it assigns variables (and nothing else); True when it did."""
        if self.flavor == SH:
            return self._sh_assignment(cmd)
        if self.flavor == CMD:
            return self._cmd_assignment(cmd)
        return self._ps_assignment(cmd)

    def _set(self, name: str, value: Value, offset: int, kind: str = "str") -> None:
        if isinstance(value, list) and len(value) > MAX_WORDS:
            self.limit(MAX_VALUE_CHARS + 1, f"array {name}", offset)
        if not self.certain:
            # assigned inside a branch the script decides at run time: its value is unknown from here on
            self.env.pop(self.key(name), None)
            self.ps_types.pop(self.key(name), None)
            return
        size = len(value) if isinstance(value, str) else sum(len(v.text) + 1 for v in value)
        self.limit(size, f"variable {name}", offset)
        self.env[self.key(name)] = value
        self.ps_types[self.key(name)] = kind

    def _sh_assignment(self, cmd: list[Item]) -> bool:
        items = list(cmd)
        first = items[0]
        if isinstance(first, Word) and _plain(first.parts) in ("export", "declare", "local", "readonly", "typeset"):
            items = items[1:]
            while items and isinstance(items[0], Word) and (_plain(items[0].parts) or "").startswith("-"):
                items = items[1:]
            if not items:
                return True
        assigns: list[tuple[str, Item, bool]] = []
        for item in items:
            if isinstance(item, ArrayLit):
                assigns.append((item.name or "", item, item.append))
                continue
            head = item.parts[0] if item.parts else None
            m = _SH_ASSIGN.match(head.text) if isinstance(head, Lit) and not head.quoted else None
            if not m:
                if assigns:
                    # prefix assignments (CUDA_VISIBLE_DEVICES=0 accelerate launch ...): kept for the rest
                    self._apply(assigns)
                    return False
                return False
            rest = [Lit(head.text[m.end():], False), *item.parts[1:]]  # type: ignore[union-attr]
            assigns.append((m.group(1), Word(rest, item.offset), m.group(2) == "+="))
        self._apply(assigns)
        return bool(assigns)

    def _apply(self, assigns: list[tuple[str, Item, bool]]) -> None:
        for name, item, append in assigns:
            if isinstance(item, ArrayLit):
                items = [t for w in item.words for t in self.expand(w)]
                old = self.env.get(self.key(name))
                if append and isinstance(old, list):
                    items = old + items
                self._set(name, items, item.offset)
            else:
                toks = self.expand(item, split=False)
                text = "".join(t.text for t in toks)
                exprs = tuple(u for t in toks for u in t.unresolved)
                old = self.env.get(self.key(name))
                if append and isinstance(old, str):
                    exprs += getattr(old, "exprs", ())
                    text = old + text
                self._set(name, _unresolved_text(text, exprs), item.offset)

    def _cmd_assignment(self, cmd: list[Item]) -> bool:
        words = [w for w in cmd if isinstance(w, Word)]
        if not words or (_plain(words[0].parts) or "").lower() != "set" or len(words) < 2:
            return False
        rest = words[1:]
        flag = (_plain(rest[0].parts) or "").lower()
        if flag in ("/a", "/p"):
            rest = rest[1:]
            if not rest:
                return True
        toks = [self.expand(w, split=False) for w in rest]
        texts = [" ".join(t.text for t in ts) for ts in toks]
        exprs = tuple(u for ts in toks for t in ts for u in t.unresolved)
        joined = " ".join(texts)
        name, eq, value = joined.partition("=")
        if not eq or not _SH_NAME.fullmatch(name.strip()):
            return True   # `set` alone lists variables; `set X` shows one: no assignment, not a training command
        name = name.strip()
        if flag == "/a":
            result = safe_int_arith(self._batch_arith_names(value), integer_division=True)
            if result is None:
                self.env.pop(self.key(name), None)   # unknown: later uses stay unresolved
                return True
            self._set(name, str(result), rest[0].offset)
        elif flag == "/p":
            self.env.pop(self.key(name), None)       # typed in by the user when the script runs
        else:
            self._set(name, _unresolved_text(value, tuple(e for e in exprs if e in value)), rest[0].offset)
        return True

    def _batch_arith_names(self, expr: str) -> str:
        # set /A reads bare names as variables (unset = 0)
        def name(m: re.Match) -> str:
            v = self.env.get(self.key(m.group(0)))
            return v.strip() if isinstance(v, str) and re.fullmatch(r"\s*-?\d+\s*", v) else "x"

        return re.sub(r"[A-Za-z_][A-Za-z0-9_]*", name, expr)

    def _ps_assignment(self, cmd: list[Item]) -> bool:
        src = self.lexer.t[self.span[0]:self.span[1]]
        m = _PS_ADD.match(src)
        if m:      # [void]$list.Add(x) / $list.AddRange(@(...)): appends to a list variable
            self._ps_append(m.group(1), self.span[0] + m.start(2), self.span[0] + m.end(2))
            return True
        if len(cmd) < 2 or not isinstance(cmd[0], Word):
            return False
        head = cmd[0].parts
        if not (len(head) == 1 and isinstance(head[0], Ref) and not head[0].splat):
            return False
        op = _plain(cmd[1].parts) if isinstance(cmd[1], Word) else None
        if op not in ("=", "+="):
            return False
        name = head[0].name
        values = cmd[2:]
        if op == "+=":
            if values:
                self._ps_append(name, values[0].offset, self.span[1])
            return True
        if not values:
            self._set(name, "", cmd[0].offset)
            return True
        if _PS_NEW_LIST.match(src[values[0].offset - self.span[0]:]):
            self._set(name, [], values[0].offset, "list")
            return True
        if len(values) == 1 and isinstance(values[0], ArrayLit) and not values[0].group:
            self._set(name, [t for w in values[0].words for t in self.expand(w)], values[0].offset, "list")
            return True
        words = [w for w in values if isinstance(w, Word)]
        if len(words) != len(values):
            self.env.pop(self.key(name), None)
            return True
        if any(_plain(w.parts) == "," for w in words):
            elements = [t for w in words if _plain(w.parts) != "," for t in self.expand(w)]
            self._set(name, elements, words[0].offset, "list")
            return True
        value = self._ps_expression(words)
        if value is None:
            self.env.pop(self.key(name), None)   # an expression not evaluated: later uses stay unresolved
            return True
        text, kind = value
        self._set(name, text, words[0].offset, kind)
        return True

    def _ps_expression(self, words: list[Word]) -> tuple[str, str] | None:
        """A value: one operand, or operands joined with ``+`` (string concatenation or number addition)."""
        operands = [w for i, w in enumerate(words) if i % 2 == 0]
        if any(_plain(w.parts) != "+" for i, w in enumerate(words) if i % 2 == 1) or len(words) % 2 == 0:
            return None
        values = [self._ps_operand(w) for w in operands]
        if any(v is None for v in values):
            return None
        first_text, kind = values[0]  # type: ignore[misc]
        if kind == "bool" and len(values) == 1:
            return first_text, kind
        if kind == "num" and len(values) > 1:
            total = safe_int_arith(" + ".join(v[0] for v in values))  # type: ignore[index]
            return (str(total), "num") if total is not None else None
        return "".join(v[0] for v in values), kind if len(values) == 1 else "str"  # type: ignore[index]

    def _ps_append(self, name: str, start: int, end: int) -> None:
        """``$list += x`` / ``$list.Add(x)``: x is an expression, an ``@(...)`` array or a comma list."""
        lexer = _Lexer(self.lexer.t, PS, starts=self.lexer.starts, end=end)
        lexer.run(start)
        items = [it for c in lexer.commands for it in c]
        old = self.env.get(self.key(name))
        if not isinstance(old, list):
            self.env.pop(self.key(name), None)
            return
        new: list[Token] | None
        if len(items) == 1 and isinstance(items[0], ArrayLit):
            new = [t for w in items[0].words for t in self.expand(w)]
        elif all(isinstance(it, Word) for it in items):
            words = [w for w in items if isinstance(w, Word)]
            if any(_plain(w.parts) == "," for w in words):
                new = [t for w in words if _plain(w.parts) != "," for t in self.expand(w)]
            else:
                value = self._ps_expression(words)
                line, col = self.lexer.pos(start)
                new = None if value is None else [Token(value[0], line, col)]
        else:
            new = None
        if new is None:
            self.env.pop(self.key(name), None)
            return
        self._set(name, old + new, start, "list")


_PS_ADD = re.compile(r"\s*(?:\[void\]\s*|\$null\s*=\s*)?\$([A-Za-z_][A-Za-z0-9_]*)\.Add(?:Range)?\((.*)\)\s*$",
                     re.S | re.I)
_PS_NEW_LIST = re.compile(r"\s*(?:\[System\.Collections\.(?:ArrayList|Generic\.List\[[\w.]+\])\]::new\(\)"
                          r"|New-Object\s+(?:-TypeName\s+)?System\.Collections\.ArrayList|@\(\s*\))\s*$", re.I)


class UnresolvedText(str):
    """A variable value that holds unresolved expressions (``RUN="lora_$(date +%s)"``): uses stay unknown."""

    exprs: tuple[str, ...] = ()


def _unresolved_text(text: str, exprs: tuple[str, ...]) -> str:
    if not exprs:
        return text
    value = UnresolvedText(text)
    value.exprs = exprs
    return value


@dataclass
class _Frame:
    """An open if/loop/block: whether its current branch runs (None: decided at run time)."""

    kind: str
    taken: bool | None
    seen: bool | None          # whether an earlier branch of this if was taken
    closed: bool = False       # PowerShell: the body's "}" was seen, an else/elseif may follow

    def branch(self, cond: bool | None) -> None:
        """Move to the next elif/else branch with condition ``cond``."""
        if self.seen is True:
            self.taken = False
        elif self.seen is None:
            self.taken = None
        else:
            self.taken = cond
        if self.taken is True:
            self.seen = True
        elif self.taken is None and self.seen is False:
            self.seen = None


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _test_expression(args: list[str]) -> bool | None:
    """``test`` / ``[ ]`` / ``[[ ]]`` on known strings: emptiness, string and integer comparisons (else None)."""
    if args and args[0] == "!":
        inner = _test_expression(args[1:])
        return None if inner is None else not inner
    if not args:
        return False
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2 and args[0] in ("-n", "-z"):
        return (args[1] != "") == (args[0] == "-n")
    if len(args) == 3:
        a, op, b = args
        if op in ("==", "=", "!="):
            if any(ch in b for ch in "*?["):
                return None        # a glob pattern in [[ ]]
            return (a == b) != (op == "!=")
        if op in ("-eq", "-ne", "-gt", "-ge", "-lt", "-le"):
            try:
                x, y = int(a), int(b)
            except ValueError:
                return None
            return {"-eq": x == y, "-ne": x != y, "-gt": x > y, "-ge": x >= y, "-lt": x < y, "-le": x <= y}[op]
    return None


def _ps_truthy(value: str, kind: str) -> bool | None:
    if kind == "num":
        try:
            return float(value) != 0
        except ValueError:
            return None
    if kind == "bool":
        return value == "True"
    return value != ""     # strings (and lists) are true when not empty


def _ps_compare(left: tuple[str, str], op: str, right: tuple[str, str]) -> bool | None:
    """PowerShell comparison: converted to the LEFT operand's type; strings compare case-insensitively."""
    (a, kind), (b, _) = left, right
    if kind == "num":
        try:
            x, y = float(a), float(b)
        except ValueError:
            return None
    elif op in ("-eq", "-ne"):
        x, y = a.lower(), b.lower()  # type: ignore[assignment]
    else:
        return None
    table = {"-eq": x == y, "-ne": x != y}
    if kind == "num":
        table.update({"-gt": x > y, "-ge": x >= y, "-lt": x < y, "-le": x <= y})
    return table.get(op)


class _Fields:
    """The words one shell word expands to, built piece by piece with the size checked as it grows.

    Each field keeps the position of an array element that starts it (so ``"${ARGS[@]}"`` words point at the
    lines where the array was written) and whether it is a whole unknown element (opaque).
    """

    def __init__(self, ev: _Evaluator, offset: int, split: bool):
        self.ev, self.offset, self.split = ev, offset, split
        self.fields: list[list[str]] = [[]]
        self.pos: list[tuple[int, int] | None] = [None]
        self.opaque: list[bool] = [False]
        self.quoted: list[bool] = [False]   # a field with a quoted piece is a word even when empty ("")
        self.made = False           # a quoted or non-empty piece makes a word even when the text is empty
        self.size = 0
        self.unresolved: list[str] = []

    def _grow(self, n: int) -> None:
        self.size += n + 1
        if self.size > MAX_VALUE_CHARS or len(self.fields) > MAX_WORDS:
            self.ev.limit(max(self.size, MAX_VALUE_CHARS + 1), "a word", self.offset)

    def _new_field(self) -> None:
        self.fields.append([])
        self.pos.append(None)
        self.opaque.append(False)
        self.quoted.append(False)

    def text(self, text: str, quoted: bool) -> None:
        self._grow(len(text))
        if text:
            self.opaque[-1] = False
        self.fields[-1].append(text)
        self.quoted[-1] = self.quoted[-1] or quoted
        self.made = self.made or quoted or bool(text)

    def unknown(self, src: str) -> None:
        self.text(src, True)
        self.unresolved.append(src)

    def expansion(self, value: str, quoted: bool) -> None:
        if quoted or not self.split:
            self.text(value, quoted)
            return
        words = value.split()
        if not words:
            return
        if value[:1].isspace() and self.fields[-1]:
            self._new_field()
        self.text(words[0], False)
        for w in words[1:]:
            self._new_field()
            self.text(w, False)
        if value[-1:].isspace():
            self._new_field()

    def elements(self, elements: list[Token], quoted: bool) -> None:
        """Array elements: the first continues the current word, each other one starts a new word."""
        first = True
        for e in elements:
            pieces = e.text.split() if self.split and not quoted else [e.text]
            for piece in pieces:
                if not first:
                    self._new_field()
                starts = not any(self.fields[-1])
                self.text(piece, quoted or bool(piece))
                if starts:
                    self.pos[-1] = (e.line, e.col)
                    self.opaque[-1] = e.opaque and piece == e.text
                first = False
            self.unresolved.extend(e.unresolved)

    def result(self) -> list[tuple[str, tuple[str, ...], tuple[int, int] | None, bool]]:
        if not self.made:
            return []
        rows = [("".join(f), p, o) for f, p, o, q in zip(self.fields, self.pos, self.opaque, self.quoted, strict=True)
                if q or "".join(f) or not self.split]
        self.ev.limit(sum(len(r[0]) for r in rows), "a word", self.offset)
        return [(t, tuple(u for u in self.unresolved if u in t), p, o) for t, p, o in rows]


_SH_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\+?=)")


def safe_int_arith(expr: str, *, integer_division: bool = True) -> int | None:
    """Evaluate integer arithmetic of literals (``+ - * / %``, parentheses, unary minus) without executing
    anything; None for anything else (names, calls, huge results)."""
    tokens = re.findall(r"\d+|[-+*/%()]|\S", expr)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def atom(depth: int) -> int:
        if depth > 50:
            raise ValueError("too deep")
        tok = peek()
        if tok is None:
            raise ValueError("end")
        if tok == "(":
            take()
            v = expr_(depth + 1)
            if peek() != ")":
                raise ValueError(")")
            take()
            return v
        if tok in "-+" and len(tok) == 1:
            take()
            v = atom(depth + 1)
            return -v if tok == "-" else v
        if tok.isdigit() and len(tok) <= 18:
            take()
            return int(tok)
        raise ValueError(tok)

    def term(depth: int) -> int:
        v = atom(depth)
        while peek() in ("*", "/", "%"):
            op = take()
            r = atom(depth)
            if op == "*":
                v *= r
            elif r == 0:
                raise ValueError("division by zero")
            elif op == "/":
                v = int(v / r) if integer_division else v // r
            else:
                v = int(v - r * int(v / r))
            if abs(v) > 2**63:
                raise ValueError("overflow")
        return v

    def expr_(depth: int) -> int:
        v = term(depth)
        while peek() in ("+", "-"):
            op = take()
            r = term(depth)
            v = v + r if op == "+" else v - r
        return v

    try:
        value = expr_(0)
    except ValueError:
        return None
    return value if pos == len(tokens) else None


def evaluate_script(path: str, text: str, flavor: str | None = None) -> Script:
    """Lex and evaluate ``text`` (flavor from ``path``/content when not given); CommandSyntaxError or UserError."""
    flavor = flavor or script_flavor(path, text)
    lexer = _Lexer(text, flavor)
    commands = lexer.run()
    ev = _Evaluator(flavor, lexer, path)
    return Script(ev.run(commands), flavor, ev.env)
