"""Command lines: shell/batch tokenizing, finding the training invocation, and sd-scripts' argparse.

sd-scripts parses its command line with argparse (``allow_abbrev`` on). :func:`parse_sd_scripts_args`
reproduces that parser exactly — prefix abbreviations and the "ambiguous option" error, ``nargs``
lists, flags, ``choices``, the ``int_or_float`` warmup type, and argparse's error texts — from the
``x-cli`` facts in ``schemas/sd-scripts.schema.json`` (property order = sd-scripts' registration order,
which argparse uses when listing ambiguous matches). Nothing here executes or imports anything named
in a config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from lora_compat.arch.families import SCRIPT_FAMILIES
from lora_compat.config.document import CMDLINE, Document
from lora_compat.errors import UserError

# LoRA training scripts of every family (lora_compat.arch.families) -> sdxl; the family is decided by the spine
# (config/family.py) from the script name among other markers.
LORA_SCRIPTS = {script: script == "sdxl_train_network.py" for script in SCRIPT_FAMILIES}
# Other sd-scripts entry points: recognised so the refusal can say what the file trains instead.
OTHER_SCRIPTS = {
    "train_db.py": "DreamBooth full fine-tuning",
    "fine_tune.py": "full fine-tuning",
    "sdxl_train.py": "SDXL full fine-tuning",
    "train_textual_inversion.py": "textual inversion",
    "train_textual_inversion_XTI.py": "textual inversion (XTI)",
    "sdxl_train_textual_inversion.py": "SDXL textual inversion",
    "train_controlnet.py": "ControlNet training",
    "sdxl_train_control_net_lllite.py": "ControlNet-LLLite training",
    "flux_train.py": "FLUX.1 fine-tuning",
    "flux_train_control_net.py": "FLUX.1 ControlNet training",
    "sd3_train.py": "SD3 fine-tuning",
    "lumina_train.py": "Lumina 2 fine-tuning",
    "anima_train.py": "Anima fine-tuning",
    "sdxl_train_control_net.py": "SDXL ControlNet training",
    "train_control_net.py": "ControlNet training",
    "train_leco.py": "LECO training",
}

# accelerate launch options that take no value (everything else takes one).
ACCELERATE_FLAGS = frozenset({
    "--multi_gpu", "--cpu", "--use_deepspeed", "--use_fsdp", "--use_xpu", "--use_mps_device", "--tpu",
    "--quiet", "-q", "--debug", "--dynamo_use_fullgraph", "--dynamo_use_dynamic", "--no_python", "-m",
    "--module", "--same_network",
})


@dataclass(frozen=True)
class Token:
    """One shell word with the position where it starts (1-based)."""

    text: str
    line: int
    col: int


class CommandSyntaxError(ValueError):
    """A shell-syntax problem (unterminated quote) at ``line``:``col``."""

    def __init__(self, message: str, line: int, col: int):
        super().__init__(message)
        self.message, self.line, self.col = message, line, col


class ArgparseError(Exception):
    """What sd-scripts' argparse would print after ``error:`` (``token`` = where, when known)."""

    def __init__(self, message: str, token: Token | None = None):
        super().__init__(message)
        self.message = message
        self.token = token


# ------------------------------------------------------------------------------------ shell words
def is_windows_script(path: str, text: str) -> bool:
    """Batch/PowerShell quoting (backslash is a path separator, ``^``/`` ` `` continue lines)?"""
    low = path.lower()
    if low.endswith((".bat", ".cmd", ".ps1")):
        return True
    if low.endswith((".sh", ".bash", ".command")):
        return False
    return bool(re.search(r"\^\s*$", text, re.M) or re.search(r"[A-Za-z]:\\", text)
                or re.search(r"`\s*$", text, re.M))


_COMMENT_LINE = re.compile(r"^\s*(#|::|@?rem(\s|$))", re.I)


def split_commands(text: str, *, windows: bool) -> list[list[Token]]:
    """Split script text into commands (lists of words), joining continued lines.

    POSIX mode follows sh quoting (backslash escapes, ``\\``-newline continues); Windows mode keeps
    backslashes literal and continues lines ending in ``^`` (cmd) or a backtick (PowerShell).
    Comment lines (``#``, ``REM``, ``::``) and ``;``/``&&`` separators end or skip commands.
    """
    commands: list[list[Token]] = []
    current: list[Token] = []
    word: list[str] = []
    word_pos: tuple[int, int] | None = None
    quote: str | None = None
    quote_pos = (0, 0)
    lines = text.splitlines()
    ln = 0

    def end_word() -> None:
        nonlocal word, word_pos
        if word_pos is not None:
            current.append(Token("".join(word), word_pos[0], word_pos[1]))
        word, word_pos = [], None

    def end_command() -> None:
        nonlocal current
        end_word()
        if current:
            commands.append(current)
        current = []

    while ln < len(lines):
        line = lines[ln]
        lineno = ln + 1
        ln += 1
        if quote is None and not current and word_pos is None and _COMMENT_LINE.match(line):
            continue
        i = 0
        continued = False
        while i < len(line):
            ch = line[i]
            if quote is not None:
                if ch == quote:
                    quote = None
                elif ch == "\\" and quote == '"' and not windows and i + 1 < len(line) and line[i + 1] in '"\\$`':
                    word.append(line[i + 1])
                    i += 1
                else:
                    word.append(ch)
                i += 1
                continue
            rest_blank = not line[i + 1:].strip()
            if ch in " \t":
                end_word()
            elif ch in "\"'":
                if word_pos is None:
                    word_pos = (lineno, i + 1)
                quote = ch
                quote_pos = (lineno, i + 1)
            elif not windows and ch == "\\":
                if rest_blank and i + 1 >= len(line.rstrip()):
                    continued = True
                    break
                if i + 1 < len(line):
                    if word_pos is None:
                        word_pos = (lineno, i + 1)
                    word.append(line[i + 1])
                    i += 1
            elif windows and ch in "^`" and rest_blank:
                continued = True
                break
            elif windows and ch == "^" and i + 1 < len(line):
                if word_pos is None:
                    word_pos = (lineno, i + 1)
                word.append(line[i + 1])
                i += 1
            elif ch == "#" and word_pos is None and not windows:
                break  # sh comment to end of line
            elif ch in ";&|":
                end_command()
                while i + 1 < len(line) and line[i + 1] in ";&|":
                    i += 1
            else:
                if word_pos is None:
                    word_pos = (lineno, i + 1)
                word.append(ch)
            i += 1
        if quote is not None:
            word.append("\n")
            continue
        if not continued:
            end_command()
        else:
            end_word()
    if quote is not None:
        raise CommandSyntaxError(f"unterminated {quote} quote", *quote_pos)
    end_command()
    return commands


_ASSIGN = re.compile(r"^(?:set\s+|export\s+|\$env:|\$)?\"?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\"?$", re.I)
_PS_ENV_VAR = re.compile(r"\$(?:\{env:([A-Za-z_][A-Za-z0-9_]*)\}|env:([A-Za-z_][A-Za-z0-9_]*))", re.I)
_BATCH_VAR = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")
_SH_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def expand_variables(commands: list[list[Token]], *, batch: bool) -> list[list[Token]]:
    """Substitute variables assigned earlier in the same script (``set X=..``, ``X=..``, ``$X = ..``,
    PowerShell ``$env:X = ..``).

    Only literal assignments are followed; unknown variables stay as written. In batch files ``%%``
    is a literal ``%``.
    """
    env: dict[str, str] = {}
    out: list[list[Token]] = []

    def subst(text: str) -> str:
        if batch:
            text = _BATCH_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text).replace("%%", "%")
        text = _PS_ENV_VAR.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), text)
        return _SH_VAR.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), text)

    for cmd in commands:
        joined = " ".join(t.text for t in cmd)
        words = [t.text for t in cmd]
        assign = None
        if len(words) <= 3 and (words[0].lower() in ("set", "export") or "=" in words[0]
                                or (len(words) == 3 and words[1] == "=")):
            assign = _ASSIGN.match(joined)
        if assign and not any(script_name(w) in LORA_SCRIPTS for w in words):
            env[assign.group(1)] = subst(assign.group(2).strip().strip('"').strip("'"))
            continue
        out.append([Token(subst(t.text), t.line, t.col) for t in cmd])
    return out


def join_pasted_lines(commands: list[list[Token]]) -> list[list[Token]]:
    """Text files (not scripts): lines starting with ``--`` continue the training command above them.

    Command lines pasted from a GUI console or a forum post often lose their continuation characters; a
    shell would fail on them, but the intent is unambiguous.
    """
    out: list[list[Token]] = []
    for cmd in commands:
        if out and cmd[0].text.startswith("--") and any(script_name(t.text) in LORA_SCRIPTS for t in out[-1]):
            out[-1] = out[-1] + cmd
        else:
            out.append(cmd)
    return out


def script_name(word: str) -> str:
    """File name of a path written with / or \\ separators."""
    return re.split(r"[\\/]", word)[-1]


@dataclass
class Invocation:
    """The training command found in a script."""

    script: Token
    args: list[Token]
    launcher: list[Token] = field(default_factory=list)        # e.g. accelerate launch --num_cpu... python
    launcher_options: list[tuple[str, str | None, Token]] = field(default_factory=list)

    @property
    def sdxl(self) -> bool:
        return LORA_SCRIPTS.get(script_name(self.script.text), False)

    @property
    def script_name(self) -> str:
        """The training script's file name (``flux_train_network.py``)."""
        return script_name(self.script.text)

    @property
    def modelled(self) -> bool:
        """True when lora-compat reads this script's argument space (a parser of its own in the schema and its
        family's ``config`` stage supported); otherwise options train_network.py does not know are kept as
        unmodelled instead of refused."""
        from lora_compat.arch.families import CONFIG, is_supported, script_families

        name = self.script_name
        return name in MODELLED_SCRIPTS and any(is_supported(f, CONFIG) for f in script_families(name))


def find_invocation(path: str, commands: list[list[Token]]) -> Invocation:
    """The (last) command that runs a LoRA training script of sd-scripts (any family); UserError otherwise."""
    found: Invocation | None = None
    other: tuple[str, Token] | None = None
    for cmd in commands:
        for i, tok in enumerate(cmd):
            name = script_name(tok.text)
            if name in LORA_SCRIPTS:
                found = Invocation(script=tok, args=cmd[i + 1:], launcher=cmd[:i],
                                   launcher_options=_launcher_options(cmd[:i]))
                break
            if name in OTHER_SCRIPTS and other is None:
                other = (name, tok)
    if found is None:
        if other is not None:
            name, tok = other
            raise UserError(f"runs {name} ({OTHER_SCRIPTS[name]}), not LoRA training; lora-compat reads "
                            "LoRA training command lines (train_network.py, sdxl_train_network.py, "
                            "flux_train_network.py ...)", file=path, line=tok.line, col=tok.col)
        raise UserError("no LoRA training command (train_network.py, sdxl_train_network.py, flux_train_network.py "
                        "...) found in this command file", file=path)
    return found


def _launcher_options(words: list[Token]) -> list[tuple[str, str | None, Token]]:
    """``accelerate launch`` options written before the script: (name, value or None, token)."""
    opts: list[tuple[str, str | None, Token]] = []
    i = 0
    while i < len(words):
        w = words[i].text
        if w.startswith("-") and w not in ("-m",):
            if "=" in w:
                k, v = w.split("=", 1)
                opts.append((k, v, words[i]))
            elif w in ACCELERATE_FLAGS or i + 1 >= len(words) or words[i + 1].text.startswith("-"):
                opts.append((w, None, words[i]))
            else:
                nxt = words[i + 1].text
                if script_name(nxt).lower().startswith(("python", "py.exe")) or nxt.endswith((".exe",)):
                    opts.append((w, None, words[i]))
                else:
                    opts.append((w, nxt, words[i]))
                    i += 1
        i += 1
    return opts


# ------------------------------------------------------------------------------------ argparse
@dataclass(frozen=True)
class ArgSpec:
    """argparse facts of one sd-scripts option (from the schema's ``x-cli``)."""

    dest: str
    type: str                 # int | float | str | bool | int_or_float
    action: str               # store | store_true | store_false | store_const
    nargs: Any                # None | "*" | "+" | "?" | int
    choices: tuple[Any, ...] | None
    const: Any
    default: Any


#: Scripts whose whole argument space the schema models (a parser of its own); the other LoRA scripts are read
#: with train_network.py's parser plus the options of theirs the schema knows, leniently (see ParsedArgs).
MODELLED_SCRIPTS = ("train_network.py", "sdxl_train_network.py", "flux_train_network.py")


def parser_script(script: str | bool) -> str:
    """The script whose argparse parser to emulate: ``True``/``False`` are the legacy ``sdxl`` flag."""
    if isinstance(script, bool):
        return "sdxl_train_network.py" if script else "train_network.py"
    return script


@lru_cache(maxsize=8)
def argparse_table(script: str | bool = "train_network.py") -> dict[str, ArgSpec]:
    """Option string -> ArgSpec of ``script``'s parser in its registration order (``--help`` first, as argparse
    adds it). Abbreviations are per script: ``--clip`` is ``--clip_skip`` for train_network.py but ambiguous
    (``clip_skip``, ``clip_l``) for flux_train_network.py. ``script`` may be the legacy ``sdxl`` bool."""
    from lora_compat.resources import load_schema

    script = parser_script(script)
    props = load_schema("sd-scripts.schema.json").get("properties", {})
    table: dict[str, ArgSpec] = {"--help": ArgSpec("help", "bool", "help", None, None, None, None)}
    for name, spec in props.items():
        cli = spec.get("x-cli")
        if not cli or spec.get("x-pseudo"):
            continue
        if spec.get("x-scripts") and script not in spec["x-scripts"]:
            continue
        choices = cli.get("choices")
        table[f"--{name}"] = ArgSpec(
            dest=name, type=cli.get("type") or "str", action=cli.get("action") or "store",
            nargs=cli.get("nargs"), choices=tuple(choices) if choices is not None else None,
            const=cli.get("const"), default=spec.get("default"))
    return table


def argparse_defaults(script: str | bool = "train_network.py") -> dict[str, Any]:
    """Every option's value when not given (``parser.parse_args([])``) for ``script`` (or the legacy sdxl bool)."""
    return {s.dest: s.default for s in argparse_table(script).values() if s.action != "help"}


_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


@dataclass
class GivenOption:
    """One option occurrence on the command line."""

    dest: str
    written: str             # the option string as written (may be an abbreviation)
    raw: list[str]           # value words
    value: Any               # converted value
    token: Token


@dataclass
class ParsedArgs:
    given: list[GivenOption]
    # options the table does not know, kept (not refused) for scripts whose argument space lora-compat does not
    # model yet (flux_train_network.py ...): dest = the name without dashes, value = its words (True for none)
    unmodelled: list[GivenOption] = field(default_factory=list)

    def values(self) -> dict[str, Any]:
        """dest -> converted value, last occurrence wins (as argparse)."""
        return {g.dest: g.value for g in self.given}


def _convert(spec: ArgSpec, option: str, raw: str, tok: Token) -> Any:
    kind = spec.type
    if kind == "int":
        try:
            value: Any = int(raw)
        except ValueError:
            raise ArgparseError(f"argument {option}: invalid int value: {raw!r}", tok) from None
    elif kind == "float":
        try:
            value = float(raw)
        except ValueError:
            raise ArgparseError(f"argument {option}: invalid float value: {raw!r}", tok) from None
    elif kind == "int_or_float":
        value = int_or_float(raw, option, tok)
    else:
        value = raw
    if spec.choices is not None and value not in spec.choices:
        choices = ", ".join(repr(c) for c in spec.choices)
        raise ArgparseError(f"argument {option}: invalid choice: {value!r} (choose from {choices})", tok)
    return value


def int_or_float(raw: str, option: str = "", tok: Token | None = None) -> int | float:
    """sd-scripts' ``int_or_float`` argparse type: ``"10%"`` -> 0.1, ``< 1`` -> float ratio, else int steps."""
    if raw.endswith("%"):
        try:
            return float(raw[:-1]) / 100.0
        except ValueError:
            raise ArgparseError(f"argument {option}: Value '{raw}' is not a valid percentage", tok) from None
    try:
        f = float(raw)
        if f >= 1:
            return int(raw)
        return f
    except ValueError:
        raise ArgparseError(f"argument {option}: '{raw}' is not an int or float", tok) from None


def _classify(word: str, table: dict[str, ArgSpec]) -> tuple[str, str | None, str | None] | None:
    """argparse ``_parse_optional``: None for a value word, else (option string or '', explicit arg, written).

    '' as option string = an unknown option (goes to "unrecognized arguments").
    """
    if not word or word[0] != "-":
        return None
    if word in table:
        return word, None, word
    if len(word) == 1:
        return None
    explicit = None
    opt = word
    if "=" in word:
        opt, explicit = word.split("=", 1)
        if opt in table:
            return opt, explicit, opt
    if word.startswith("--"):
        prefix = opt
        matches = [o for o in table if o.startswith(prefix)]
    else:
        short, prefix = word[:2], word
        matches = [o for o in table if o == short or o.startswith(prefix)]
    if len(matches) > 1:
        raise ArgparseError(f"ambiguous option: {opt} could match {', '.join(matches)}")
    if len(matches) == 1:
        return matches[0], explicit, opt
    if _NEGATIVE_NUMBER.match(word):
        return None
    if " " in word:
        return None
    return "", None, word


def parse_sd_scripts_args(words: list[Token], *, sdxl: bool = False, script: str | None = None,
                          lenient: bool = False) -> ParsedArgs:
    """Parse words exactly as ``script``'s argparse would (default: train_network.py, or sdxl_train_network.py with
    ``sdxl``); ArgparseError with argparse's message otherwise.

    ``lenient``: an option the table does not know (another script's argument space) and the value words after it
    go to :attr:`ParsedArgs.unmodelled` instead of argparse's "unrecognized arguments".
    """
    table = argparse_table(script if script is not None else sdxl)
    kinds: list[tuple[str, str | None, str | None] | None] = []
    for k, w in enumerate(words):
        if w.text == "--":
            # argparse: "--" ends the options; it and every word after it are unrecognized (no positionals)
            kinds += [("", None, x.text) for x in words[k:]]
            break
        try:
            kinds.append(_classify(w.text, table))
        except ArgparseError as exc:
            raise ArgparseError(exc.message, w) from None
    given: list[GivenOption] = []
    unmodelled: list[GivenOption] = []
    extras: list[str] = []
    i = 0
    while i < len(words):
        kind = kinds[i]
        tok = words[i]
        if kind is None:
            extras.append(tok.text)
            i += 1
            continue
        opt, explicit, written = kind
        if opt == "":
            if lenient and tok.text.startswith("--") and len(tok.text) > 2:
                name, _, inline = tok.text[2:].partition("=")
                j = i + 1
                while not inline and j < len(words) and kinds[j] is None:
                    j += 1
                words_of = [inline] if inline else [w.text for w in words[i + 1:j]]
                unmodelled.append(GivenOption(name, tok.text.split("=", 1)[0], words_of,
                                              (words_of[0] if len(words_of) == 1 else words_of) if words_of else True,
                                              tok))
                i = j if not inline else i + 1
                continue
            extras.append(tok.text)
            i += 1
            continue
        spec = table[opt]
        if spec.action == "help":
            raise ArgparseError("--help is not a training option (it prints sd-scripts' usage and exits)", tok)
        if explicit is not None:
            if spec.action in ("store_true", "store_false", "store_const"):
                raise ArgparseError(f"argument {opt}: ignored explicit argument {explicit!r}", tok)
            raw = [explicit]
            i += 1
        else:
            j = i + 1
            while j < len(words) and kinds[j] is None:
                j += 1
            avail = words[i + 1:j]
            if spec.action in ("store_true", "store_false", "store_const"):
                raw = []
            elif spec.nargs is None:
                if not avail:
                    raise ArgparseError(f"argument {opt}: expected one argument", tok)
                raw = [avail[0].text]
            elif spec.nargs == "?":
                raw = [avail[0].text] if avail else []
            elif spec.nargs == "*":
                raw = [a.text for a in avail]
            elif spec.nargs == "+":
                if not avail:
                    raise ArgparseError(f"argument {opt}: expected at least one argument", tok)
                raw = [a.text for a in avail]
            else:
                n = int(spec.nargs)
                if len(avail) < n:
                    raise ArgparseError(f"argument {opt}: expected {n} arguments", tok)
                raw = [a.text for a in avail[:n]]
            i += 1 + len(raw)
        if spec.action == "store_true":
            value: Any = True
        elif spec.action == "store_false":
            value = False
        elif spec.action == "store_const":
            value = spec.const
        elif spec.nargs in ("*", "+") or isinstance(spec.nargs, int):
            value = [_convert(spec, opt, r, tok) for r in raw]
        elif spec.nargs == "?" and not raw:
            value = spec.const
        else:
            value = _convert(spec, opt, raw[0], tok)
        given.append(GivenOption(spec.dest, written, raw, value, tok))
    if extras:
        first = next(w for w, k in zip(words, kinds) if k is None or k[0] == "")
        raise ArgparseError(f"unrecognized arguments: {' '.join(extras)}", first)
    return ParsedArgs(given, unmodelled)


# ------------------------------------------------------------------------------------ documents
def parse_command_file(path: str, text: str) -> Document:
    """Parse a shell/batch/text file holding a training command into a :class:`Document`.

    ``data`` = ``[(dest, raw value words, line), ...]``; ``positions`` = ``{"--dest": (line, col)}``;
    ``meta`` = ``script``, ``sdxl``, ``parsed`` (:class:`ParsedArgs`), ``launcher``,
    ``launcher_options`` [(name, value, line)].
    """
    windows = is_windows_script(path, text)
    try:
        commands = split_commands(text, windows=windows)
    except CommandSyntaxError as exc:
        raise UserError(f"cannot split command line: {exc.message}", file=path, line=exc.line,
                        col=exc.col) from None
    commands = expand_variables(commands, batch=path.lower().endswith((".bat", ".cmd")))
    if not path.lower().endswith((".sh", ".bash", ".bat", ".cmd", ".ps1", ".command")):
        commands = join_pasted_lines(commands)
    inv = find_invocation(path, commands)
    try:
        modelled = inv.modelled
        parsed = parse_sd_scripts_args(inv.args, script=inv.script_name if modelled else "train_network.py",
                                       lenient=not modelled)
    except ArgparseError as exc:
        tok = exc.token
        raise UserError(f"sd-scripts would refuse this command line: {exc.message}", file=path,
                        line=tok.line if tok else None, col=tok.col if tok else None) from None
    return command_document(path, text, inv, parsed)


def command_document(path: str, text: str, inv: Invocation, parsed: ParsedArgs) -> Document:
    """Build the Document of an already parsed invocation."""
    data = [(g.dest, g.raw, g.token.line) for g in parsed.given]
    positions = {f"--{g.dest}": (g.token.line, g.token.col) for g in parsed.given}
    meta = {
        "script": script_name(inv.script.text),
        "script_pos": (inv.script.line, inv.script.col),
        "sdxl": inv.sdxl,
        "parsed": parsed,
        "launcher": [t.text for t in inv.launcher],
        "launcher_options": [(k, v, t.line, t.col) for k, v, t in inv.launcher_options],
    }
    return Document(path=path, text=text, fmt=CMDLINE, data=data, positions=positions, meta=meta)
