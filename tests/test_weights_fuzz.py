"""Seeded weights fuzz (#12): a few hundred malformed LoRA files and PEFT folders through inspect, check and convert.

Mutations start from valid kohya LoRA / LoHa / LoKr files, a diffusers file with ``lora_adapter_metadata``, a PEFT
folder (SD1) and a kohya and a diffusers FLUX.1 file: header JSON edits (dtypes, shapes, offsets, keys, huge and
non-finite numbers, nesting), alpha bytes, raw byte damage, hostile metadata and adapter configs (wrong types, 0/null
ranks, 1e308, catastrophic regex patterns, lone surrogates). Every invocation runs in-process and must: end with
exit 0, 1 or 2 (never another exception), take under 10 s, print strictly valid JSON (no bare NaN) when it succeeds,
print exactly one ``error:`` line when it fails, leave nothing in the output folder after a failure (no DST, no
temporaries) and only DST after a success, and never modify its input. Counts: ``FUZZ_CASES`` cases x 3 commands
(+ ``--verify`` on a sample when torch is installed). The seed is fixed so that a failure reproduces; set
``LORA_COMPAT_FUZZ_SEED`` to explore others.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import re
import shutil
import struct
import time
from pathlib import Path

from lora_compat.cli import main
from lora_compat.weights.safetensors_io import OutTensor, encode_values, write_safetensors

SEED = int(os.environ.get("LORA_COMPAT_FUZZ_SEED", "20240612"))
FUZZ_CASES = 320
TIME_LIMIT = 10.0

LIN = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"      # SD1 768 -> 320
CONV = "down_blocks.0.attentions.0.proj_in"                              # SD1 320 -> 320, 1x1
TE = "text_model.encoder.layers.3.mlp.fc1"                               # SD1 TE 768 -> 3072
KOHYA = {p: ("lora_te_" if p == TE else "lora_unet_") + p.replace(".", "_") for p in (LIN, CONV, TE)}

HOSTILE_NUMBERS = ["0", "-1", "null", "true", '"2"', "[1]", "{}", "1e308", "-1e308", "1e400", "NaN", "Infinity",
                   "-Infinity", "9" * 5001, "2.5", "1e-320", "18446744073709551616", "[" * 3000 + "]" * 3000]
EVIL_PATTERNS = [r"((.*)*)*x", r"(a|a)*b", r"(.*a){25}", r"(a)\1", r"(?=x)", r"[", r"(?i)to_k", r".*to_k",
                 r"attn2\.to_k", "x" * 1200 + "*", r"\d+", "to_k|proj_in", "(?P<n>a)(?P=n)"]
DTYPES = ["F32", "F16", "BF16", "F64", "I16", "I8", "U8", "BOOL", "I64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4",
          "f16", "", 5, None]


def _rand_values(rng: random.Random, n: int, dtype: str) -> bytes:
    return encode_values([rng.uniform(-0.05, 0.05) for _ in range(n)], dtype)


def seed_files(tmp: Path, rng: random.Random) -> dict[str, Path]:
    """The valid inputs every case starts from."""
    out: dict[str, Path] = {}
    shapes = {LIN: (768, 320), CONV: (320, 320), TE: (768, 3072)}
    t: list[OutTensor] = []
    for p, (fin, fout) in shapes.items():
        r = 2
        down = (r, fin, 1, 1) if p == CONV else (r, fin)
        up = (fout, r, 1, 1) if p == CONV else (fout, r)
        t += [OutTensor(f"{KOHYA[p]}.lora_down.weight", "F16", down, _rand_values(rng, r * fin, "F16")),
              OutTensor(f"{KOHYA[p]}.lora_up.weight", "F16", up, _rand_values(rng, r * fout, "F16")),
              OutTensor(f"{KOHYA[p]}.alpha", "F16", (), encode_values([1.5], "F16"))]
    out["kohya"] = tmp / "seed-kohya.safetensors"
    write_safetensors(out["kohya"], t, {"ss_network_module": "networks.lora", "ss_network_dim": "2",
                                        "ss_tag_frequency": json.dumps({"a": {"b": 1}}),
                                        "ss_output_name": "[/bold] fuzz [v2] \x1b[31m"})  # rich markup, ANSI
    loha = []
    for i in ("1", "2"):
        loha += [OutTensor(f"{KOHYA[LIN]}.hada_w{i}_a", "F32", (320, 2), _rand_values(rng, 640, "F32")),
                 OutTensor(f"{KOHYA[LIN]}.hada_w{i}_b", "F32", (2, 768), _rand_values(rng, 1536, "F32"))]
    loha.append(OutTensor(f"{KOHYA[LIN]}.alpha", "F32", (), encode_values([2.0], "F32")))
    out["loha"] = tmp / "seed-loha.safetensors"
    write_safetensors(out["loha"], loha, {"ss_base_model_version": "sd_v1"})
    lokr = [OutTensor(f"{KOHYA[LIN]}.lokr_w1", "F32", (4, 8), _rand_values(rng, 32, "F32")),
            OutTensor(f"{KOHYA[LIN]}.lokr_w2_a", "F32", (80, 2), _rand_values(rng, 160, "F32")),
            OutTensor(f"{KOHYA[LIN]}.lokr_w2_b", "F32", (2, 96), _rand_values(rng, 192, "F32")),
            OutTensor(f"{KOHYA[LIN]}.alpha", "F32", (), encode_values([1.0], "F32"))]
    out["lokr"] = tmp / "seed-lokr.safetensors"
    write_safetensors(out["lokr"], lokr, {"ss_base_model_version": "sd_v1"})
    diff = []
    for p, (fin, fout) in ((LIN, (768, 320)), (TE, (768, 3072))):
        comp = "text_encoder" if p == TE else "unet"
        diff += [OutTensor(f"{comp}.{p}.lora_A.weight", "F32", (2, fin), _rand_values(rng, 2 * fin, "F32")),
                 OutTensor(f"{comp}.{p}.lora_B.weight", "F32", (fout, 2), _rand_values(rng, 2 * fout, "F32"))]
    out["diffusers"] = tmp / "seed-diffusers.safetensors"
    write_safetensors(out["diffusers"], diff, {"lora_adapter_metadata": json.dumps(
        {"unet.r": 2, "unet.lora_alpha": 4, "unet.alpha_pattern": {LIN: 3}, "text_encoder.r": 2,
         "text_encoder.lora_alpha": 2})})
    peft = tmp / "seed-peft"
    (peft / "unet").mkdir(parents=True)
    write_safetensors(peft / "unet" / "adapter_model.safetensors", [
        OutTensor(f"base_model.model.{LIN}.lora_A.weight", "F32", (2, 768), _rand_values(rng, 1536, "F32")),
        OutTensor(f"base_model.model.{LIN}.lora_B.weight", "F32", (320, 2), _rand_values(rng, 640, "F32")),
        OutTensor(f"base_model.model.{CONV}.lora_A.weight", "F32", (4, 320, 1, 1), _rand_values(rng, 1280, "F32")),
        OutTensor(f"base_model.model.{CONV}.lora_B.weight", "F32", (320, 4, 1, 1), _rand_values(rng, 1280, "F32"))])
    (peft / "unet" / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": 2, "lora_alpha": 2, "rank_pattern": {CONV: 4}, "alpha_pattern": {CONV: 8},
         "target_modules": [LIN, CONV], "use_rslora": False, "use_dora": False}))
    out["peft"] = peft
    flux = []
    for name, (fin, fout) in {"double_blocks_0_img_attn_qkv": (3072, 9216), "single_blocks_0_linear2": (15360, 3072),
                              "double_blocks_1_txt_mlp_0": (3072, 12288)}.items():
        flux += [OutTensor(f"lora_unet_{name}.lora_down.weight", "BF16", (1, fin), _rand_values(rng, fin, "BF16")),
                 OutTensor(f"lora_unet_{name}.lora_up.weight", "BF16", (fout, 1), _rand_values(rng, fout, "BF16")),
                 OutTensor(f"lora_unet_{name}.alpha", "F32", (), encode_values([1.0], "F32"))]
    out["flux"] = tmp / "seed-flux.safetensors"
    write_safetensors(out["flux"], flux, {"ss_base_model_version": "flux1", "ss_network_module": "networks.lora_flux"})
    out["flux-diffusers"] = tmp / "seed-flux-diffusers.safetensors"
    code, _, err, _ = invoke(["convert", str(out["flux"]), str(out["flux-diffusers"]), "--to", "diffusers"])
    assert code == 0, err
    return out


def split(blob: bytes) -> tuple[str, bytes]:
    n = struct.unpack("<Q", blob[:8])[0]
    return blob[8:8 + n].decode("utf-8"), blob[8 + n:]


def join(header: str | bytes, data: bytes) -> bytes:
    raw = header.encode("utf-8", "surrogatepass") if isinstance(header, str) else header
    return struct.pack("<Q", len(raw)) + raw + data


def mutate_header(rng: random.Random, text: str, data: bytes) -> bytes:
    """One structural edit of a header (as JSON), or a raw textual one."""
    header = json.loads(text)
    names = [k for k in header if k != "__metadata__"]
    name = rng.choice(names)
    entry = header[name]
    op = rng.randrange(16)
    if op == 0:
        entry["dtype"] = rng.choice(DTYPES)
    elif op == 1:
        entry["shape"] = rng.choice([[], [0], [-1], [2**53], [1.5], "3", [[2]], [2, 768, 1, 1, 1, 1, 1, 1, 1],
                                     [entry["shape"][0] + 1, *entry["shape"][1:]] if entry["shape"] else [1]])
    elif op == 2:
        b, e = entry["data_offsets"]
        entry["data_offsets"] = rng.choice([[e, b], [b, e + 2], [b - 2, e], [b, len(data) + 8], [b], "0,2",
                                            [b, e, e], [0, 2**64]])
    elif op == 3:
        del header[name]
    elif op == 4:
        header[name.replace(".", "..", 1) if rng.random() < 0.5 else name + "x"] = header.pop(name)
    elif op == 5:
        new = rng.choice(["lora_unet_nothing.lora_down.weight", "unet.bogus.lora_A.weight", "foo",
                          name.replace("lora_down", "hada_w1_a"), name.replace("lora_up", "dora_scale"),
                          name.rsplit(".", 1)[0] + ".diff", "base_model.model." + name])
        header[new] = header.pop(name)
    elif op == 6:
        header.setdefault("__metadata__", {})["lora_adapter_metadata"] = rng.choice([
            "{", "[1]", f'{{"unet.r": {rng.choice(HOSTILE_NUMBERS)}}}',
            json.dumps({"unet.r": 2, "unet.lora_alpha": 4, "unet.alpha_pattern": {rng.choice(EVIL_PATTERNS): 2}}),
            f'{{"unet.lora_alpha": {rng.choice(HOSTILE_NUMBERS)}, "unet.r": 2}}', "[" * 50000 + "]" * 50000,
            '{"unet.use_rslora": "yes", "unet.r": 2}', '{"peft_type": ["LORA"]}', '{"unet.r": 2, "a": "\\ud800"}'])
    elif op == 7:
        header["__metadata__"] = rng.choice([5, [], {"a": 1}, {"a": None}, {"a": {"b": "c"}}, "x"])
    elif op == 8:
        entry["extra"] = 1
    elif op == 9:
        header[name] = rng.choice([[1, 2], "x", None, 7])
    # ops 10.. edit the text itself
    out = json.dumps(header)
    if op == 10:
        out = out.replace(str(entry["data_offsets"][1]), "9" * rng.choice([30, 5001]), 1)
    elif op == 11:
        out = out.replace('"F16"', "NaN", 1).replace('"F32"', "Infinity", 1)
    elif op == 12:
        out = out[:-1] + ", " + json.dumps({name: entry})[1:-1] + "}"      # duplicate key
    elif op == 13:
        cut = rng.randrange(len(out))
        out = out[:cut] + rng.choice(["", "}", '"', "\\", "\x00", "\ud800", "[" * 2000]) + out[cut + 1:]
    elif op == 14:
        out = out.replace("ss_output_name", "ss_output_\\udcff", 1).replace("lora_adapter_metadata",
                                                                           "lora_adapter_\\ud800", 1)
    elif op == 15:
        out = "[" * rng.choice([100, 100000]) + "]" * 100
    return join(out, data)


def mutate_file(rng: random.Random, blob: bytes) -> bytes:
    text, data = split(blob)
    kind = rng.random()
    if kind < 0.6:
        return mutate_header(rng, text, data)
    if kind < 0.7:  # alpha / value bytes: NaN, inf, zero, huge
        header = json.loads(text)
        alphas = [k for k in header if k.endswith(".alpha")]
        if alphas:
            e = header[alphas[0]]
            b, end = e["data_offsets"]
            size = end - b
            bad = rng.choice([b"\xff" * size, b"\x00" * size, b"\x7c\x00"[:size].ljust(size, b"\0"),
                              b"\x00\x00\x80\x7f"[:size].ljust(size, b"\0")])
            return join(text, data[:b] + bad + data[end:])
        return join(text, data[: len(data) // 2])
    if kind < 0.8:  # length field
        n = rng.choice([0, 1, len(text) - 1, len(text) + 1, 2**63, 100 * 1024 * 1024 + 1, len(blob)])
        return struct.pack("<Q", n) + blob[8:]
    if kind < 0.9:  # truncation
        return blob[: rng.randrange(len(blob))]
    junk = bytearray(blob)  # random byte damage
    for _ in range(rng.randrange(1, 8)):
        junk[rng.randrange(len(junk))] = rng.randrange(256)
    return bytes(junk)


def mutate_config(rng: random.Random, cfg: dict) -> str:
    cfg = json.loads(json.dumps(cfg))
    op = rng.randrange(9)
    if op == 0:
        return json.dumps(cfg).replace('"r": 2', '"r": ' + rng.choice(HOSTILE_NUMBERS), 1)
    if op == 1:
        return json.dumps(cfg).replace('"lora_alpha": 2', '"lora_alpha": ' + rng.choice(HOSTILE_NUMBERS), 1)
    if op == 2:
        cfg["alpha_pattern"] = {rng.choice(EVIL_PATTERNS): rng.choice([2, 0, -1, 1e39, "x"])}
    elif op == 3:
        cfg["rank_pattern"] = rng.choice([[1], "x", {CONV: 0}, {CONV: 2.5}, {rng.choice(EVIL_PATTERNS): 4}])
    elif op == 4:
        cfg["peft_type"] = rng.choice([["LORA"], "IA3", None, 1, "LOHA", {"t": 1}])
    elif op == 5:
        cfg[rng.choice(["use_dora", "use_rslora", "lora_bias", "modules_to_save", "fan_in_fan_out",
                        "init_lora_weights"])] = rng.choice(["yes", 1, [1], {"a": [1]}, "pissa", None, True])
    elif op == 6:
        return rng.choice(["", "{", "[]", "null", "{" * 100000, '{"peft_type": "LORA", "r": NaN}',
                           '{"peft_type": "LORA", "peft_type": "LORA"}', "\ufeff" + json.dumps(cfg)])
    elif op == 7:
        return json.dumps(cfg)[: rng.randrange(len(json.dumps(cfg)))]
    else:
        cfg["r"] = rng.choice([1, 3, 4])  # valid JSON, wrong rank for the tensors
    return json.dumps(cfg)


def generate(tmp: Path, n: int, seed: int) -> list[tuple[str, Path]]:
    rng = random.Random(seed)
    tmp.mkdir(parents=True, exist_ok=True)
    seeds = seed_files(tmp, rng)
    blobs = {k: p.read_bytes() for k, p in seeds.items() if p.is_file()}
    peft_cfg = json.loads((seeds["peft"] / "unet" / "adapter_config.json").read_text())
    peft_weights = (seeds["peft"] / "unet" / "adapter_model.safetensors").read_bytes()
    cases: list[tuple[str, Path]] = []
    for i in range(n):
        kind = rng.choice(["kohya", "kohya", "loha", "lokr", "diffusers", "diffusers", "peft", "peft", "flux",
                           "flux-diffusers"])
        if kind == "peft":
            d = tmp / f"case{i:04d}-peft"
            (d / "unet").mkdir(parents=True)
            if rng.random() < 0.6:
                cfg_text, weights = mutate_config(rng, peft_cfg), peft_weights
            else:
                cfg_text, weights = json.dumps(peft_cfg), mutate_file(rng, peft_weights)
            (d / "unet" / "adapter_config.json").write_text(cfg_text, encoding="utf-8", errors="surrogatepass")
            (d / "unet" / "adapter_model.safetensors").write_bytes(weights)
            cases.append((f"{i}:peft", d))
        else:
            p = tmp / f"case{i:04d}-{kind}.safetensors"
            p.write_bytes(mutate_file(rng, blobs[kind]))
            cases.append((f"{i}:{kind}", p))
    return cases


def fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted([path] if path.is_file() else path.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(path.parent)).encode() + p.read_bytes())
    return h.hexdigest()


def invoke(argv: list[str]) -> tuple[object, str, str, float]:
    out, err = io.StringIO(), io.StringIO()
    t = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
            code: object = 0
        except SystemExit as exc:
            code = exc.code
        except BaseException as exc:
            code = f"uncaught {type(exc).__name__}: {str(exc)[:200]}"
    return code, out.getvalue(), err.getvalue(), time.perf_counter() - t


def _strict_json(text: str) -> object:
    def refuse(name: str):
        raise ValueError(f"bare {name}")
    return json.loads(text, parse_constant=refuse)


def run_fuzz(tmp: Path, n: int = FUZZ_CASES, seed: int = SEED) -> dict:
    """Run every case through inspect, check and convert; return counts and the problems found."""
    try:
        import torch

        torch.ones(2, 2) @ torch.ones(2, 2)  # import and first-use cost are not a case's time
        can_verify = True
    except ImportError:
        can_verify = False
    rng = random.Random(seed + 1)
    cases = generate(tmp / "in", n, seed)
    stats = {"cases": len(cases), "invocations": 0, "exit": {0: 0, 1: 0, 2: 0}, "problems": [], "slowest": 0.0}
    for cid, src in cases:
        before = fingerprint(src)
        outdir = tmp / "out"
        outdir.mkdir(exist_ok=True)
        to = rng.choice(["kohya", "peft", "diffusers"] + (["comfyui", "ai-toolkit"] if "flux" in cid else []))
        dst = outdir / ("dst" if to == "peft" else "dst.safetensors")
        fmt = [rng.choice(["json", "json", "json", "text"]) for _ in range(3)]
        convert = ["convert", str(src), str(dst), "--to", to, "--format", fmt[2]]
        if rng.random() < 0.2:
            convert += ["--dtype", rng.choice(["fp16", "bf16", "fp32"])]
        if rng.random() < 0.1:
            convert.append("--bake-scale")
        if can_verify and rng.random() < 0.04:
            convert.append("--verify")
        runs = [["inspect", str(src), "--format", fmt[0]],
                ["check", str(src), "--target",
                 rng.choice(["diffusers", "comfyui", "a1111", "sd-scripts", "ai-toolkit"]), "--format", fmt[1]],
                convert]
        for argv in runs:
            code, out, err, secs = invoke(argv)
            stats["invocations"] += 1
            if secs > stats["slowest"]:
                stats["slowest"], stats["slowest_call"] = secs, f"{cid} {' '.join(argv[:1] + argv[3:])}"
            problems = []
            if code not in (0, 1, 2):
                problems.append(str(code))
            else:
                stats["exit"][code] += 1
            if secs > TIME_LIMIT:
                problems.append(f"took {secs:.1f} s")
            if code in (0, 1) and argv[argv.index("--format") + 1] == "json":
                try:
                    _strict_json(out)
                except ValueError as exc:
                    problems.append(f"invalid JSON output ({exc})")
            if code == 2 and (err.count("\n") != 1 or not err.startswith("error: ")):
                problems.append(f"stderr {err[:300]!r}")
            if argv[0] == "convert":
                left = sorted(os.listdir(outdir))
                if code == 0 and left != [dst.name]:
                    problems.append(f"after success the output folder holds {left}")
                if code != 0 and left:
                    problems.append(f"left behind after a failure: {left}")
                shutil.rmtree(outdir)
            if problems:
                stats["problems"].append(f"{cid} {argv[0]}: {'; '.join(problems)}")
        if fingerprint(src) != before:
            stats["problems"].append(f"{cid}: input modified")
    return stats


def test_weights_fuzz(tmp_path: Path) -> None:
    stats = run_fuzz(tmp_path)
    print(f"weights fuzz: seed {SEED}, {stats['cases']} cases, {stats['invocations']} invocations, exits "
          f"{stats['exit']}, slowest {stats['slowest']:.2f} s ({stats.get('slowest_call')}), "
          f"{len(stats['problems'])} problems")
    assert stats["cases"] == FUZZ_CASES and stats["invocations"] == 3 * FUZZ_CASES
    # the mutations must exercise both sides: refusals and inputs that still convert
    assert stats["exit"][2] > FUZZ_CASES and stats["exit"][0] > FUZZ_CASES // 4, stats["exit"]
    assert not stats["problems"], "\n".join(stats["problems"][:30])


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a = [(cid, fingerprint(p)) for cid, p in generate(tmp_path / "a", 20, SEED)]
    b = [(cid, fingerprint(p)) for cid, p in generate(tmp_path / "b", 20, SEED)]
    assert [(c, h) for (c, h) in a] == [(c, h) for (c, h) in b]
    assert re.match(r"\d+:\w+", a[0][0])
