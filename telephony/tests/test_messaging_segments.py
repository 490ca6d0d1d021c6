"""Segment counting: GSM-7 with its extension table, and UCS-2 with surrogate pairs."""

from __future__ import annotations

from telephony.services.messaging import count_segments


def test_it_sends_160_plain_characters_in_one_gsm7_segment():
    info = count_segments("a" * 160)
    assert (info.encoding, info.segments, info.units) == ("GSM-7", 1, 160)


def test_it_splits_161_plain_characters_into_two_segments_of_153():
    assert count_segments("a" * 161).segments == 2
    assert count_segments("a" * 306).segments == 2
    assert count_segments("a" * 307).segments == 3


def test_it_counts_extension_characters_as_two_septets():
    info = count_segments("€" * 80)
    assert (info.encoding, info.units, info.segments) == ("GSM-7", 160, 1)
    assert count_segments("€" * 81).segments == 2
    assert count_segments("a{" + "b" * 157).units == 160


def test_it_never_splits_an_escape_pair_across_segments():
    # 152 plain septets then "€" (2): the pair does not fit in the first 153, so it starts the second segment.
    text = "a" * 152 + "€" + "a" * 150
    assert count_segments(text).units == 304
    assert count_segments(text).segments == 2
    assert count_segments("a" * 152 + "€" + "a" * 152).segments == 3


def test_it_uses_ucs2_for_an_emoji_and_counts_its_surrogate_pair():
    info = count_segments("Hi 😀")
    assert (info.encoding, info.units, info.segments, info.characters) == ("UCS-2", 5, 1, 4)
    assert count_segments("😀" * 35).segments == 1  # 70 code units
    assert count_segments("😀" * 36).segments == 2  # 72 units: 67 per segment, pairs kept whole
    assert count_segments("ж" * 70).segments == 1
    assert count_segments("ж" * 71).segments == 2
    assert count_segments("ж" * 134).segments == 2
    assert count_segments("ж" * 135).segments == 3


def test_it_treats_gsm_accented_letters_as_gsm7_but_others_as_ucs2():
    assert count_segments("Ça va? ñ ü é à").encoding == "GSM-7"
    assert count_segments("ç").encoding == "UCS-2"  # only the capital Ç is in GSM 03.38
