"""Build lora_compat/schemas/sd-scripts-dataset.schema.json (sd-scripts' --dataset_config, reference §3).

Facts: sd-scripts-reference.md §3.2 (allowed keys per level, voluptuous validators), §3.3 (type detection,
precedence, dataclass defaults), golden/dataset_blueprints.json (resolved defaults).
Run: python scripts/schemas/build_dataset_schema.py > lora_compat/schemas/sd-scripts-dataset.schema.json
"""

from __future__ import annotations

import json

# Levels: G = [general]; D = [[datasets]] of kind DB (DreamBooth), FT (fine-tune), CN (ControlNet/mask);
# S = [[datasets.subsets]] of that kind.
ALL = ("G", "D-DB", "D-FT", "D-CN", "S-DB", "S-FT", "S-CN")
DATASET_LEVELS = ("G", "D-DB", "D-FT", "D-CN")
NO_FT = ("G", "D-DB", "D-CN", "S-DB", "S-CN")

INT = {"type": "integer"}
BOOL = {"type": "boolean"}
STR = {"type": "string"}
NUM = {"type": "number"}
STRICT_FLOAT = {"type": "number", "x-strict-float": True}

# name: (schema, levels, default, option it falls back to (or None), description, ref)
PARAMS: dict[str, tuple] = {
    "batch_size": (INT | {"minimum": 1}, DATASET_LEVELS, 1, "train_batch_size",
                   "Images per batch for this dataset. Batches never mix datasets or buckets.", "§3.2, §4.7"),
    "bucket_no_upscale": (BOOL, DATASET_LEVELS, False, "bucket_no_upscale",
                          "Make one bucket per image size without upscaling (min/max bucket reso are then "
                          "ignored).", "§3.2, §4.6.3"),
    "bucket_reso_steps": (INT | {"minimum": 1}, DATASET_LEVELS, 64, "bucket_reso_steps",
                          "Granularity of bucket sizes in pixels (SD1/SD2 need a multiple of 64, SDXL of 32).",
                          "§3.2, §4.6.1"),
    "enable_bucket": (BOOL, DATASET_LEVELS, False, "enable_bucket",
                      "Aspect-ratio bucketing for this dataset.", "§3.2, §4.6"),
    "max_bucket_reso": (INT | {"minimum": 1}, DATASET_LEVELS, 1024, "max_bucket_reso",
                        "Largest bucket width/height.", "§3.2, §4.6.1"),
    "min_bucket_reso": (INT | {"minimum": 1}, DATASET_LEVELS, 256, "min_bucket_reso",
                        "Smallest bucket width/height.", "§3.2, §4.6.1"),
    "validation_seed": (INT, DATASET_LEVELS, None, "validation_seed",
                        "Seed of the train/validation split of this dataset. Without it the training and "
                        "validation datasets shuffle differently and the split leaks.", "§3.2, §4.1"),
    "validation_split": (STRICT_FLOAT | {"minimum": 0, "maximum": 1}, DATASET_LEVELS, 0.0, "validation_split",
                         "Fraction of images held out for validation. voluptuous `float`: an integer such as 0 is "
                         "REJECTED, write 0.0.", "§3.2, §4.13"),
    "resolution": ({"oneOf": [{"type": "integer", "minimum": 1},
                              {"type": "array", "items": {"type": "integer", "minimum": 1},
                               "minItems": 2, "maxItems": 2}]},
                   DATASET_LEVELS, None, "resolution",
                   "Training resolution: an int S (becomes (S,S)) or exactly [W, H]. Required (here or on the "
                   "command line) for DreamBooth and mask datasets.", "§3.2"),
    "network_multiplier": (STRICT_FLOAT, DATASET_LEVELS, 1.0, None,
                           "LoRA multiplier for this dataset. Has NO effect in train_network at the reference "
                           "snapshot (removed in effect 2025-01-06). voluptuous `float`: 1 is rejected, write 1.0.",
                           "§3.2, §8"),
    "resize_interpolation": ({"type": "string", "enum": ["lanczos", "nearest", "bilinear", "linear", "bicubic",
                                                         "cubic", "area", "box"]},
                             ALL, None, "resize_interpolation",
                             "Interpolation used when resizing images to their bucket (None = area when shrinking, "
                             "lanczos when enlarging). The dataset config also accepts `box`; the subset value "
                             "wins per image.", "§3.2, §9"),
    "color_aug": (BOOL, ALL, False, "color_aug", "Random hue augmentation (forbidden with cached latents).", "§3.2"),
    "flip_aug": (BOOL, ALL, False, "flip_aug", "Random horizontal flip (works with cached latents).", "§3.2"),
    "random_crop": (BOOL, ALL, False, "random_crop",
                    "Random crop position instead of centre (forbidden with cached latents and mask datasets).",
                    "§3.2"),
    "shuffle_caption": (BOOL, ALL, False, "shuffle_caption",
                        "Shuffle the comma-separated tags of each caption per step (keep_tokens stay fixed).",
                        "§3.2, §4.4"),
    "enable_wildcard": (BOOL, ALL, False, "enable_wildcard",
                        "`{a|b}` wildcards and random line choice in multi-line captions.", "§3.2, §4.4"),
    "face_crop_aug_range": ({"type": "array", "items": STRICT_FLOAT, "minItems": 2, "maxItems": 2},
                            ALL, None, "face_crop_aug_range",
                            "Face-crop augmentation range [lo, hi] (floats; integers are rejected).",
                            "§3.2, §4.6"),
    "num_repeats": (INT, ALL, 1, "dataset_repeats",
                    "How many times each image of the subset is repeated per epoch. A subset with "
                    "num_repeats < 1 is skipped. Falls back to --dataset_repeats for EVERY subset, DreamBooth "
                    "included.", "§3.2, §3.3"),
    "keep_tokens": (INT | {"minimum": 0}, ALL, 0, "keep_tokens",
                    "Number of leading tags kept in place when tags are shuffled/warmed up/dropped.",
                    "§3.2, §4.4"),
    "token_warmup_min": (INT, ALL, 1, "token_warmup_min", "Token warmup: tags used at step 0.", "§3.2, §4.4"),
    "keep_tokens_separator": (STR, ALL, "", "keep_tokens_separator",
                              "Marker separating fixed from flexible tags (empty = off).", "§3.2, §4.4"),
    "secondary_separator": (STR, ALL, None, "secondary_separator",
                            "Separator that binds tags into one unit; replaced by caption_separator afterwards.",
                            "§3.2, §4.4"),
    "caption_separator": (STR, ALL, ",", "caption_separator", "Tag separator of the captions.", "§3.2, §4.4"),
    "caption_prefix": (STR, ALL, None, "caption_prefix", "Text prepended to every caption (with a space).",
                       "§3.2, §4.4"),
    "caption_suffix": (STR, ALL, None, "caption_suffix", "Text appended to every caption (with a space).",
                       "§3.2, §4.4"),
    "token_warmup_step": (NUM | {"minimum": 0}, ALL, 0, "token_warmup_step",
                          "Token warmup length (below 1 = fraction of max_train_steps; 0 = off).", "§3.2, §4.4"),
    "custom_attributes": ({"type": "object"}, ALL, None, None,
                          "Free-form table; train_network only reads `diff_output_preservation`.", "§3.2, §4.8"),
    "caption_dropout_every_n_epochs": (INT | {"minimum": 0}, ALL, 0, "caption_dropout_every_n_epochs",
                                       "Drop ALL captions in every N-th epoch (0 = off).", "§3.2, §4.4"),
    "caption_dropout_rate": (NUM | {"minimum": 0, "maximum": 1}, ALL, 0.0, "caption_dropout_rate",
                             "Per-sample probability of an empty caption.", "§3.2, §4.4"),
    "caption_tag_dropout_rate": (NUM | {"minimum": 0, "maximum": 1}, ALL, 0.0, "caption_tag_dropout_rate",
                                 "Per-tag drop probability (flexible tags only).", "§3.2, §4.4"),
    "caption_extension": (STR, NO_FT, ".caption", "caption_extension",
                          "Caption file extension (DreamBooth/mask subsets); a leading dot is added if missing.",
                          "§3.2"),
    "cache_info": (BOOL, NO_FT, False, "cache_info",
                   "Cache captions and sizes in metadata_cache.json (reused without any staleness check).",
                   "§3.2"),
    "class_tokens": (STR, ("G", "D-DB", "S-DB"), None, None,
                     "Caption used for images without a caption file (DreamBooth). Accepted in [general] and "
                     "DreamBooth datasets too, although the docs say subset only.", "§3.2, §9"),
    "image_dir": (STR, ("S-DB", "S-FT", "S-CN"), None, None,
                  "Image folder of the subset (required for DreamBooth and mask subsets, optional for fine-tune "
                  "subsets whose metadata holds absolute paths). `N_name` folder prefixes are NOT parsed here.",
                  "§3.2, §3.4"),
    "is_reg": (BOOL, ("S-DB",), False, None,
               "The subset holds regularization (prior-preservation) images, weighted by prior_loss_weight.",
               "§3.2, §4.1"),
    "alpha_mask": (BOOL, ("S-DB", "S-FT"), False, "alpha_mask",
                   "Use the PNG alpha channel as loss mask (works without --masked_loss).", "§3.2, §4.9"),
    "metadata_file": (STR, ("S-FT",), None, None,
                      "Fine-tune metadata JSON/JSONL (captions/tags per image). Required in fine-tune subsets; its "
                      "presence makes the dataset a fine-tune dataset.", "§3.2, §3.3"),
    "conditioning_data_dir": (STR, ("S-CN",), None, "conditioning_data_dir",
                              "Folder of mask images (ControlNet-style subsets, only legal with --masked_loss).",
                              "§3.2, §3.3"),
}
# Wrong beliefs about dataset keys (paraphrased; reference section cited in `truth`).
MISCONCEPTIONS: dict[str, list[dict]] = {
    "image_dir": [{
        "as_written": "image_dir", "dialect": "sd-scripts-dataset", "quoted": False,
        "source": "common belief (paraphrased; sd-scripts-reference.md §3.4)",
        "claim": "a folder named like `10_sks dog` sets num_repeats and class_tokens in a dataset config too",
        "truth": "Folder prefixes are only parsed when datasets come from --train_data_dir (no dataset config). In "
                 "a dataset config set num_repeats and class_tokens explicitly (§3.4)."}],
    "class_tokens": [{
        "as_written": "class_tokens", "dialect": "sd-scripts-dataset", "quoted": False,
        "source": "sd-scripts docs/config_README-en.md (paraphrased; sd-scripts-reference.md §9)",
        "claim": "class_tokens is a subset-only option",
        "truth": "sd-scripts also accepts it in [general] and in DreamBooth [[datasets]] tables (§9)."}],
    "validation_split": [{
        "as_written": "validation_split", "dialect": "sd-scripts-dataset", "quoted": False,
        "source": "common belief (paraphrased; sd-scripts-reference.md §3.2)",
        "claim": "validation_split = 0 and validation_split = 0.0 are the same",
        "truth": "The dataset config validates with voluptuous `float`, which rejects the integer 0 "
                 "(MultipleInvalid: expected float); write 0.0 (§3.2)."}],
    "num_repeats": [{
        "as_written": "num_repeats", "dialect": "sd-scripts-dataset", "quoted": False,
        "source": "common belief (paraphrased; sd-scripts-reference.md §3.3)",
        "claim": "--dataset_repeats only affects fine-tune datasets",
        "truth": "--dataset_repeats is the default num_repeats of EVERY subset that does not set it, DreamBooth "
                 "subsets included (§3.3, §8)."}],
}
KIND_NAMES = {"DB": "dreambooth", "FT": "finetune", "CN": "controlnet"}
REQUIRED = {"DB": ["image_dir"], "FT": ["metadata_file"], "CN": ["image_dir", "conditioning_data_dir"]}


def param_schema(name: str) -> dict:
    schema, levels, default, option, desc, ref = PARAMS[name]
    out = dict(schema)
    out["default"] = default
    out["description"] = desc
    out["x-levels"] = list(levels)
    if option:
        out["x-option"] = option
    out["x-ref"] = f"sd-scripts-reference.md {ref}"
    if name in MISCONCEPTIONS:
        out["x-misconception"] = MISCONCEPTIONS[name]
    return out


def level_object(level: str, extra: dict | None = None, required: list[str] | None = None,
                 description: str = "") -> dict:
    props = {n: {"$ref": f"#/$defs/params/properties/{n}"} for n, p in PARAMS.items() if level in p[1]}
    props.update(extra or {})
    obj: dict = {"type": "object", "description": description, "properties": props,
                 "additionalProperties": False}
    if required:
        obj["required"] = required
    return obj


def build() -> dict:
    defs: dict = {
        "params": {
            "description": "Every dataset-config key with its type, effective default (argparse fallback or "
                         "sd-scripts dataclass default), allowed levels (x-levels) and the command-line option it "
                         "falls back to (x-option).",
            "type": "object",
            "properties": {n: param_schema(n) for n in PARAMS},
        },
        "general": level_object("G", description="[general]: defaults for every dataset and subset."),
    }
    for kind, kname in KIND_NAMES.items():
        defs[f"{kname}_subset"] = level_object(
            f"S-{kind}", required=REQUIRED[kind],
            description=f"A [[datasets.subsets]] table of a {kname} dataset.")
        defs[f"{kname}_dataset"] = level_object(
            f"D-{kind}",
            extra={"subsets": {"type": "array", "items": {"$ref": f"#/$defs/{kname}_subset"}}},
            description=f"A [[datasets]] table of {kname} type.")
    defs["dataset"] = {
        "description": "A [[datasets]] table. Its kind is detected from its subsets (§3.3): with --masked_loss "
                       "and every subset having conditioning_data_dir -> controlnet; else every subset has "
                       "metadata_file -> finetune; else none has -> dreambooth; a mix is an error.",
        "anyOf": [{"$ref": "#/$defs/dreambooth_dataset"}, {"$ref": "#/$defs/finetune_dataset"},
                  {"$ref": "#/$defs/controlnet_dataset"}],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://lora-compat.dev/schemas/sd-scripts-dataset.schema.json",
        "title": "sd-scripts dataset config (--dataset_config)",
        "description": "sd-scripts' dataset config (TOML or JSON) as validated by config_util's voluptuous schema: "
                       "unknown keys are errors at every level, `float` keys reject integers (x-strict-float), "
                       "precedence is subset > dataset > [general] > command line > default. prior_loss_weight, "
                       "debug_dataset and max_token_length are never allowed here.",
        "type": "object",
        "properties": {
            "general": {"$ref": "#/$defs/general"},
            "datasets": {"type": "array", "items": {"$ref": "#/$defs/dataset"}},
        },
        "additionalProperties": False,
        "x-ref": "sd-scripts-reference.md §3",
        "$defs": defs,
    }


if __name__ == "__main__":
    print(json.dumps(build(), indent=2, ensure_ascii=False))
