"""How many SMS segments a text takes, and in which encoding.

A text made only of GSM 03.38 characters goes as GSM-7: 160 septets in one segment, 153 per segment once it
is split (the rest carries the concatenation header). Characters of the extension table (`^{}[~]|\\€` and form
feed) take two septets, an escape and the character, and a pair is never split across two segments. Any other
character makes the whole text UCS-2: 70 UTF-16 code units in one segment, 67 per segment when split, and a
surrogate pair (an emoji) is never split either.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    characters: int


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def _split(sizes: list[int], single: int, multi: int) -> int:
    """Segments for a sequence of indivisible units of the given sizes."""
    total = sum(sizes)
    if total <= single:
        return 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > multi:
            segments += 1
            used = 0
        used += size
    return segments


def count_segments(text: str) -> SegmentInfo:
    if is_gsm7(text):
        sizes = [2 if char in GSM7_EXTENSION else 1 for char in text]
        return SegmentInfo("GSM-7", _split(sizes, GSM7_SINGLE, GSM7_MULTI), sum(sizes), len(text))
    sizes = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return SegmentInfo("UCS-2", _split(sizes, UCS2_SINGLE, UCS2_MULTI), sum(sizes), len(text))
