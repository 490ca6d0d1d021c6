"""Writes for numbers."""

from __future__ import annotations
