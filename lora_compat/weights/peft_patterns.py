r"""PEFT's ``rank_pattern`` / ``alpha_pattern`` lookup, with PEFT's semantics and in bounded time.

PEFT (``peft.utils.other.get_pattern_key``, used by the LoRA, LoHa and LoKr tuners) gives a module named ``name``
the value of the *first* key ``k`` in the config's order for which ``re.match(rf"(.*\.)?({k})$", name)`` matches.
Python's backtracking ``re`` takes exponential time on keys such as ``((.*)*)*x``, and these configs come with
LoRAs downloaded from anywhere, so this module never runs such a key through ``re``:

* a key made only of ``[A-Za-z0-9_.]`` (a module path, what every real config holds) is looked up through a dict
  of the name's dot-boundary suffixes. Its ``.`` is still a wildcard for PEFT; it is matched exactly here because
  the module names it meets (pinned tables) have no other character where a key has a dot;
* any other key is parsed by Python's own regex parser (same syntax, same character classes as PEFT's ``re``),
  wrapped exactly as PEFT wraps it, and matched by simulating its automaton (Thompson's construction, state sets
  cached as a lazy DFA): time linear in the name, whatever the key. Features that are not regular (back-references,
  look-around, conditionals, atomic groups, possessive repeats) and inline flags are refused, as are keys longer
  than :data:`MAX_KEY_CHARS`, repeat counts that blow the automaton past :data:`MAX_STATES` states and configs with
  more than :data:`MAX_REGEX_KEYS` such keys. A refusal is a :class:`PatternError` (a ``ValueError``).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from typing import Any

# Python's own regex parser (re._parser since 3.11, sre_parse before): the same syntax PEFT's re.match sees.
try:
    _sre_parse: Any = importlib.import_module("re._parser")
    sre_constants: Any = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover - Python 3.10
    _sre_parse = importlib.import_module("sre_parse")
    sre_constants = importlib.import_module("sre_constants")

MAX_KEY_CHARS = 1000
MAX_STATES = 20_000
MAX_REGEX_KEYS = 64
#: Keys of this shape are module paths: looked up by dot-boundary suffix.
PLAIN_KEY = re.compile(r"^[A-Za-z0-9_.]+$")


class PatternError(ValueError):
    """A pattern key that cannot be matched safely (or is not a valid regular expression)."""


# --- automaton --------------------------------------------------------------------------------------------------

_CHAR, _SPLIT, _ASSERT, _MATCH = range(4)


def _category_test(cat) -> Any:
    tests = {
        sre_constants.CATEGORY_DIGIT: str.isdecimal, sre_constants.CATEGORY_NOT_DIGIT: lambda c: not c.isdecimal(),
        sre_constants.CATEGORY_SPACE: str.isspace, sre_constants.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
        sre_constants.CATEGORY_WORD: _is_word, sre_constants.CATEGORY_NOT_WORD: lambda c: not _is_word(c),
    }
    if cat not in tests:
        raise PatternError(f"character category {cat} is not supported")
    return tests[cat]


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _char_test(op, av) -> Any:
    """A predicate on one character for a LITERAL / NOT_LITERAL / ANY / IN node."""
    if op is sre_constants.LITERAL:
        ch = chr(av)
        return lambda c: c == ch
    if op is sre_constants.NOT_LITERAL:
        ch = chr(av)
        return lambda c: c != ch
    if op is sre_constants.ANY:
        return lambda c: c != "\n"
    # IN: a set of literals, ranges and categories, maybe negated
    negate = False
    literals: set[str] = set()
    ranges: list[tuple[int, int]] = []
    cats = []
    for iop, iav in av:
        if iop is sre_constants.NEGATE:
            negate = True
        elif iop is sre_constants.LITERAL:
            literals.add(chr(iav))
        elif iop is sre_constants.RANGE:
            ranges.append(iav)
        elif iop is sre_constants.CATEGORY:
            cats.append(_category_test(iav))
        else:
            raise PatternError(f"character set item {iop} is not supported")

    def test(c: str) -> bool:
        hit = c in literals or any(lo <= ord(c) <= hi for lo, hi in ranges) or any(t(c) for t in cats)
        return hit != negate
    return test


_ASSERTIONS = {"AT_BEGINNING", "AT_BEGINNING_STRING", "AT_END", "AT_END_STRING", "AT_BOUNDARY", "AT_NON_BOUNDARY"}


class _Nfa:
    """States: (_CHAR, test, next) | (_SPLIT, [next...]) | (_ASSERT, kind, next) | (_MATCH,)."""

    def __init__(self) -> None:
        self.states: list[list] = []

    def add(self, state: list) -> int:
        if len(self.states) >= MAX_STATES:
            raise PatternError(f"pattern is too large to match safely (over {MAX_STATES} automaton states)")
        self.states.append(state)
        return len(self.states) - 1

    def build(self, items: list, nxt: int) -> int:
        """States matching the node list ``items`` then continuing at ``nxt`` (built back to front)."""
        for op, av in reversed(items):
            nxt = self.node(op, av, nxt)
        return nxt

    def node(self, op, av, nxt: int) -> int:
        if op in (sre_constants.LITERAL, sre_constants.NOT_LITERAL, sre_constants.ANY, sre_constants.IN):
            return self.add([_CHAR, _char_test(op, av), nxt])
        if op is sre_constants.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            if add_flags or del_flags:
                raise PatternError("inline flags such as (?i:...) are not supported")
            return self.build(sub.data, nxt)
        if op is sre_constants.BRANCH:
            return self.add([_SPLIT, [self.build(alt.data, nxt) for alt in av[1]]])
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):  # greedy or lazy: the same yes/no answer
            lo, hi, sub = av
            unbounded = hi is sre_constants.MAXREPEAT or hi == sre_constants.MAXREPEAT
            if lo > 1000 or (not unbounded and hi > 1000):
                raise PatternError("repeat counts over 1000 are not supported")
            if unbounded:
                loop = self.add([_SPLIT, []])
                self.states[loop][1] = [self.build(sub.data, loop), nxt]
                tail = loop
            else:
                tail = nxt
                for _ in range(hi - lo):
                    tail = self.add([_SPLIT, [self.build(sub.data, tail), nxt]])
            for _ in range(lo):
                tail = self.build(sub.data, tail)
            return tail
        if op is sre_constants.AT:
            if str(av) not in _ASSERTIONS:
                raise PatternError(f"anchor {av} is not supported")
            return self.add([_ASSERT, str(av), nxt])
        names = {"GROUPREF": "back-references", "GROUPREF_EXISTS": "conditional groups",
                 "ASSERT": "look-ahead/look-behind", "ASSERT_NOT": "negative look-ahead/look-behind",
                 "ATOMIC_GROUP": "atomic groups", "POSSESSIVE_REPEAT": "possessive repeats"}
        raise PatternError(f"{names.get(str(op), str(op))} cannot be matched in bounded time; not supported")


class SafeRegex:
    """``re.match(pattern, s) is not None`` for a regular ``pattern``, in time linear in ``len(s)``."""

    def __init__(self, pattern: str) -> None:
        try:
            parsed = _sre_parse.parse(pattern, 0)
        except re.error as exc:
            raise PatternError(f"not a valid regular expression ({exc})") from None
        except (RecursionError, OverflowError):
            raise PatternError("nested too deeply to match safely") from None
        if parsed.state.flags & ~sre_constants.SRE_FLAG_UNICODE:
            raise PatternError("inline flags such as (?i) are not supported")
        nfa = _Nfa()
        match = nfa.add([_MATCH])
        try:
            self.start = nfa.build(parsed.data, match)
        except RecursionError:
            raise PatternError("nested too deeply to match safely") from None
        self.states = nfa.states
        self._closures: dict[tuple, frozenset[int]] = {}
        self._steps: dict[tuple, frozenset[int]] = {}
        self._start = frozenset((self.start,))

    def _closure(self, seeds: frozenset[int], ctx: tuple[bool, ...]) -> frozenset[int]:
        key = (seeds, ctx)
        got = self._closures.get(key)
        if got is not None:
            return got
        at_start, at_end, dollar, prev_word, next_word = ctx
        ok = {"AT_BEGINNING": at_start, "AT_BEGINNING_STRING": at_start, "AT_END": dollar, "AT_END_STRING": at_end,
              "AT_BOUNDARY": prev_word != next_word, "AT_NON_BOUNDARY": prev_word == next_word}
        seen: set[int] = set()
        stack = list(seeds)
        out = []
        states = self.states
        while stack:
            s = stack.pop()
            if s in seen:
                continue
            seen.add(s)
            st = states[s]
            kind = st[0]
            if kind == _SPLIT:
                stack.extend(st[1])
            elif kind == _ASSERT:
                if ok[st[1]]:
                    stack.append(st[2])
            else:
                out.append(s)
        got = self._closures[key] = frozenset(out)
        return got

    def match(self, s: str) -> bool:
        """True when the pattern matches at the start of ``s`` (``re.match`` semantics)."""
        n = len(s)
        states = self.states
        cur = self._start
        for i in range(n + 1):
            prev_word = i > 0 and _is_word(s[i - 1])
            next_word = i < n and _is_word(s[i])
            dollar = i == n or (i == n - 1 and s[i] == "\n")
            cur = self._closure(cur, (i == 0, i == n, dollar, prev_word, next_word))
            if not cur:
                return False
            for st in cur:
                if states[st][0] == _MATCH:
                    return True
            if i == n:
                return False
            ch = s[i]
            key = (cur, ch)
            nxt = self._steps.get(key)
            if nxt is None:
                nxt = self._steps[key] = frozenset(states[st][2] for st in cur
                                                   if states[st][0] == _CHAR and states[st][1](ch))
            cur = nxt
        return False


def peft_key_regex(key: str) -> SafeRegex:
    """The matcher PEFT uses for one pattern key: ``(.*\\.)?(key)$``."""
    if not isinstance(key, str):
        raise PatternError(f"pattern key {key!r} is not a string")
    if len(key) > MAX_KEY_CHARS:
        raise PatternError(f"pattern key of {len(key)} characters (limit {MAX_KEY_CHARS})")
    return SafeRegex(rf"(.*\.)?({key})$")


class PatternIndex:
    r"""PEFT's ``rank_pattern``/``alpha_pattern`` lookup for one config: build once, look up every module.

    The first key (in the config's order) whose ``(.*\.)?(key)$`` matches the module name wins, as in PEFT.
    Raises :class:`PatternError` for a key that cannot be matched safely.
    """

    def __init__(self, patterns: dict | None) -> None:
        self.items = list((patterns or {}).items())
        self.plain: dict[str, int] = {}
        self.regex: list[tuple[int, SafeRegex]] = []
        for i, (key, _) in enumerate(self.items):
            if isinstance(key, str) and PLAIN_KEY.match(key):
                self.plain.setdefault(key, i)
                continue
            if len(self.regex) >= MAX_REGEX_KEYS:
                raise PatternError(f"more than {MAX_REGEX_KEYS} pattern keys that are regular expressions")
            try:
                self.regex.append((i, peft_key_regex(key)))
            except PatternError as exc:
                raise PatternError(f"pattern key {str(key)[:80]!r}: {exc}") from None

    def lookup(self, name: str, default: Any = None) -> Any:
        """The value of the first key matching ``name``, else ``default``."""
        best = None
        parts = name.split(".")
        for j in range(len(parts)):
            i = self.plain.get(".".join(parts[j:]))
            if i is not None and (best is None or i < best):
                best = i
        for i, rx in self.regex:
            if best is not None and i > best:
                break
            if rx.match(name):
                best = i
                break
        return default if best is None else self.items[best][1]

    def lookup_any(self, names: Iterable[str], default: Any = None) -> Any:
        """The value for the first of ``names`` that any key matches (a module known under several paths)."""
        for n in names:
            hit = self.lookup(n, _MISSING)
            if hit is not _MISSING:
                return hit
        return default


_MISSING = object()
