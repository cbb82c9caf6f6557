"""Pinned topology of the SD1, SD2 and SDXL UNets and text encoders, and the module tables built from it.

Everything here is plain data written down once (block channels, layer counts, widths): nothing is read from the
installed diffusers/transformers at run time, because their module names change between versions (transformers 5
dropped ``text_model.`` from ``CLIPTextModel``). Tests compare these tables with sd-scripts' own key lists
(golden/kohya_lora_keys.json) and with the module names of tiny diffusers/transformers models of the same layout.
"""

from __future__ import annotations

from typing import NamedTuple

# --- pinned facts -------------------------------------------------------------------------------------------------

#: UNet layouts (diffusers UNet2DConditionModel configs of the released checkpoints, reduced to what names/shapes need).
UNET_TOPOLOGY: dict[str, dict] = {
    "sd1": {
        "block_out_channels": (320, 640, 1280, 1280),
        "down_has_attention": (True, True, True, False),
        "up_has_attention": (False, True, True, True),
        "transformer_layers": (1, 1, 1, 1),   # per down block; up blocks use the reverse
        "mid_transformer_layers": 1,
        "cross_attention_dim": 768,
        "linear_projection": False,            # proj_in/proj_out are Conv2d 1x1
        "time_embed_dim": 1280,
        "add_embedding_in": None,
    },
    "sd2": {
        "block_out_channels": (320, 640, 1280, 1280),
        "down_has_attention": (True, True, True, False),
        "up_has_attention": (False, True, True, True),
        "transformer_layers": (1, 1, 1, 1),
        "mid_transformer_layers": 1,
        "cross_attention_dim": 1024,
        "linear_projection": True,
        "time_embed_dim": 1280,
        "add_embedding_in": None,
    },
    "sdxl": {
        "block_out_channels": (320, 640, 1280),
        "down_has_attention": (False, True, True),
        "up_has_attention": (True, True, False),
        "transformer_layers": (1, 2, 10),
        "mid_transformer_layers": 10,
        "cross_attention_dim": 2048,
        "linear_projection": True,
        "time_embed_dim": 1280,
        "add_embedding_in": 2816,              # text_time: 1280 pooled + 6 * 256 time ids
    },
}
LAYERS_PER_BLOCK = 2  # all three families
IN_CHANNELS = 4       # latent channels

#: Text encoders: part -> (kohya prefix, hidden, mlp, layers, HF class).
TE_TOPOLOGY: dict[str, dict[str, tuple[str, int, int, int, str]]] = {
    "sd1": {"te1": ("lora_te", 768, 3072, 12, "CLIPTextModel")},
    "sd2": {"te1": ("lora_te", 1024, 4096, 23, "CLIPTextModel")},
    "sdxl": {
        "te1": ("lora_te1", 768, 3072, 12, "CLIPTextModel"),
        "te2": ("lora_te2", 1280, 5120, 32, "CLIPTextModelWithProjection"),
    },
}

ARCHS: tuple[str, ...] = ("sd1", "sd2", "sdxl")
PARTS: tuple[str, ...] = ("unet", "te1", "te2")
#: Each part's diffusers pipeline component (``unet``, ``text_encoder``, ``text_encoder_2``): also its name in a
#: PEFT / diffusers LoRA key and in the training plan. The kohya prefix of a text encoder is in TE_TOPOLOGY.
PART_COMPONENTS: dict[str, str] = {"unet": "unet", "te1": "text_encoder", "te2": "text_encoder_2"}

# Diffusers resnet inner names -> SGM (LDM) names.
RESNET_SGM = {"conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "conv2": "out_layers.3",
              "conv_shortcut": "skip_connection"}


class ModuleInfo(NamedTuple):
    """One module a kohya-style LoRA can target (a named tuple: immutable and ~5x faster to build than a frozen
    dataclass, which matters because every command that resolves names builds ~1000 of them per architecture).

    ``diffusers_path`` is relative to the component root: the diffusers ``UNet2DConditionModel`` for ``unet``; for
    text encoders the transformers<5 path (``text_model.encoder.layers.N...``), see :meth:`te_path` for v5.
    ``group`` says which sd-scripts rule targets it: ``attention`` and ``text`` (plain LoRA), ``resnet`` and
    ``sampler`` (added by LoCon / conv_dim), ``extra`` (never an sd-scripts target; LyCORIS/other trainers only).
    """

    kohya_name: str
    part: str
    diffusers_path: str
    kind: str            # "linear" | "conv"
    in_features: int
    out_features: int
    kernel: int          # 1 for Linear and 1x1 conv, 3 for 3x3 conv
    group: str
    sgm_path: str | None = None  # UNet only: the SGM/LDM path (sd-scripts' SDXL UNet, A1111 "compvis")
    hf_class: str | None = None  # TE only: CLIPTextModel / CLIPTextModelWithProjection

    @property
    def is_conv3x3(self) -> bool:
        """True for k x k convs: sd-scripts gives them ``conv_dim``/``conv_alpha`` instead of network_dim."""
        return self.kind == "conv" and self.kernel > 1

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """Shape of the base module's weight."""
        if self.kind == "linear":
            return (self.out_features, self.in_features)
        return (self.out_features, self.in_features, self.kernel, self.kernel)

    def lora_shapes(self, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(down/A shape, up/B shape) of a plain LoRA of ``rank`` on this module."""
        if self.kind == "linear":
            return (rank, self.in_features), (self.out_features, rank)
        return (rank, self.in_features, self.kernel, self.kernel), (self.out_features, rank, 1, 1)

    def te_path(self, transformers_major: int = 4) -> str:
        """The module path inside the HF text model for a given transformers major version.

        transformers 5 flattened ``CLIPTextModel`` (no ``text_model.`` prefix); ``CLIPTextModelWithProjection``
        kept it. UNet modules are returned unchanged.
        """
        if self.part == "unet" or transformers_major < 5 or self.hf_class != "CLIPTextModel":
            return self.diffusers_path
        return self.diffusers_path.removeprefix("text_model.")


def _flat(prefix: str, path: str) -> str:
    return prefix + "_" + path.replace(".", "_")


# --- UNet enumeration ---------------------------------------------------------------------------------------------

def _transformer_modules(base: str, sgm: str, ch: int, layers: int, topo: dict) -> list[tuple]:
    """(path, sgm_path, kind, in, out, kernel, group) for one Transformer2DModel at ``base``."""
    proj_kind = "linear" if topo["linear_projection"] else "conv"
    cross = topo["cross_attention_dim"]
    rows = [("proj_in", proj_kind, ch, ch)]
    for n in range(layers):
        tb = f"transformer_blocks.{n}"
        for attn, kv_in in (("attn1", ch), ("attn2", cross)):
            rows += [(f"{tb}.{attn}.to_q", "linear", ch, ch), (f"{tb}.{attn}.to_k", "linear", kv_in, ch),
                     (f"{tb}.{attn}.to_v", "linear", kv_in, ch), (f"{tb}.{attn}.to_out.0", "linear", ch, ch)]
        rows += [(f"{tb}.ff.net.0.proj", "linear", ch, ch * 8), (f"{tb}.ff.net.2", "linear", ch * 4, ch)]
    rows.append(("proj_out", proj_kind, ch, ch))
    return [(f"{base}.{p}", f"{sgm}.{p}", kind, i, o, 1, "attention") for p, kind, i, o in rows]


def _resnet_modules(base: str, sgm: str, cin: int, cout: int, temb: int) -> list[tuple]:
    rows = [("conv1", "conv", cin, cout, 3), ("time_emb_proj", "linear", temb, cout, 1),
            ("conv2", "conv", cout, cout, 3)]
    if cin != cout:
        rows.append(("conv_shortcut", "conv", cin, cout, 1))
    return [(f"{base}.{p}", f"{sgm}.{RESNET_SGM[p]}", kind, i, o, k, "resnet") for p, kind, i, o, k in rows]


def _unet_rows(arch: str) -> list[tuple]:
    """Every targetable UNet module in named_modules() order of the diffusers model."""
    t = UNET_TOPOLOGY[arch]
    chans = t["block_out_channels"]
    nblocks = len(chans)
    temb = t["time_embed_dim"]
    rows: list[tuple] = [
        ("conv_in", "input_blocks.0.0", "conv", IN_CHANNELS, chans[0], 3, "extra"),
        ("time_embedding.linear_1", "time_embed.0", "linear", chans[0], temb, 1, "extra"),
        ("time_embedding.linear_2", "time_embed.2", "linear", temb, temb, 1, "extra"),
    ]
    if t["add_embedding_in"]:
        rows += [("add_embedding.linear_1", "label_emb.0.0", "linear", t["add_embedding_in"], temb, 1, "extra"),
                 ("add_embedding.linear_2", "label_emb.0.2", "linear", temb, temb, 1, "extra")]
    # down blocks
    cout = chans[0]
    for i in range(nblocks):
        cin, cout = cout, chans[i]
        for j in range(LAYERS_PER_BLOCK):
            sgm_idx = 3 * i + j + 1
            if t["down_has_attention"][i]:
                rows += _transformer_modules(f"down_blocks.{i}.attentions.{j}", f"input_blocks.{sgm_idx}.1", cout,
                                             t["transformer_layers"][i], t)
        for j in range(LAYERS_PER_BLOCK):
            sgm_idx = 3 * i + j + 1
            rows += _resnet_modules(f"down_blocks.{i}.resnets.{j}", f"input_blocks.{sgm_idx}.0",
                                    cin if j == 0 else cout, cout, temb)
        if i < nblocks - 1:
            rows.append((f"down_blocks.{i}.downsamplers.0.conv", f"input_blocks.{3 * (i + 1)}.0.op", "conv", cout,
                         cout, 3, "sampler"))
    # mid block
    mid = chans[-1]
    rows += _transformer_modules("mid_block.attentions.0", "middle_block.1", mid, t["mid_transformer_layers"], t)
    rows += _resnet_modules("mid_block.resnets.0", "middle_block.0", mid, mid, temb)
    rows += _resnet_modules("mid_block.resnets.1", "middle_block.2", mid, mid, temb)
    # up blocks (diffusers UpBlock2D/CrossAttnUpBlock2D channel rules)
    rev = tuple(reversed(chans))
    rev_layers = tuple(reversed(t["transformer_layers"]))
    nup = LAYERS_PER_BLOCK + 1
    prev_out = rev[0]
    for i in range(nblocks):
        out = rev[i]
        inp = rev[min(i + 1, nblocks - 1)]
        has_attn = t["up_has_attention"][i]
        if has_attn:
            for j in range(nup):
                rows += _transformer_modules(f"up_blocks.{i}.attentions.{j}", f"output_blocks.{3 * i + j}.1", out,
                                             rev_layers[i], t)
        for j in range(nup):
            skip = inp if j == nup - 1 else out
            res_in = prev_out if j == 0 else out
            rows += _resnet_modules(f"up_blocks.{i}.resnets.{j}", f"output_blocks.{3 * i + j}.0", res_in + skip, out,
                                    temb)
        if i < nblocks - 1:
            k = 2 if has_attn else 1
            rows.append((f"up_blocks.{i}.upsamplers.0.conv", f"output_blocks.{3 * i + 2}.{k}.conv", "conv", out,
                         out, 3, "sampler"))
        prev_out = out
    rows.append(("conv_out", "out.2", "conv", chans[0], IN_CHANNELS, 3, "extra"))
    return rows


def build_unet_table(arch: str) -> list[ModuleInfo]:
    """UNet modules of ``arch``; kohya names use diffusers paths for SD1/SD2 and SGM paths for SDXL (sd-scripts)."""
    out = []
    for path, sgm, kind, i, o, k, group in _unet_rows(arch):
        name_src = sgm if arch == "sdxl" else path
        out.append(ModuleInfo(_flat("lora_unet", name_src), "unet", path, kind, i, o, k, group, sgm_path=sgm))
    return out


def build_te_table(arch: str) -> list[ModuleInfo]:
    """Text-encoder modules of ``arch`` (CLIPAttention q/k/v/out and CLIPMLP fc1/fc2, plus TE2 text_projection)."""
    out = []
    for part, (prefix, hidden, mlp, layers, cls) in TE_TOPOLOGY[arch].items():
        for n in range(layers):
            base = f"text_model.encoder.layers.{n}"
            rows = [(f"{base}.self_attn.{p}", hidden, hidden) for p in ("k_proj", "v_proj", "q_proj", "out_proj")]
            rows += [(f"{base}.mlp.fc1", hidden, mlp), (f"{base}.mlp.fc2", mlp, hidden)]
            for path, i, o in rows:
                out.append(ModuleInfo(_flat(prefix, path), part, path, "linear", i, o, 1, "text", hf_class=cls))
        if cls == "CLIPTextModelWithProjection":
            # OneTrainer writes lora_te2_text_projection; sd-scripts never targets it.
            out.append(ModuleInfo(f"{prefix}_text_projection", part, "text_projection", "linear", hidden, hidden, 1,
                                  "extra", hf_class=cls))
    return out
