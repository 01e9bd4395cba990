"""Segment counting against known vectors, at every boundary (README "Segments")."""

import pytest

from messaging.segments import count_segments


@pytest.mark.parametrize(
    ("body", "encoding", "segments"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # the extension table: two septets each
        ("€" * 81, "GSM-7", 2),
        ("[]{}|~^\\" * 10, "GSM-7", 1),  # 80 characters, 160 septets
        ("[]{}|~^\\" * 10 + "a", "GSM-7", 2),
        ("a" * 152 + "€" + "a" * 100, "GSM-7", 2),  # the escape pair moves whole to the next segment
        ("a" * 152 + "€" * 2 + "a" * 152, "GSM-7", 3),
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉÄÖÑÜ§¿äöñüà", "GSM-7", 1),
        ("д" * 70, "UCS-2", 1),
        ("д" * 71, "UCS-2", 2),
        ("д" * 134, "UCS-2", 2),
        ("д" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),  # an emoji is two UTF-16 units
        ("😀" * 36, "UCS-2", 2),
        ("д" * 68 + "😀", "UCS-2", 1),  # 70 units
        ("д" * 69 + "😀", "UCS-2", 2),  # 71 units
        ("😀" * 33 + "😀" * 33, "UCS-2", 2),  # 132 units, 33 pairs per 67-unit segment
        ("😀" * 34, "UCS-2", 1),
        ("a" * 159 + "ç", "UCS-2", 3),  # one character outside GSM 03.38 makes the whole body UCS-2
        ("`", "UCS-2", 1),
        ("", "GSM-7", 1),
    ],
)
def test_segment_vectors(body, encoding, segments):
    counted = count_segments(body)
    assert (counted.encoding, counted.segments) == (encoding, segments)


def test_a_surrogate_pair_is_never_split_across_segments():
    # 134 units would fit two 67-unit segments, but the pair after 66 units moves whole to the second.
    assert count_segments("д" * 66 + "😀" + "д" * 66).segments == 3
    assert count_segments("д" * 67 + "😀" + "д" * 65).segments == 2
