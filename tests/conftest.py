"""Shared test fixtures (pytest finds them here; test modules never import this file: plain helpers they
import live in ``shared_data.py``)."""

from __future__ import annotations

import pytest

# -- lint: canonical configs built directly (no reader) -------------------------------------------------------

CANONICAL_SOURCE = "cfg.toml"


def _build_canonical(dialect: str = "sd-scripts-toml", *, era=None, tab=None, options=None, raw=None, keys=None,
                     subsets=None, dataset=None, notes=(), unknown=None, frontend=None, invalid=(), **opts):
    """A CanonicalConfig as a reader would leave it: ``options`` (and keyword options) in order, one per line from
    line 1; ``raw`` values as written and ``keys`` as written where they differ; dataset ``subsets`` (lines 60+)
    and ``dataset`` parameters (line 50); ``frontend``/``unknown`` keys (lines 100+/200+); ``notes`` and
    ``invalid`` as objects or as the dicts of tests/lint_cases/*.toml."""
    from lora_compat.config.model import (
        CanonicalConfig,
        Dataset,
        FrontendOnlyKey,
        InvalidValue,
        Note,
        Origin,
        Provenance,
        Setting,
        Subset,
        UnknownKey,
    )

    src = CANONICAL_SOURCE
    raw, keys = raw or {}, keys or {}
    cfg = CanonicalConfig(dialect=dialect, source=src, era=era, tab=tab)
    for line, (name, value) in enumerate({**(options or {}), **opts}.items(), start=1):
        o = Origin(src, keys.get(name, name), line, None, raw.get(name, value))
        cfg.options[name] = Setting(value, Provenance(origins=(o,)))
    if subsets is not None or dataset is not None:
        d = Dataset(params={k: Setting(v, Provenance(origins=(Origin(src, f"datasets[0].{k}", 50),)))
                            for k, v in (dataset or {}).items()})
        for si, params in enumerate(subsets or []):
            d.subsets.append(Subset(params={
                k: Setting(v, Provenance(origins=(Origin(src, f"datasets[0].subsets[{si}].{k}", 60 + si),)))
                for k, v in params.items()}))
        cfg.datasets.append(d)
    for i, (k, v) in enumerate(dict(frontend or {}).items()):
        cfg.frontend_only.append(FrontendOnlyKey(k, v, Origin(src, k, 100 + i, None, v), "front-end only"))
    for i, (k, v) in enumerate(dict(unknown or {}).items()):
        cfg.unknown_keys.append(UnknownKey(k, v, Origin(src, k, 200 + i, None, v)))
    for inv in invalid:
        if isinstance(inv, dict):
            inv = InvalidValue(inv["option"], inv["value"], Origin(src, inv["key"], inv.get("line")), inv["reason"])
        cfg.invalid.append(inv)
    for n in notes:
        if isinstance(n, dict):
            origin = Origin(src, n["key"], n.get("line")) if "key" in n else None
            n = Note(n["code"], n["message"], origin)
        cfg.notes.append(n)
    return cfg


@pytest.fixture
def canonical_config():
    """A factory of canonical configs for lint tests (see :func:`_build_canonical`)."""
    return _build_canonical


# -- torch: one thread per test worker ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for a module's tests: tiny models are thousands of very small ops, and on a shared
    2-core CI box (two xdist workers) OpenMP hand-offs make two threads several times slower than one. Training
    test modules use it through ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
