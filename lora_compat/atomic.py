"""Atomic outputs: a reader never sees a half-written file or folder, and a failure leaves nothing behind.

Every command that writes (migrate, lint --fix, convert, train, docs generators) goes through here. The protocol:

* The output is built in a temporary sibling in the destination folder, named
  ``.<name>.lora-compat-<host>-<pid>-<random>.tmp``, then renamed into place with ``os.replace``.
* Permission bits: a destination that already exists keeps its own; a new file is created with 0o666 and a new
  folder with 0o777, both reduced by the process umask, as ``open()``/``mkdir()`` would (never ``mkstemp``'s
  0600/0700).
* A failure of the writer's own steps (permission denied, read-only file system, disk full, a parent that is a
  file) is a :class:`~lora_compat.errors.UserError` naming the destination: one line, no traceback.
* SIGTERM during a write raises :class:`Terminated` (a ``KeyboardInterrupt``), so the temporary output is removed
  exactly as on Ctrl-C. A second SIGTERM kills at once.
* SIGKILL cannot be caught. The next write into the same folder removes temporary entries of *our* naming whose
  writer is gone: same host and the process id no longer runs, or unchanged for a day (another machine writing to
  a shared folder). A live writer (this one, a concurrent run writing the same destination) is never touched.
  A replaced folder parked as ``.<name>.lora-compat-….old`` whose destination is missing (killed between the two
  renames) is put back instead of deleted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from lora_compat.errors import UserError

TEMP_MARK = "lora-compat"
#: Temporary entries untouched for this long are stale whatever their host and process id say.
STALE_SECONDS = 24 * 3600
#: Temporaries of the safetensors writer before this naming (``.<name>.tmp-<pid>-<8 hex>``): no host in the name,
#: so they must also be this old (a live writer on another machine keeps touching its file).
LEGACY_STALE_SECONDS = 3600
_NAME_KEEP = 180  # longest destination name kept whole in a temp name (NAME_MAX is 255 on most file systems)

_TEMP_NAME = re.compile(rf"^\.(?P<name>.+)\.{TEMP_MARK}-(?P<host>[0-9a-f]{{8}})-(?P<pid>[0-9]+)-[0-9a-f]{{8}}"
                        r"\.(?P<kind>tmp|old)$", re.DOTALL)
_LEGACY_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>[0-9]+)-[0-9a-f]{8}$", re.DOTALL)
# errno values that, raised while an output is being written, are about the output (not an input being read)
_WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _host_tag() -> str:
    try:
        node = os.uname().nodename
    except AttributeError:  # Windows
        node = os.environ.get("COMPUTERNAME", "")
    return format(zlib.crc32(node.encode("utf-8", "replace")), "08x")


_HOST = _host_tag()


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception while an output is written so that cleanup runs as for Ctrl-C."""


def _on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM terminates at once
    raise Terminated()


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While the body runs, SIGTERM raises :class:`Terminated` (main thread only, and only where SIGTERM has its
    default action: a handler someone else installed is left alone). The previous action is restored after.
    The CLI wraps every command in it; every atomic write does too (for library callers)."""
    installed = False
    with contextlib.suppress(ValueError, OSError, AttributeError):  # not the main thread, or no SIGTERM here
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _on_sigterm)
            installed = True
    try:
        yield
    finally:
        if installed:
            with contextlib.suppress(ValueError, OSError):
                if signal.getsignal(signal.SIGTERM) is _on_sigterm:
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def _guarded(dst: Path) -> Iterator[None]:
    """SIGTERM raises while the body runs; stale temps in the destination folder are swept first."""
    with sigterm_raises():
        _sweep_once(dst.parent)
        yield


def temp_path(dst: str | os.PathLike[str], kind: str = "tmp", *, pid: int | None = None) -> Path:
    """A fresh temporary sibling of ``dst`` in our naming (``kind`` ``tmp`` or ``old``; ``pid``: this process)."""
    dst = Path(dst)
    pid = os.getpid() if pid is None else pid
    return dst.parent / f".{dst.name[:_NAME_KEEP]}.{TEMP_MARK}-{_HOST}-{pid}-{os.urandom(4).hex()}.{kind}"


def _write_error(dst: Path, exc: OSError) -> UserError:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return UserError(f"cannot write: {reason[:1].lower()}{reason[1:]}", file=str(dst))


def _prepare_parent(dst: Path) -> None:
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError("cannot write: a parent of this path is a file, not a folder", file=str(dst)) from None
    except OSError as exc:
        raise _write_error(dst, exc) from None


def _existing_mode(dst: Path) -> int | None:
    try:
        st = os.stat(dst)
    except OSError:
        return None
    return st.st_mode & 0o7777


def _translate_body_error(dst: Path, tmp: Path, exc: BaseException) -> BaseException:
    """An OSError from the body that is about the output becomes a one-line UserError; others pass unchanged."""
    if isinstance(exc, OSError) and not isinstance(exc, UserError):
        about_output = exc.errno in _WRITE_ERRNOS or (
            exc.filename is not None and str(exc.filename).startswith(str(tmp)))
        if about_output:
            return _write_error(dst, exc)
    return exc


@contextlib.contextmanager
def staged_file(path: str | os.PathLike[str], *, mode: int | None = None, durable: bool = True) -> Iterator[Path]:
    """Yield the path of an empty temporary file beside ``path``; on success it replaces ``path`` atomically, on
    any failure (exceptions, Ctrl-C, SIGTERM) it is removed.

    For writers that work on paths or raw descriptors (the safetensors copier). ``mode`` sets the permission bits
    of the result (default: those of an existing ``path``, else 0o666 minus the umask). ``durable`` fsyncs before
    the rename (skip it for caches and for big outputs where ``cp`` does not sync either: fsync costs ~1 ms/MB).
    """
    dst = Path(path)
    with _guarded(dst):
        _prepare_parent(dst)
        tmp = temp_path(dst)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666))
        except OSError as exc:
            raise _write_error(dst, exc) from None
        try:
            try:
                yield tmp
            except BaseException as exc:
                translated = _translate_body_error(dst, tmp, exc)
                if translated is not exc:
                    raise translated from None
                raise
            try:
                if durable:
                    fd = os.open(tmp, os.O_RDWR | getattr(os, "O_BINARY", 0))
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                keep = mode if mode is not None else _existing_mode(dst)
                if keep is not None:
                    os.chmod(tmp, keep)
                os.replace(tmp, dst)
            except IsADirectoryError:
                raise UserError("cannot write: is a folder", file=str(dst)) from None
            except OSError as exc:
                raise _write_error(dst, exc) from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], *, mode: int | None = None,
                  durable: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary file handle; on success the content replaces ``path`` atomically, on error it vanishes.

    ``mode`` sets the permission bits of the result (default: those of an existing ``path``, else 0o666 minus the
    umask). ``durable`` fsyncs before the rename (skip it for caches that can be rebuilt).
    """
    with staged_file(path, mode=mode, durable=False) as tmp, open(tmp, "wb") as fh:
        yield fh
        fh.flush()
        if durable:
            os.fsync(fh.fileno())


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Atomically write ``data`` to ``path``."""
    with atomic_writer(path) as fh:
        fh.write(data)


def write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Atomically write ``text`` to ``path`` (newlines written as given)."""
    write_bytes(path, text.encode(encoding))


def _remove_tree(p: Path) -> None:
    import shutil  # lazily: most commands never replace a folder

    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            p.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it is renamed to ``path``.

    With ``replace`` an existing ``path`` is swapped out only after the new folder is complete (the caller decides
    whether that ``path`` may be replaced). Without it an existing ``path`` is an error and stays untouched.
    """
    dst = Path(path)
    with _guarded(dst):
        _prepare_parent(dst)
        tmp = temp_path(dst)
        try:
            os.mkdir(tmp, 0o777)
        except OSError as exc:
            raise _write_error(dst, exc) from None
        try:
            try:
                yield tmp
            except BaseException as exc:
                translated = _translate_body_error(dst, tmp, exc)
                if translated is not exc:
                    raise translated from None
                raise
            try:
                _commit_dir(tmp, dst, replace)
            except OSError as exc:
                raise _write_error(dst, exc) from None
        except BaseException:
            _remove_tree(tmp)
            raise


def _commit_dir(tmp: Path, dst: Path, replace: bool) -> None:
    if not os.path.lexists(dst):
        os.replace(tmp, dst)
        return
    if not replace:
        raise UserError("already exists", file=str(dst))
    old = temp_path(dst, "old")
    moved = False
    try:
        os.replace(dst, old)
        moved = True
        os.replace(tmp, dst)
    except BaseException:
        if moved and not os.path.lexists(dst):
            os.replace(old, dst)
        raise
    _remove_tree(old)


# --- stale temporaries ----------------------------------------------------------------------------------------------

_swept: set[str] = set()


def _sweep_once(folder: Path) -> None:
    key = os.path.abspath(folder)
    if key in _swept:
        return
    _swept.add(key)
    remove_stale_temps(folder)


def _pid_gone(pid: int) -> bool:
    """True only when ``pid`` is certainly not running on this machine."""
    if pid == os.getpid() or pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there; rely on the age rule
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: alive, another user's
        return False
    return False


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary entries of our naming in ``folder`` whose writer is gone; put back a parked ``.old``
    folder whose destination is missing. Returns the paths removed or restored. Never follows symlinks, never
    touches names that are not ours, never a live writer's (see the module docstring)."""
    folder = Path(folder)
    done: list[Path] = []
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(".") and (
            f".{TEMP_MARK}-" in e.name or ".tmp-" in e.name)]
    except OSError:
        return done
    now = time.time()
    for e in entries:
        m = _TEMP_NAME.match(e.name)
        legacy = None if m else _LEGACY_TEMP_NAME.match(e.name)
        if m is None and legacy is None:
            continue
        try:
            if e.is_symlink():
                continue
            age = now - e.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if m is not None:
            stale = age > STALE_SECONDS or (m["host"] == _HOST and _pid_gone(int(m["pid"])))
            kind, name = m["kind"], m["name"]
        elif legacy is not None:
            stale = age > LEGACY_STALE_SECONDS and _pid_gone(int(legacy["pid"]))
            kind, name = "tmp", legacy["name"]
        if not stale:
            continue
        path = folder / e.name
        if kind == "old":
            if len(name) >= _NAME_KEEP:
                continue  # the name was shortened: the destination cannot be known, keep the data
            dst = folder / name
            if not os.path.lexists(dst):
                with contextlib.suppress(OSError):
                    os.replace(path, dst)
                    done.append(dst)
                continue
        _remove_tree(path)
        done.append(path)
    return done
