"""The store contract (store_contract.py) against the memory store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .store_contract import CHECKS, memory_factory


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_memory_store_contract(check: Callable[[Callable[[], Any]], None]) -> None:
    check(memory_factory)
