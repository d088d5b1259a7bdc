"""Fixtures of the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.store.repository import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """An empty SQLite store, migrated to the newest schema."""
    s = Store(f"sqlite:///{tmp_path / 'farm.db'}")
    s.migrate()
    return s
