"""FilterSets for numbers, shared by the API and the portal."""

from __future__ import annotations
