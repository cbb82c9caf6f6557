"""Where the checkout's fixtures and ../shared (golden files, corpus) live, and how tests read them.

Plain data and helpers that test modules import (parametrize lists are built at import time, before fixtures
exist); the fixtures themselves live in ``conftest.py``, which is never imported.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
GOLDEN = SHARED / "golden"
CORPUS = SHARED / "corpus"
FIXTURES = ROOT / "fixtures"


def golden(name: str):
    """Load ../shared/golden/<name>, or skip the test with a clear reason when it is absent."""
    path = GOLDEN / name
    if not path.is_file():
        pytest.skip(f"golden file {path} not found (../shared is not beside this clone)")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def corpus_files() -> list[Path]:
    """Every config file of ../shared/corpus (empty when absent; tests then skip)."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "MANIFEST.md")


requires_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus not found beside this clone")
