"""A model with one quantization-hostile layer (toolkit.quant_debug.hostile), trained once."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def hostile_model(digits):
    from toolkit.quant_debug.hostile import build_hostile

    return build_hostile(digits, epochs=15)
