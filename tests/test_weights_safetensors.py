"""Streaming safetensors reader/writer without torch: layout, casts, hashes, atomic output, light imports."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from lora_compat.errors import UserError
from lora_compat.weights.safetensors_io import (
    ByteRange,
    CastRange,
    OutTensor,
    cast_bytes,
    decode_values,
    encode_values,
    read_header,
    sd_scripts_hashes,
    write_safetensors,
)

ROOT = Path(__file__).resolve().parent.parent


def test_canonical_layout_matches_the_safetensors_library(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    stnp = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(0)
    arrays = {"b.lora_up.weight": rng.standard_normal((3, 4)).astype(np.float16),
              "a.alpha": np.array(3.0, np.float32), "ü.weight": np.arange(5, dtype=np.int64),
              "z": rng.standard_normal(7).astype(np.float64), "flag": np.array([True, False])}
    ref = tmp_path / "ref.safetensors"
    stnp.save_file(arrays, str(ref), metadata={"k": "vé"})
    src = read_header(ref)
    assert src.metadata == {"k": "vé"}
    outs = [OutTensor(e.name, e.dtype, e.shape, ByteRange(src.path, e.start, e.nbytes)) for e in src.tensors.values()]
    ours = tmp_path / "ours.safetensors"
    write_safetensors(ours, outs, {"k": "vé"})
    a, b = ref.read_bytes(), ours.read_bytes()
    # same header length and same data section (header JSON equal as data: metadata order may differ)
    assert a[:8] == b[:8] and a[8 + struct.unpack("<Q", a[:8])[0]:] == b[8 + struct.unpack("<Q", b[:8])[0]:]
    ha, hb = json.loads(a[8:8 + struct.unpack("<Q", a[:8])[0]]), json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
    assert ha == hb
    loaded = stnp.load_file(str(ours))
    for k, v in arrays.items():
        assert loaded[k].dtype == v.dtype and loaded[k].tobytes() == v.tobytes()
    assert decode_values(src.read_bytes("a.alpha"), "F32") == [3.0] and src.read_scalar("a.alpha") == 3.0


@pytest.mark.parametrize("src,dst", [("F32", "F16"), ("F32", "BF16"), ("F16", "F32"), ("BF16", "F32"),
                                     ("F16", "BF16"), ("BF16", "F16")])
def test_casts_round_like_torch(src: str, dst: str) -> None:
    torch = pytest.importorskip("torch")
    dt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(4000, generator=g) * 10 ** torch.randint(-8, 6, (4000,), generator=g),
                   torch.tensor([0.0, -0.0, 65504.0, 65520.0, 1e30, -1e30, float("inf"), float("-inf"), 1e-40])])
    x = x.to(dt[src])
    raw = x.contiguous().view(torch.uint8).numpy().tobytes()
    got = torch.frombuffer(bytearray(cast_bytes(raw, src, dst)), dtype=dt[dst])
    assert torch.equal(got, x.to(dt[dst]))
    # the pure-Python path (no numpy) gives the same bytes
    import builtins

    import lora_compat.weights.safetensors_io as sio

    real_import = builtins.__import__

    def no_numpy(name, *a, **k):
        if name == "numpy":
            raise ImportError("blocked")
        return real_import(name, *a, **k)

    builtins.__import__ = no_numpy
    try:
        pure = sio.cast_bytes(raw, src, dst)
    finally:
        builtins.__import__ = real_import
    assert pure == cast_bytes(raw, src, dst)


def test_scaled_cast_is_one_rounding(tmp_path: Path) -> None:
    vals = [0.1, -3.5, 1e-3, 2.0]
    raw = encode_values(vals, "F32")
    out = decode_values(cast_bytes(raw, "F32", "F32", factor=0.25), "F32")
    assert out == [struct.unpack("<f", struct.pack("<f", v))[0] * 0.25 for v in vals]
    p = tmp_path / "s.safetensors"
    src = tmp_path / "src.safetensors"
    write_safetensors(src, [OutTensor("x", "F32", (4,), raw)])
    e = read_header(src).tensors["x"]
    write_safetensors(p, [OutTensor("x", "F16", (4,), CastRange(src, e.start, e.nbytes, "F32", "F16", 2.0))])
    assert decode_values(read_header(p).read_bytes("x"), "F16") == [
        struct.unpack("<e", struct.pack("<e", struct.unpack("<f", struct.pack("<f", v))[0] * 2))[0] for v in vals]


def test_sd_scripts_hashes_match_their_definition() -> None:
    np = pytest.importorskip("numpy")
    stnp = pytest.importorskip("safetensors.numpy")
    import hashlib

    rng = np.random.default_rng(1)
    arrays = {f"m{i}.lora_down.weight": rng.standard_normal((8, 4096)).astype(np.float16) for i in range(12)}
    arrays.update({f"m{i}.alpha": np.array(4.0, np.float16) for i in range(12)})
    meta = {"ss_a": "1", "ss_b": "x" * 300, "modelspec.title": "not hashed", "other": "ignored"}
    outs = [OutTensor(k, "F16", v.shape, v.tobytes()) for k, v in arrays.items()]
    model, legacy = sd_scripts_hashes(outs, meta)
    blob = stnp.save(arrays, metadata={k: v for k, v in meta.items() if k.startswith("ss_")})
    n = struct.unpack("<Q", blob[:8])[0]
    assert model == hashlib.sha256(blob[8 + n:]).hexdigest()
    assert legacy == hashlib.sha256(blob[0x100000:0x110000]).hexdigest()[:8]


def test_writer_is_atomic_and_reader_names_problems(tmp_path: Path) -> None:
    dst = tmp_path / "x.safetensors"
    dst.write_bytes(b"old")
    bad = [OutTensor("a", "F32", (2,), b"\0" * 4)]  # wrong byte count: fails mid-write
    with pytest.raises(ValueError):
        write_safetensors(dst, bad)
    assert dst.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["x.safetensors"]
    with pytest.raises(UserError, match="duplicate key"):
        p = tmp_path / "dup.safetensors"
        h = b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'
        p.write_bytes(struct.pack("<Q", len(h)) + h + b"\0")
        read_header(p)


def test_light_commands_never_import_torch(tmp_path: Path) -> None:
    """convert / inspect / check run on the header alone: no torch, diffusers, peft, transformers, safetensors."""
    from lora_compat.weights.synth import synth_kohya

    pytest.importorskip("numpy")
    src = synth_kohya(tmp_path / "x.safetensors", "sd1", rank=2)
    code = f"""
import sys
from lora_compat.cli import main
for argv in (["convert", {str(src)!r}, {str(tmp_path / 'p')!r}, "--to", "peft"],
             ["convert", {str(tmp_path / 'p')!r}, {str(tmp_path / 'k.safetensors')!r}, "--to", "kohya"],
             ["inspect", {str(src)!r}, "--format", "json"], ["check", {str(src)!r}, "--target", "comfyui"]):
    try:
        main(argv)
    except SystemExit as e:
        assert e.code in (0, None), (argv, e.code)
heavy = [m for m in ("torch", "diffusers", "peft", "transformers", "accelerate", "safetensors", "numpy")
         if m in sys.modules]
print("HEAVY", heavy)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout


def _scattered_source(tmp_path: Path) -> tuple[Path, list[tuple[int, int]], bytes]:
    """A file of random bytes and ~600 ranges of it: tiny, odd-sized, page-straddling and multi-MiB ones."""
    import random

    rng = random.Random(7)
    data = rng.randbytes(6 * 2**20 + 12345)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    ranges, pos = [], 3
    while pos < len(data):
        n = rng.choice([1, 2, 3, 4095, 4097, 65537, 300_001, 2**20 + 5, rng.randint(1, 9000)])
        n = min(n, len(data) - pos)
        ranges.append((pos, n))
        pos += n + rng.choice([0, 0, 2, 4, 4096])  # gaps like the dropped alpha scalars
    return src, ranges, data


def _append_all(out: Path, src: Path, ranges, data: bytes) -> tuple[bytes, bool]:
    """Copy ``ranges`` of ``src`` through _Appender, with new bytes between some; return the expected bytes and
    whether the appender still used splice at the end."""
    from lora_compat.weights.safetensors_io import _Appender

    expected = bytearray(b"H" * 777)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    app = _Appender(fd, 0)
    try:
        app.write(b"H" * 777)
        for i, (off, n) in enumerate(ranges):
            app.copy(src, off, n)
            expected += data[off:off + n]
            if i % 97 == 0:
                app.write(b"new!")
                expected += b"new!"
        app.flush()
    finally:
        app.close()
        os.close(fd)
    return bytes(expected), app.splice


def test_appender_copies_scattered_ranges_exactly(tmp_path: Path) -> None:
    src, ranges, data = _scattered_source(tmp_path)
    out = tmp_path / "out.bin"
    assert out.exists() is False
    expected, spliced = _append_all(out, src, ranges, data)
    assert out.read_bytes() == expected
    assert spliced == hasattr(os, "splice")


@pytest.mark.parametrize("fail_on", ["fill", "drain", "nosplice", "windows"])
def test_appender_falls_back_when_splice_is_refused(tmp_path: Path, monkeypatch, fail_on: str) -> None:
    """Filesystems without splice: refused before any byte moved (fill), with bytes already in the pipe (drain),
    no os.splice at all, or neither splice nor pread (Windows): the output is the same."""
    import errno

    src, ranges, data = _scattered_source(tmp_path)
    real = getattr(os, "splice", None)
    calls = {"n": 0}

    def flaky(fd_in, fd_out, count, offset_src=None, offset_dst=None, flags=0):
        calls["n"] += 1
        into_pipe = offset_src is not None
        if calls["n"] > 5 and ((fail_on == "fill" and into_pipe) or (fail_on == "drain" and not into_pipe)):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd_in, fd_out, count, offset_src=offset_src, flags=flags)

    if fail_on in ("nosplice", "windows") or real is None:
        monkeypatch.delattr(os, "splice", raising=False)
        if fail_on == "windows":  # no splice and no pread
            from lora_compat.weights import safetensors_io

            monkeypatch.setattr(safetensors_io, "_pread", safetensors_io._pread_seek)
    else:
        monkeypatch.setattr(os, "splice", flaky)
    out = tmp_path / "out.bin"
    expected, spliced = _append_all(out, src, ranges, data)
    assert out.read_bytes() == expected
    assert not spliced  # it did fall back


def test_positional_read_fallback_for_platforms_without_pread(tmp_path: Path) -> None:
    """Windows has no os.pread: the seek-and-read stand-in returns the same bytes, short at the end of file."""
    from lora_compat.weights.safetensors_io import _pread_seek

    data = bytes(range(256)) * 40
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    fd = os.open(p, os.O_RDONLY)
    try:
        for n, off in [(10, 0), (4096, 3), (1, len(data) - 1), (100, len(data) - 7), (5, len(data) + 3)]:
            assert _pread_seek(fd, n, off) == data[off:off + n]
            if hasattr(os, "pread"):
                assert _pread_seek(fd, n, off) == os.pread(fd, n, off)
    finally:
        os.close(fd)
