"""Basis points, one name per direction of the conversion.

A relative change times ``BPS_PER_UNIT`` is in basis points (0.01 -> 100 bps); a number of basis
points times ``UNIT_PER_BPS`` is a fraction of a price (2.5 bps -> 0.00025). Every module that
converts imports these two, so a bare ``1e4`` or ``1e-4`` never has to be read for its meaning
(``tests/unit/operators/test_units.py`` keeps it so). Both are exact literals, not one derived
from the other, so each conversion is the one multiplication it always was.

Examples
--------
>>> 0.0125 * BPS_PER_UNIT
125.0
>>> 100.0 * (1.0 + 2.0 * UNIT_PER_BPS)
100.02
"""

from __future__ import annotations

from typing import Final

BPS_PER_UNIT: Final = 1e4
UNIT_PER_BPS: Final = 1e-4
