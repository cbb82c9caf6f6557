"""Bad input never gives a traceback or an output file: >= 500 generated malformed LoRA files / folders.

Every case runs ``lora-compat convert`` in-process and must end with exit code 2, exactly one line on stderr
that starts with ``error:`` and names the input, and nothing left in the output folder (no DST, no temp files).
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from lora_compat.cli import main
from lora_compat.weights.safetensors_io import OutTensor, encode_values, write_safetensors

MODULES = [  # (kohya name, down shape, up shape): real SD1 shapes, rank 1
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", (1, 768), (320, 1)),
    ("lora_unet_down_blocks_0_attentions_0_proj_in", (1, 320, 1, 1), (320, 1, 1, 1)),
    ("lora_unet_up_blocks_1_attentions_2_transformer_blocks_0_ff_net_2", (1, 5120), (1280, 1)),
    ("lora_te_text_model_encoder_layers_3_mlp_fc1", (1, 768), (3072, 1)),
    ("lora_te_text_model_encoder_layers_11_self_attn_out_proj", (1, 768), (768, 1)),
    ("lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_q", (1, 1280), (1280, 1)),
]


def _n(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def base_tensors(alpha: float = 1.0, drop=()) -> list[OutTensor]:
    out = []
    for name, down, up in MODULES:
        for param, shape in (("lora_down.weight", down), ("lora_up.weight", up)):
            key = f"{name}.{param}"
            if key not in drop:
                out.append(OutTensor(key, "F16", shape, encode_values([0.01] * _n(shape), "F16")))
        if f"{name}.alpha" not in drop:
            out.append(OutTensor(f"{name}.alpha", "F16", (), encode_values([alpha], "F16")))
    return out


def base_bytes(tmp: Path) -> bytes:
    p = tmp / "base.safetensors"
    write_safetensors(p, base_tensors(), {"ss_network_module": "networks.lora"})
    return p.read_bytes()


def split(blob: bytes) -> tuple[dict, bytes]:
    n = struct.unpack("<Q", blob[:8])[0]
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def join(header: dict | str | bytes, data: bytes) -> bytes:
    if isinstance(header, dict):
        header = json.dumps(header)
    if isinstance(header, str):
        header = header.encode()
    return struct.pack("<Q", len(header)) + header + data


def _tensor_mutations(header: dict, ordered: list[str], idx: int, key: str, data_len: int) -> dict:
    """Ways to break the header entry of tensor ``key`` (``idx`` in file order), by name."""
    b, en = header[key]["data_offsets"]
    prev = header[ordered[idx - 1]]["data_offsets"] if idx else [0, 0]
    return {
        "end-past": lambda h, t: t.update(data_offsets=[b, data_len + 2]),
        "end-plus": lambda h, t: t.update(data_offsets=[b, en + 2]),
        "begin-gt-end": lambda h, t: t.update(data_offsets=[en, b]),
        "negative": lambda h, t: t.update(data_offsets=[-2, en]),
        "overlap": lambda h, t: t.update(data_offsets=list(prev) if idx else [b + 2, en + 2]),
        "gap": lambda h, t: h.pop(_k) if (_k := key) else None,
        "shape": lambda h, t: t.update(shape=[t["shape"][0] + 1, *t["shape"][1:]] if t["shape"] else [2]),
        "shape-neg": lambda h, t: t.update(shape=[-1]),
        "shape-str": lambda h, t: t.update(shape="12"),
        "shape-float": lambda h, t: t.update(shape=[1.5]),
        "dtype-unknown": lambda h, t: t.update(dtype="F17"),
        "dtype-int": lambda h, t: t.update(dtype=5),
        "dtype-size": lambda h, t: t.update(dtype="F32"),
        "offsets-str": lambda h, t: t.update(data_offsets="0,2"),
        "offsets-3": lambda h, t: t.update(data_offsets=[b, en, en]),
        "extra-field": lambda h, t: t.update(foo=1),
        "not-object": lambda h, t: h.update({key: [1, 2]}),
        "missing-dtype": lambda h, t: t.pop("dtype"),
    }


def generate_cases(tmp: Path) -> list[tuple[str, Path]]:
    """(case id, input path) for every malformed input."""
    blob = base_bytes(tmp)
    header, data = split(blob)
    n_header = struct.unpack("<Q", blob[:8])[0]
    cases: list[tuple[str, bytes | Path]] = []

    # A. truncated anywhere
    cuts = sorted(set(list(range(17)) + list(range(17, 8 + n_header, max(1, n_header // 60)))
                      + list(range(8 + n_header, len(blob), max(1, len(data) // 70))) + [len(blob) - 1]))
    cases += [(f"truncated-{c}", blob[:c]) for c in cuts]

    # B. header length field wrong
    size = len(blob)
    for n in (size - 7, size, size + 1000, 2**40, 2**63, 2**64 - 1, 100 * 1024 * 1024 + 1, 0, 1, 2, n_header - 1,
              n_header - 2, n_header - 9, n_header // 2, n_header + 1, n_header + 8, n_header + 16):
        cases.append((f"header-len-{n}", struct.pack("<Q", n) + blob[8:]))

    # C. header body not a valid header
    bodies = ["[]", "1", '"x"', "null", "true", "{", "{}}", '{"a":}', "{'a': 1}", '{"a": 1,}', "",
              '{"__metadata__": 5}', '{"__metadata__": {"a": 1}}', '{"__metadata__": {"a": null}}',
              '{"__metadata__": {"a": {"b": "c"}}}', '{"__metadata__": []}', "[" * 100000 + "]" * 100000,
              '{"x": NaN}', '{"x": Infinity}', "{}"]
    cases += [(f"body-{i}", join(b, data)) for i, b in enumerate(bodies)]
    cases.append(("body-utf8", join(b'{"\xff\xfe": 1}', data)))
    cases.append(("body-utf8-2", join(json.dumps(header).encode()[:-1] + b"\xc3}", data)))

    # D. per tensor corruption
    names = list(header)
    names.remove("__metadata__")
    ordered = sorted(names, key=lambda k: header[k]["data_offsets"][0])
    for idx, key in enumerate(ordered):
        def mutated(fn, _key=key):
            h = json.loads(json.dumps(header))
            fn(h, h[_key])
            return join(h, data)

        muts = _tensor_mutations(header, ordered, idx, key, len(data))
        for mname, fn in muts.items():
            cases.append((f"tensor{idx}-{mname}", mutated(fn)))
        # duplicate key: the same entry twice in the raw JSON text
        text = json.dumps(header)
        entry = json.dumps({key: header[key]})[1:-1]
        cases.append((f"tensor{idx}-duplicate", join(text[:-1] + ", " + entry + "}", data)))

    # E. valid safetensors, wrong content
    def st(tensors, meta=None) -> bytes:
        p = tmp / "tmp-build.safetensors"
        write_safetensors(p, tensors, meta)
        out = p.read_bytes()
        p.unlink()
        return out

    def one(key, shape, dtype="F16"):
        return OutTensor(key, dtype, shape, b"\0" * (_n(shape) * 2 if dtype == "F16" else _n(shape) * 4))

    for i, key in enumerate(["foo.weight", "model.diffusion_model.x.weight", "lora_unet_nothing_here.lora_down.weight",
                             "lora_unet_down_blocks_9_attentions_0_proj_in.lora_down.weight",
                             "lora_te_text_model_encoder_layers_40_mlp_fc1.lora_down.weight",
                             "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
                             "bundle_emb.x.string_to_param.*", "text_encoder.foo.lora_A.weight",
                             "unet.down_blocks.0.bogus.lora_A.weight", "base_model.model.nothing.lora_A.weight"]):
        cases.append((f"unknown-name-{i}", st([one(key, (1, 768))])))
    for name, _down, up in MODULES:
        short = name[-20:]
        cases.append((f"unpaired-down-{short}", st(base_tensors(drop={f"{name}.lora_up.weight"}))))
        cases.append((f"unpaired-up-{short}", st(base_tensors(drop={f"{name}.lora_down.weight"}))))
        cases.append((f"stray-alpha-{short}", st(base_tensors(drop={f"{name}.lora_down.weight",
                                                                     f"{name}.lora_up.weight"}))))
        bad = [t if t.name != f"{name}.lora_down.weight" else one(t.name, (1, 77)) for t in base_tensors()]
        cases.append((f"width-{short}", st(bad)))
        bad = [t if t.name != f"{name}.lora_up.weight" else one(t.name, (up[0], 3)) for t in base_tensors()]
        cases.append((f"rank-{short}", st(bad)))
        for kind in ("diff", "on_input", "hada_w1_a", "lokr_w1", "dora_scale", "scale", "lora_mid.weight", "oops"):
            cases.append((f"extra-{kind}-{short}", st([*base_tensors(), one(f"{name}.{kind}", (3, 5))])))
    cases.append(("alpha-zero", st(base_tensors(alpha=0.0))))
    cases.append(("alpha-nan", st(base_tensors(alpha=float("nan")))))
    cases.append(("alpha-inf", st(base_tensors(alpha=float("inf")))))
    cases.append(("alpha-shape",
                  st([t if not t.name.endswith("alpha") else one(t.name, (2,)) for t in base_tensors()])))
    cases.append(("no-tensors", st([], {"a": "b"})))
    cases.append(("mixed-layouts",
                  st([*base_tensors(), one("unet.down_blocks.0.attentions.0.proj_in.lora_A.weight", (1, 320, 1, 1))])))
    mixed = base_tensors() + [OutTensor(t.name.replace("lora_unet_down_blocks_0_attentions_0",
                                                       "lora_unet_input_blocks_2_1"),
                                        t.dtype, t.shape, t.source) for t in base_tensors()
                              if t.name.startswith("lora_unet_down_blocks_0_attentions_0_proj_in")]
    cases.append(("mixed-sgm-diffusers", st(mixed)))
    cases.append(("same-module-twice", st(base_tensors() + [
        OutTensor(t.name.replace("lora_te_", "lora_te1_"), t.dtype, t.shape, t.source) for t in base_tensors()
        if t.name.startswith("lora_te_text_model_encoder_layers_3_mlp_fc1")])))
    cases.append(("diffusers-bad-metadata",
                  st([one("unet.down_blocks.0.attentions.0.proj_in.lora_A.weight", (1, 320, 1, 1)),
                      one("unet.down_blocks.0.attentions.0.proj_in.lora_B.weight", (320, 1, 1, 1))],
                     {"lora_adapter_metadata": "{not json"})))
    cases.append(("diffusers-alpha-zero-metadata", st(
        [one("unet.down_blocks.0.attentions.0.proj_in.lora_A.weight", (1, 320, 1, 1)),
         one("unet.down_blocks.0.attentions.0.proj_in.lora_B.weight", (320, 1, 1, 1))],
        {"lora_adapter_metadata": json.dumps({"unet.r": 1, "unet.lora_alpha": 0})})))

    # F. pickles
    for suffix in (".ckpt", ".pt", ".pth", ".bin"):
        cases.append((f"pickle{suffix}", (b"\x80\x04K\x01.", suffix)))

    out: list[tuple[str, Path]] = []
    for i, (cid, content) in enumerate(cases):
        suffix = ".safetensors"
        if isinstance(content, tuple):
            content, suffix = content
        p = tmp / f"case{i:04d}{suffix}"
        p.write_bytes(content)
        out.append((cid, p))

    # G. PEFT folders
    good = tmp / "peft-tensors.safetensors"
    write_safetensors(good, [one("base_model.model.down_blocks.0.attentions.0.proj_in.lora_A.weight", (1, 320, 1, 1)),
                             one("base_model.model.down_blocks.0.attentions.0.proj_in.lora_B.weight", (320, 1, 1, 1)),
                             one("base_model.model.down_blocks.0.attentions.0.proj_in.lora_magnitude_vector",
                                 (1, 320, 1, 1))])
    configs = {"invalid-json": "{", "not-object": "[1]", "ia3": {"peft_type": "IA3"}, "no-type": {"r": 1},
               "lora-bias": {"peft_type": "LORA", "lora_bias": True, "use_dora": True},
               "modules-to-save": {"peft_type": "LORA", "modules_to_save": ["conv_in"], "use_dora": True},
               "no-dora-flag": {"peft_type": "LORA", "r": 1, "lora_alpha": 1},
               "rank-mismatch": {"peft_type": "LORA", "r": 4, "lora_alpha": 1, "use_dora": True},
               "alpha-zero": {"peft_type": "LORA", "r": 1, "lora_alpha": 0, "use_dora": True},
               "alpha-str": {"peft_type": "LORA", "r": 1, "lora_alpha": "x", "use_dora": True},
               "loha-type": {"peft_type": "LOHA", "r": 1, "alpha": 1},
               "fan-in-fan-out": {"peft_type": "LORA", "fan_in_fan_out": True, "use_dora": True},
               "pissa": {"peft_type": "LORA", "init_lora_weights": "pissa_niter_4", "use_dora": True},
               "bad-pattern": {"peft_type": "LORA", "r": 1, "lora_alpha": 1, "use_dora": True,
                               "alpha_pattern": {"(": 2}}}
    for cid, cfg in configs.items():
        d = tmp / f"peft-{cid}"
        d.mkdir()
        (d / "adapter_config.json").write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
        (d / "adapter_model.safetensors").write_bytes(good.read_bytes())
        out.append((f"peft-{cid}", d))
    d = tmp / "peft-missing-weights"
    d.mkdir()
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    out.append(("peft-missing-weights", d))
    d = tmp / "peft-bin-only"
    d.mkdir()
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    (d / "adapter_model.bin").write_bytes(b"x")
    out.append(("peft-bin-only", d))
    d = tmp / "empty-folder"
    d.mkdir()
    out.append(("empty-folder", d))
    out.append(("missing-file", tmp / "does-not-exist.safetensors"))
    # H. a real 100 MB+ header (sparse file, cheap)
    big = tmp / "big-header.safetensors"
    with open(big, "wb") as fh:
        fh.write(struct.pack("<Q", 100 * 1024 * 1024 + 8) + b"{")
        fh.truncate(100 * 1024 * 1024 + 64)
    out.append(("header-over-100MB", big))
    return out


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[tuple[str, Path]]:
    return generate_cases(tmp_path_factory.mktemp("malformed"))


def test_there_are_at_least_500_cases(cases) -> None:
    assert len(cases) >= 500
    assert len({cid for cid, _ in cases}) == len(cases)


def test_every_malformed_input_is_a_one_line_error_with_no_output(cases, tmp_path, capsys) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir()
    failures = []
    for i, (cid, src) in enumerate(cases):
        to = ("kohya", "peft", "diffusers")[i % 3]
        dst = outdir / f"dst{i}{'' if to == 'peft' else '.safetensors'}"
        before = src.read_bytes() if src.is_file() else None
        try:
            main(["convert", str(src), str(dst), "--to", to])
            code = 0
        except SystemExit as exc:
            code = exc.code
        except Exception as exc:  # a traceback is exactly what must never happen
            code = f"{type(exc).__name__}: {exc}"
        cap = capsys.readouterr()
        lines = cap.err.strip("\n").split("\n")
        problems = []
        if code != 2:
            problems.append(f"exit {code}")
        if len(lines) != 1 or not lines[0].startswith("error: ") or src.name not in lines[0]:
            problems.append(f"stderr {cap.err!r}")
        if os.listdir(outdir):
            problems.append(f"left {os.listdir(outdir)}")
            for p in outdir.iterdir():
                (p.unlink() if p.is_file() else __import__("shutil").rmtree(p))
        if before is not None and src.read_bytes() != before:
            problems.append("input modified")
        if problems:
            failures.append(f"{cid}: {'; '.join(problems)}")
    assert not failures, "\n".join(failures[:40])


def test_inspect_and_check_refuse_malformed_inputs_too(cases, capsys) -> None:
    for cid, src in cases[::25]:
        for argv in (["inspect", str(src)], ["check", str(src), "--target", "comfyui"]):
            with pytest.raises(SystemExit) as exc:
                main(argv)
            err = capsys.readouterr().err
            assert exc.value.code == 2, (cid, argv, err)
            assert err.count("\n") == 1 and err.startswith("error: "), (cid, err)


def test_allow_pickle_still_refuses_garbage(tmp_path, capsys) -> None:
    pytest.importorskip("torch")
    p = tmp_path / "x.ckpt"
    p.write_bytes(b"not a pickle at all")
    with pytest.raises(SystemExit) as exc:
        main(["convert", str(p), str(tmp_path / "o.safetensors"), "--to", "kohya", "--allow-pickle"])
    assert exc.value.code == 2 and "weights-only pickle" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()
