"""Filesystem hazards around weights commands (#12.5, #10.9): pipes, read-only places, signals, leftovers, --force,
folders, the umask, and --verify judging rounding against the delta's scale."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lora_compat import atomic
from lora_compat.cli import main
from lora_compat.weights.reader import open_lora
from lora_compat.weights.safetensors_io import OutTensor, encode_values, write_safetensors

ROOT = Path(__file__).resolve().parent.parent
MOD = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"   # SD1: 768 -> 320


def tiny_lora(path: Path, rank: int = 2) -> Path:
    write_safetensors(path, [
        OutTensor(f"{MOD}.lora_down.weight", "F16", (rank, 768), encode_values([0.01] * rank * 768, "F16")),
        OutTensor(f"{MOD}.lora_up.weight", "F16", (320, rank), encode_values([0.02] * rank * 320, "F16")),
        OutTensor(f"{MOD}.alpha", "F16", (), encode_values([1.0], "F16"))])
    return path


def run(argv: list, capsys) -> tuple[object, str, str]:
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def child(code: str, *args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


# --- pipes and devices ------------------------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_inputs_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "x.safetensors"
    os.mkfifo(fifo)
    peft = tmp_path / "peft"
    peft.mkdir()
    os.mkfifo(peft / "adapter_config.json")
    tiny_lora(tmp_path / "w.safetensors")
    code = """
        import sys
        from lora_compat.cli import main
        try:
            main(sys.argv[1:])
        except SystemExit as e:
            sys.exit(e.code)
    """
    for argv in (["inspect", str(fifo)], ["check", str(fifo), "--target", "comfyui"],
                 ["convert", str(fifo), str(tmp_path / "o"), "--to", "peft"],
                 ["convert", str(fifo), str(tmp_path / "o.pt"), "--to", "kohya", "--allow-pickle"],
                 ["inspect", str(peft)]):
        proc = child(code, *argv)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"{argv} blocked on a FIFO")
        assert proc.returncode == 2, (argv, err)
        assert "not a regular file" in err and err.count("\n") == 1, err
    fifo_pt = tmp_path / "y.ckpt"
    os.mkfifo(fifo_pt)
    proc = child(code, "inspect", str(fifo_pt), "--allow-pickle")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "not a regular file" in err


# --- read-only places -------------------------------------------------------------------------------------------

def test_unwritable_destination_is_one_line_error(tmp_path: Path, capsys, monkeypatch) -> None:
    src = tiny_lora(tmp_path / "a.safetensors")
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    for to, dst in (("kohya", blocker / "o.safetensors"), ("peft", blocker / "p")):
        code, _, err = run(["convert", src, dst, "--to", to], capsys)
        assert code == 2 and err.count("\n") == 1 and "error: " in err, err
    # what a read-only folder does, also where the tests run as root (who may write anywhere)
    real_open, real_mkdir = os.open, os.mkdir

    def denied_open(path, *a, **k):
        if atomic.TEMP_MARK in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    def denied_mkdir(path, *a, **k):
        if atomic.TEMP_MARK in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_mkdir(path, *a, **k)
    monkeypatch.setattr(os, "open", denied_open)
    monkeypatch.setattr(os, "mkdir", denied_mkdir)
    for to, dst in (("kohya", tmp_path / "o.safetensors"), ("diffusers", tmp_path / "d.safetensors"),
                    ("peft", tmp_path / "p")):
        code, _, err = run(["convert", src, dst, "--to", to], capsys)
        assert code == 2, err
        assert err == f"error: {dst}: cannot write: permission denied\n", err
    monkeypatch.undo()
    assert entries(tmp_path) == ["a.safetensors", "file"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path: Path, capsys) -> None:
    src = tiny_lora(tmp_path / "a.safetensors")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        for to, name in (("kohya", "o.safetensors"), ("peft", "p")):
            code, _, err = run(["convert", src, ro / name, "--to", to], capsys)
            assert code == 2 and "permission denied" in err and err.count("\n") == 1
        assert entries(ro) == []
    finally:
        ro.chmod(0o755)


def test_disk_full_while_writing_is_one_line_error(tmp_path: Path, capsys, monkeypatch) -> None:
    import lora_compat.weights.safetensors_io as sio

    src = tiny_lora(tmp_path / "a.safetensors")

    def full(fd, data):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(sio, "_write_all", full)
    code, _, err = run(["convert", src, tmp_path / "o.safetensors", "--to", "kohya"], capsys)
    assert code == 2 and err == f"error: {tmp_path / 'o.safetensors'}: cannot write: no space left on device\n"
    assert entries(tmp_path) == ["a.safetensors"]


# --- signals and what they leave behind -------------------------------------------------------------------------

SLOW_WRITER = """
    import sys, time
    import lora_compat.weights.safetensors_io as sio
    real = sio._Appender.write
    def slow(self, data):
        real(self, data)
        if not getattr(sio, "_told", False):
            sio._told = True
            print("writing", flush=True)
            time.sleep(60)
    sio._Appender.write = slow
    from lora_compat.cli import main
    main(sys.argv[1:])
"""


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
@pytest.mark.parametrize("to", ["kohya", "peft"])
def test_sigterm_during_convert_cleans_up_like_ctrl_c(to: str, tmp_path: Path) -> None:
    src = tiny_lora(tmp_path / "a.safetensors")
    out = tmp_path / "out"
    out.mkdir()
    proc = child(SLOW_WRITER, "convert", str(src), str(out / "dst"), "--to", to)
    assert proc.stdout.readline() == "writing\n"
    assert any(atomic.TEMP_MARK in n for n in entries(out))   # mid-write: the temporary exists
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err.strip() == "terminated", err
    assert entries(out) == []


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_sigkill_leftovers_are_removed_by_the_next_run(tmp_path: Path, capsys) -> None:
    src = tiny_lora(tmp_path / "a.safetensors")
    out = tmp_path / "out"
    out.mkdir()
    for to, name in (("kohya", "k.safetensors"), ("peft", "p")):
        proc = child(SLOW_WRITER, "convert", str(src), str(out / name), "--to", to)
        assert proc.stdout.readline() == "writing\n"
        proc.kill()
        proc.communicate(timeout=60)
        # SIGKILL cannot be caught: this run's temporary stays (the previous run's was swept by this one)
        left = entries(out)
        assert len(left) == 1 and left[0].startswith(f".{name}.{atomic.TEMP_MARK}-"), left
    code, _, err = run(["convert", src, out / "other.safetensors", "--to", "kohya"], capsys)
    assert code == 0, err
    assert entries(out) == ["other.safetensors"]


def test_only_stale_temporaries_of_our_naming_are_removed(tmp_path: Path) -> None:
    dst = tmp_path / "x.safetensors"
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        live_tmp = atomic.temp_path(dst, pid=alive.pid)          # a concurrent run writing the same DST
        dead_tmp = atomic.temp_path(dst, pid=dead.pid)           # a killed run
        old_live = atomic.temp_path(dst, pid=alive.pid)          # untouched for two days: stale anyway
        mine = atomic.temp_path(dst)                             # this process
        parked = atomic.temp_path(tmp_path / "peft", "old", pid=dead.pid)  # killed between the two renames
        legacy_old = tmp_path / f".y.safetensors.tmp-{dead.pid}-0123abcd"
        legacy_new = tmp_path / f".z.safetensors.tmp-{dead.pid}-0123abcd"
        for p in (live_tmp, dead_tmp, old_live, mine, legacy_old, legacy_new):
            p.write_bytes(b"partial")
        parked.mkdir()
        (parked / "adapter_config.json").write_text("{}")
        foreign = [tmp_path / ".x.safetensors.tmp", tmp_path / ".hidden", tmp_path / "x.safetensors.lora-compat-1"]
        for p in foreign:
            p.write_text("not ours")
        two_days = time.time() - 2 * 86400
        os.utime(old_live, (two_days, two_days))
        os.utime(legacy_old, (two_days, two_days))
        removed = atomic.remove_stale_temps(tmp_path)
        assert sorted(removed) == sorted([dead_tmp, old_live, legacy_old, tmp_path / "peft"])
        assert (tmp_path / "peft" / "adapter_config.json").exists()     # put back, not deleted
        left = set(entries(tmp_path))
        assert {live_tmp.name, mine.name, legacy_new.name} <= left
        assert all(p.name in left for p in foreign)
    finally:
        alive.kill()
        alive.wait()


# --- --force, folders, umask ------------------------------------------------------------------------------------

def test_force_replaces_only_what_the_tool_could_have_written(tmp_path: Path, capsys) -> None:
    src = tiny_lora(tmp_path / "a.safetensors")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "me.jpg").write_bytes(b"\xff\xd8\xff")
    code, _, err = run(["convert", src, photos, "--to", "peft", "--force"], capsys)
    assert code == 2 and "not a PEFT adapter folder (it holds me.jpg)" in err
    assert entries(photos) == ["me.jpg"]
    # a PEFT folder we wrote is replaced; one with something extra in a component folder is not
    assert run(["convert", src, tmp_path / "p", "--to", "peft"], capsys)[0] == 0
    assert run(["convert", src, tmp_path / "p", "--to", "peft", "--force"], capsys)[0] == 0
    (tmp_path / "p" / "unet" / "notes.txt").write_text("mine")
    code, _, err = run(["convert", src, tmp_path / "p", "--to", "peft", "--force"], capsys)
    assert code == 2 and "unet/notes.txt" in err and (tmp_path / "p" / "unet" / "notes.txt").exists()
    # a file target: a LoRA file is replaced, a JPEG or a folder is not
    jpg = tmp_path / "b.safetensors"
    jpg.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 40)
    code, _, err = run(["convert", src, jpg, "--to", "kohya", "--force"], capsys)
    assert code == 2 and "a JPEG image" in err and jpg.read_bytes().startswith(b"\xff\xd8")
    code, _, err = run(["convert", src, photos, "--to", "kohya", "--force"], capsys)
    assert code == 2 and "end DST with /" in err
    lora = tiny_lora(tmp_path / "c.safetensors", rank=4)
    assert run(["convert", src, lora, "--to", "kohya", "--force"], capsys)[0] == 0
    assert open_lora(lora).modules[0].rank == 2


def test_dst_with_trailing_slash_is_a_folder(tmp_path: Path, capsys) -> None:
    src = tiny_lora(tmp_path / "a.safetensors")
    code, out, err = run(["convert", src, f"{tmp_path / 'out'}/", "--to", "kohya", "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["outputs"] == [str(tmp_path / "out" / "a.safetensors")]
    assert run(["convert", src, f"{tmp_path / 'out'}/", "--to", "peft"], capsys)[0] == 0
    assert entries(tmp_path / "out") == ["a", "a.safetensors"]
    assert (tmp_path / "out" / "a" / "unet" / "adapter_config.json").is_file()
    code, _, err = run(["convert", src, f"{src}/", "--to", "kohya"], capsys)
    assert code == 2 and "is a file" in err


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_outputs_honour_the_umask(tmp_path: Path, capsys) -> None:
    src = tiny_lora(tmp_path / "a.safetensors")
    old = os.umask(0o027)
    try:
        assert run(["convert", src, tmp_path / "k.safetensors", "--to", "kohya"], capsys)[0] == 0
        assert run(["convert", src, tmp_path / "p", "--to", "peft"], capsys)[0] == 0
        os.umask(0o002)
        assert run(["convert", src, tmp_path / "d.safetensors", "--to", "diffusers"], capsys)[0] == 0
    finally:
        os.umask(old)

    def mode(p: Path) -> int:
        return p.stat().st_mode & 0o777
    assert mode(tmp_path / "k.safetensors") == 0o640
    assert mode(tmp_path / "p") == 0o750 and mode(tmp_path / "p" / "unet") == 0o750
    assert mode(tmp_path / "p" / "unet" / "adapter_model.safetensors") == 0o640
    assert mode(tmp_path / "p" / "unet" / "adapter_config.json") == 0o640
    assert mode(tmp_path / "d.safetensors") == 0o664
    # a replaced file keeps its own bits
    (tmp_path / "k.safetensors").chmod(0o600)
    assert run(["convert", src, tmp_path / "k.safetensors", "--to", "kohya", "--force"], capsys)[0] == 0
    assert mode(tmp_path / "k.safetensors") == 0o600


# --- --verify ---------------------------------------------------------------------------------------------------

def cancelling_lora(path: Path) -> Path:
    """A float32 LoRA whose terms cancel: B = [C, -C], A = [D; D + 1e-3 E], so ΔW = -1e-3 C E is ~1000x smaller
    than |B||A|. Rounding the factors to fp16 exactly is then large next to max|ΔW|, small next to the scale."""
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(7)
    c = rng.standard_normal((320, 16)).astype(np.float32) * 0.05
    d = rng.standard_normal((16, 768)).astype(np.float32) * 0.05
    e = rng.standard_normal((16, 768)).astype(np.float32) * 0.05
    up = np.concatenate([c, -c], axis=1)
    down = np.concatenate([d, d + 1e-3 * e], axis=0)
    write_safetensors(path, [OutTensor(f"{MOD}.lora_down.weight", "F32", down.shape, down.tobytes()),
                             OutTensor(f"{MOD}.lora_up.weight", "F32", up.shape, up.tobytes()),
                             OutTensor(f"{MOD}.alpha", "F32", (), encode_values([8.0], "F32"))])
    return path


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_verify_judges_rounding_against_the_deltas_scale(dtype: str, tmp_path: Path, capsys) -> None:
    pytest.importorskip("torch")
    src = cancelling_lora(tmp_path / "c.safetensors")
    code, out, err = run(["convert", src, tmp_path / "h.safetensors", "--to", "kohya", "--dtype", dtype, "--verify",
                          "--format", "json"], capsys)
    assert code == 0, out + err
    v = json.loads(out)["verify"]
    assert v["ok"] and 0 < v["max_rel_error"] <= v["tolerance"]
    # the same error measured against max|ΔW| (the old rule) is far above any fp16 tolerance
    from lora_compat.weights.verify import delta_weight

    a = delta_weight(open_lora(src).modules[0])
    b = delta_weight(open_lora(tmp_path / "h.safetensors").modules[0])
    assert ((a - b).abs().max() / a.abs().max()).item() > 2e-2


def test_failed_verify_writes_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    pytest.importorskip("torch")
    import lora_compat.weights.convert as conv

    src = cancelling_lora(tmp_path / "c.safetensors")
    real = conv._effective_alpha
    monkeypatch.setattr(conv, "_effective_alpha", lambda m, bake: real(m, bake) * 1.01)  # a 1% scale bug
    for to, dst in (("kohya", tmp_path / "k.safetensors"), ("peft", tmp_path / "p")):
        code, out, err = run(["convert", src, dst, "--to", to, "--verify", "--format", "json"], capsys)
        assert code == 1, err
        rep = json.loads(out)
        assert rep["written"] is False and not rep["verify"]["ok"]
        assert "delta weight differs" in rep["verify"]["failures"][0]["reason"]
        assert f"{dst} was not written" in err
    assert entries(tmp_path) == ["c.safetensors"]
