"""Writes for sip."""

from __future__ import annotations
