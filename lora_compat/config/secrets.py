"""Credentials that may appear in configs. They are flagged by lint and never written to any output.

One mechanism keeps them in: :func:`scrub` is applied to every string that leaves the process — the CLI's
stdout and stderr (:func:`redacting_output`, installed once by ``lora_compat.cli.main``) and every file the
tool writes from a config (migrate outputs, ``lint --fix``). It replaces

- every credential value of the configs loaded in this run (:func:`remember`, called by ``load_config``),
  in plain and JSON-escaped form, and
- whatever follows a credential-named option or key in text: ``--hf_token=VALUE``, ``--wandb_api_key VALUE``,
  ``"huggingface_token": "VALUE"``, ``wandb_api_key = 'VALUE'`` — so a credential nobody declared (an unknown
  option in an argparse error, a duplicate inside the GUI's additional_parameters) is caught too.

Data builders still blank credential values by key (:func:`redact`) so JSON stays well-typed; the scrub is
the guarantee.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lora_compat.config.model import CanonicalConfig

# Canonical / legacy key names that hold credentials (matched case-insensitively on the last path part).
SECRET_KEYS = frozenset({
    "wandb_api_key", "huggingface_token", "hf_token", "huggingface_repo_token", "api_key", "token",
    "access_token", "auth_token", "secret", "password", "civitai_token", "civitai_api_key",
})
# A credential word at the end of the key, preceded by a service/credential word for "token" so that
# option names such as ``num_vectors_per_token`` or ``max_token_length`` are not taken for secrets.
_SECRET_RE = re.compile(
    r"(^|_)(api_?key|secret|secret_key|password|passwd"
    r"|(hf|huggingface|wandb|civitai|auth|access|api|bearer|github|hub|repo)_token)$",
    re.I,
)
REDACTED = "***REDACTED***"


@lru_cache(maxsize=65536)
def is_secret_key(key: str) -> bool:
    """True when a key (any dialect, any path) names a credential."""
    last = re.split(r"[.\[\]]", key.strip("-"))
    last_part = [p for p in last if p][-1] if any(last) else key
    last_part = last_part.lower()
    if last_part in SECRET_KEYS:
        return True
    return bool(_SECRET_RE.search(last_part))


def redact(key: str, value: Any) -> Any:
    """The value to show for ``key``: REDACTED for credentials that are set, else the value."""
    if value not in (None, "") and is_secret_key(key):
        return REDACTED
    return value


def redact_words(words: list[str]) -> list[str]:
    """Command-line words with the value of every credential option redacted (``--wandb_api_key KEY`` and
    ``--hf_token=KEY`` forms), for messages that quote a command line."""
    out: list[str] = []
    hide_next = False
    for w in words:
        if hide_next and not w.startswith("--"):
            out.append(REDACTED)
            hide_next = False
            continue
        hide_next = False
        name, eq, value = w[2:].partition("=") if w.startswith("--") else ("", "", "")
        if name and is_secret_key(name):
            if eq:
                out.append(f"--{name}={REDACTED if value else ''}")
                continue
            hide_next = True
        out.append(w)
    return out


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """Replace every credential value found in ``text`` (defence in depth: no output ever shows one, even where
    a value travels inside another string, e.g. a kohya_ss additional_parameters line)."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 4 and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def iter_secret_values(cfg: CanonicalConfig) -> Iterator[str]:
    """Every credential value in a loaded config: options, unknown and front-end-only keys, invalid values."""
    for name, s in cfg.options.items():
        if is_secret_key(name):
            # an origin's raw value is the credential only when its key is a credential key; a carrier such as
            # the GUI's additional_parameters line keeps its other words (the credential inside is caught by
            # the option pattern of scrub)
            raws = [o.raw for o in s.prov.origins if not o.key or is_secret_key(o.key)]
            for v in (s.value, *raws):
                if isinstance(v, str) and v:
                    yield v
    for k in list(cfg.unknown_keys) + list(cfg.frontend_only):
        if is_secret_key(k.key) and isinstance(k.value, str) and k.value:
            yield k.value
    for inv in cfg.invalid:
        if (is_secret_key(inv.option) or is_secret_key(inv.origin.key)) and isinstance(inv.value, str) and inv.value:
            yield inv.value
    for origin, _why in cfg.consumed:
        if is_secret_key(origin.key) and isinstance(origin.raw, str) and origin.raw:
            yield origin.raw


# ---------------------------------------------------------------------------------------------- scrub
_KNOWN: set[str] = set()     # credential values seen in this run (load_config remembers them)

# a credential-named option or key followed by its value, in command-line, JSON, TOML or message text. A value is
# quoted ("..." / '...' / \"...\" inside a JSON string) or a bare word that stops before quotes, backslashes
# (JSON escapes), commas and brackets, so a replacement never breaks the JSON or TOML around it.
_VALUE = r"""(?P<value>\\"(?:[^"\\\n]|\\[^"\n])*\\"|"[^"\n]*"|'[^'\n]*'|[^\s"'\\,\[\]{}]+)"""
# A name starts only where a name cannot continue (the look-behinds): a match attempt at every letter of a long
# word would make the scan quadratic (a 200 KB value took seconds)
# word, and only names ending in a credential word are candidates (is_secret_key decides), so ordinary text such
# as "a=b a=b ..." costs no callback per pair.
_CREDENTIAL_NAME = (r"[A-Za-z][A-Za-z0-9_.-]*(?![A-Za-z0-9_.-])"
                    r"(?:(?<=key)|(?<=secret)|(?<=passwd)|(?<=password)|(?<=token))")
_OPTION_VALUE = re.compile(r"(?<![A-Za-z0-9_.-])(?P<name>--?" + _CREDENTIAL_NAME + r")(?P<sep>=|[ \t]+)" + _VALUE,
                           re.I)
_KEY_VALUE = re.compile(r"(?<![A-Za-z0-9_.-])(?P<q>[\"']?)(?P<name>" + _CREDENTIAL_NAME + r")(?P=q)"
                        r"(?P<sep>[ \t]*[:=][ \t]*)" + _VALUE, re.I)
_NOT_A_VALUE = {v.lower() for v in ("", '""', "''", '\\"\\"', "null", "none", "true", "false", REDACTED,
                                     f'"{REDACTED}"', f"'{REDACTED}'", f'\\"{REDACTED}\\"')}
_SURROGATE = re.compile("[\ud800-\udfff]")


def remember(values: Iterable[str]) -> None:
    """Add credential values to the set every later :func:`scrub` removes (for the rest of this run)."""
    for v in values:
        if isinstance(v, str) and len(v) >= 4:
            _KNOWN.add(v)


def forget_all() -> None:
    """Start a new run (the CLI calls it per invocation; in-process callers between unrelated runs)."""
    _KNOWN.clear()


def _mask(m: re.Match, *, option: bool) -> str:
    name, value = m.group("name"), m.group("value")
    if not is_secret_key(name) or value.lower() in _NOT_A_VALUE or (option and value.startswith("-")):
        return m.group(0)
    if value.startswith('\\"'):
        quote = '\\"'
    else:
        quote = value[0] if value[:1] in "\"'" and len(value) > 1 and value[-1] == value[0] else ""
    return m.group(0)[:m.start("value") - m.start(0)] + f"{quote}{REDACTED}{quote}"


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known credential value (:func:`remember` and ``secrets``) and every value written
    after a credential-named option/key replaced by REDACTED; lone surrogates (undecodable file names, JSON
    escapes) become U+FFFD so the text always encodes as UTF-8."""
    if not text:
        return text
    known = set(_KNOWN)
    known.update(v for v in secrets if isinstance(v, str) and len(v) >= 4)
    if known:
        for v in sorted(known, key=len, reverse=True):
            escaped = json.dumps(v, ensure_ascii=False)[1:-1]
            for form in {v, escaped}:
                if form in text:
                    text = text.replace(form, REDACTED)
    if "-" in text:
        text = _OPTION_VALUE.sub(lambda m: _mask(m, option=True), text)
    if "=" in text or ":" in text:
        text = _KEY_VALUE.sub(lambda m: _mask(m, option=False), text)
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    return text


class RedactingWriter(io.TextIOBase):
    """A text stream that scrubs everything written to it before passing it on (stdout/stderr of the CLI)."""

    def __init__(self, stream: Any):
        super().__init__()
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(scrub(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return bool(getattr(self._stream, "isatty", lambda: False)())

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._stream, "errors", None)

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:   # anything else (buffer, mode, name ...) of the real stream
        return getattr(self._stream, name)


@contextlib.contextmanager
def redacting_output() -> Iterator[None]:
    """Scrub everything written to stdout and stderr inside the block (a fresh set of known credentials)."""
    forget_all()
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingWriter(old_out), RedactingWriter(old_err)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        sys.stdout, sys.stderr = old_out, old_err
        forget_all()


def redact_strings(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with :func:`redact_text` applied to every string."""
    secrets = list(secrets)
    if not secrets:
        return value
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, list):
        return [redact_strings(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: redact_strings(v, secrets) for k, v in value.items()}
    return value

