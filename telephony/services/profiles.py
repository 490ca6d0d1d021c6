"""Writes for profiles."""

from __future__ import annotations
