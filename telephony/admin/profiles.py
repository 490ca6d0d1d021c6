"""Staff admin for profiles."""

from __future__ import annotations
