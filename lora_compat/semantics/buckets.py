"""Aspect-ratio buckets: ``model_util.make_bucket_resolutions`` and ``train_util.BucketManager``
(golden/buckets.json)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache


def make_bucket_resolutions(
    max_reso: tuple[int, int], min_size: int = 256, max_size: int = 1024, divisible: int = 64
) -> list[tuple[int, int]]:
    """The predefined bucket list (``model_util.make_bucket_resolutions``), sorted ``(width, height)``.

    One square bucket of the same area as ``max_reso``, then for every width from ``min_size`` to
    ``max_size`` in ``divisible`` steps the tallest height (<= ``max_size``) keeping the area <= the
    max area, and its transpose.
    """
    max_width, max_height = max_reso
    max_area = max_width * max_height
    resos: set[tuple[int, int]] = set()
    side = int(math.sqrt(max_area) // divisible) * divisible
    resos.add((side, side))
    width = min_size
    while width <= max_size:
        height = min(max_size, int((max_area // width) // divisible) * divisible)
        if height >= min_size:
            resos.add((width, height))
            resos.add((height, width))
        width += divisible
    return sorted(resos)


def round_bucket_limits(min_bucket_reso: int, max_bucket_reso: int, bucket_reso_steps: int) -> tuple[int, int]:
    """sd-scripts' dataset-level adjustment: min rounded down, max rounded up to ``bucket_reso_steps``."""
    lo = min_bucket_reso - min_bucket_reso % bucket_reso_steps
    hi = max_bucket_reso
    if hi % bucket_reso_steps != 0:
        hi = hi - hi % bucket_reso_steps + bucket_reso_steps
    return lo, hi


class BucketSelector:
    """Assigns images to buckets like sd-scripts' ``BucketManager.select_bucket``.

    With ``no_upscale=False`` the buckets are the predefined ones (``make_bucket_resolutions`` unless
    ``predefined`` is given, e.g. the single ``resolution`` bucket when bucketing is off). With
    ``no_upscale=True`` each image gets its own bucket (min/max reso are ignored, as in sd-scripts).
    """

    def __init__(
        self,
        resolution: tuple[int, int],
        *,
        min_bucket_reso: int | None = 256,
        max_bucket_reso: int | None = 1024,
        bucket_reso_steps: int | None = 64,
        no_upscale: bool = False,
        predefined: Sequence[tuple[int, int]] | None = None,
    ) -> None:
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.max_area = self.resolution[0] * self.resolution[1]
        self.reso_steps = bucket_reso_steps
        self.no_upscale = no_upscale
        self.predefined: list[tuple[int, int]] = []
        if predefined is not None:
            self.predefined = [tuple(r) for r in predefined]  # type: ignore[misc]
        elif not no_upscale:
            if min_bucket_reso is None or max_bucket_reso is None or not bucket_reso_steps:
                raise ValueError("bucketing with upscaling needs min_bucket_reso, max_bucket_reso and "
                                 "bucket_reso_steps")
            self.predefined = make_bucket_resolutions(self.resolution, min_bucket_reso, max_bucket_reso,
                                                      bucket_reso_steps)
        self._predefined_set = set(self.predefined)
        self._aspects = [w / h for w, h in self.predefined]

    def _round_to_steps(self, x: float) -> int:
        if not self.reso_steps:
            raise ValueError("bucket_no_upscale needs bucket_reso_steps")
        xi = int(x + 0.5)
        return xi - xi % self.reso_steps

    def select(self, image_width: int, image_height: int) -> tuple[tuple[int, int], tuple[int, int], float]:
        """Return ``(bucket (w,h), resized size (w,h), aspect-ratio error)`` for one image."""
        aspect = image_width / image_height
        if not self.no_upscale:
            reso = (image_width, image_height)
            if reso not in self._predefined_set:
                # argmin of |bucket_ar - ar|; ties go to the first bucket in sorted order (numpy argmin).
                best = min(range(len(self._aspects)), key=lambda i: abs(self._aspects[i] - aspect))
                reso = self.predefined[best]
            bucket_aspect = reso[0] / reso[1]
            # Cover the bucket: scale on the side that is short relative to the bucket.
            scale = reso[1] / image_height if aspect > bucket_aspect else reso[0] / image_width
            resized = (int(image_width * scale + 0.5), int(image_height * scale + 0.5))
        else:
            if image_width * image_height > self.max_area:
                rw = math.sqrt(self.max_area * aspect)
                rh = self.max_area / rw
                bw = self._round_to_steps(rw)
                bh_w = self._round_to_steps(bw / aspect)
                ar_w = bw / bh_w
                bh = self._round_to_steps(rh)
                bw_h = self._round_to_steps(bh * aspect)
                ar_h = bw_h / bh
                if abs(ar_w - aspect) < abs(ar_h - aspect):
                    resized = (bw, int(bw / aspect + 0.5))
                else:
                    resized = (int(bh * aspect + 0.5), bh)
            else:
                resized = (image_width, image_height)
            steps = self.reso_steps or 1
            reso = (resized[0] - resized[0] % steps, resized[1] - resized[1] % steps)
        return reso, resized, reso[0] / reso[1] - aspect


def select_bucket(
    image_size: tuple[int, int],
    resolution: tuple[int, int],
    *,
    min_bucket_reso: int = 256,
    max_bucket_reso: int = 1024,
    bucket_reso_steps: int = 64,
    no_upscale: bool = False,
) -> tuple[tuple[int, int], tuple[int, int], float]:
    """:meth:`BucketSelector.select` for one image (selectors are cached per bucket setting)."""
    sel = _cached_selector(tuple(resolution), min_bucket_reso, max_bucket_reso, bucket_reso_steps, no_upscale)
    return sel.select(int(image_size[0]), int(image_size[1]))


@lru_cache(maxsize=32)
def _cached_selector(resolution: tuple[int, int], lo: int, hi: int, steps: int, no_upscale: bool) -> BucketSelector:
    return BucketSelector(resolution, min_bucket_reso=lo, max_bucket_reso=hi, bucket_reso_steps=steps,
                          no_upscale=no_upscale)


def crop_ltrb(bucket_reso: tuple[int, int], image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """SDXL crop conditioning as sd-scripts computes it (``BucketManager.get_crop_ltrb``).

    A letterbox ("fit inside") offset of the image aspect inside the bucket, independent of the crop
    actually made; returned as ints ``(left, top, right, bottom)``.
    """
    bucket_ar = bucket_reso[0] / bucket_reso[1]
    image_ar = image_size[0] / image_size[1]
    rw: float
    rh: float
    if bucket_ar > image_ar:
        rw, rh = bucket_reso[1] * image_ar, bucket_reso[1]
    else:
        rw, rh = bucket_reso[0], bucket_reso[0] / image_ar
    left = (bucket_reso[0] - rw) // 2
    top = (bucket_reso[1] - rh) // 2
    return int(left), int(top), int(left + rw), int(top + rh)
