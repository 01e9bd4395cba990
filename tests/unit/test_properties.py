"""Property-based tests for address normalization and the grouping rule."""

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.addresses import InvalidAddress, normalize_email, normalize_phone
from messaging.grouping import participant_pair

REGIONS = ["US", "GB", "DE", "FR", "BR", "IN", "JP", "AU", "NL", "ZA"]


@st.composite
def valid_numbers(draw):
    region = draw(st.sampled_from(REGIONS))
    kind = draw(st.sampled_from([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]))
    example = phonenumbers.example_number_for_type(region, kind)
    return example


formats = st.sampled_from(
    [
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    ]
)

local_part = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-", min_size=1, max_size=20
)
domain_label = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=12
)


@st.composite
def emails(draw):
    local = draw(
        local_part.filter(lambda part: not part.startswith(".") and not part.endswith(".") and ".." not in part)
    )
    labels = draw(st.lists(domain_label, min_size=1, max_size=3))
    tld = draw(st.sampled_from(["com", "org", "io", "net", "CO", "Dev"]))
    return f"{local}@{'.'.join([*labels, tld])}"


@given(valid_numbers(), formats, st.sampled_from(["", " ", "  "]))
def test_every_written_form_of_a_number_normalizes_to_the_same_e164(number, style, padding):
    written = padding + phonenumbers.format_number(number, style) + padding
    assert normalize_phone(written) == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@given(valid_numbers())
def test_phone_normalization_is_idempotent(number):
    once = normalize_phone(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL))
    assert normalize_phone(once) == once
    assert once.startswith("+") and once[1:].isdigit()


@given(st.text(max_size=40))
def test_phone_normalization_never_crashes_and_only_returns_e164(text):
    try:
        normalized = normalize_phone(text)
    except InvalidAddress:
        return
    assert normalized.startswith("+") and normalized[1:].isdigit()
    assert normalize_phone(normalized) == normalized


@settings(max_examples=200)
@given(emails())
def test_email_normalization_is_idempotent_and_lower_case(address):
    try:
        normalized = normalize_email(address)
    except InvalidAddress:
        return
    assert normalized == normalized.lower()
    assert normalize_email(normalized) == normalized


@given(emails())
def test_markdown_link_form_equals_the_bare_address(address):
    try:
        bare = normalize_email(address)
    except InvalidAddress:
        return
    assert normalize_email(f"[{address}](mailto:{address})") == bare
    assert normalize_email(address.upper()) == bare


@given(st.text(max_size=80))
def test_email_normalization_never_crashes_and_only_returns_addresses(text):
    try:
        normalized = normalize_email(text)
    except InvalidAddress:
        return
    assert normalized.count("@") == 1
    assert normalized == normalized.lower() == normalized.strip()


addresses = st.one_of(
    st.builds(
        lambda n: normalize_phone(phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)), valid_numbers()
    ),
    st.emails().map(str.lower),
)


@given(addresses, addresses)
def test_grouping_is_symmetric_and_sorted(first, second):
    pair = participant_pair(first, second)
    assert pair == participant_pair(second, first)
    assert pair.first <= pair.second
    assert {pair.first, pair.second} == {first, second}


@given(addresses, addresses, addresses, addresses)
def test_different_participant_sets_never_share_a_conversation(a, b, c, d):
    if {a, b} != {c, d}:
        assert participant_pair(a, b) != participant_pair(c, d)
    else:
        assert participant_pair(a, b) == participant_pair(c, d)


@pytest.mark.parametrize("region", REGIONS)
def test_example_numbers_of_every_region_are_valid(region):
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert normalize_phone(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))


# One character at most between digits: a written number stays within the 32 characters normalize_phone reads.
SEPARATORS = st.sampled_from(["", "", " ", "-", "."])


@st.composite
def written_forms(draw, number):
    """The E.164 digits of `number` with arbitrary separators between them (and optional padding)."""
    assert len(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)) <= 16
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    digits = e164[1:]
    pieces = ["+"]
    for index, digit in enumerate(digits):
        pieces.append(digit)
        if index < len(digits) - 1:
            pieces.append(draw(SEPARATORS))
    padding = draw(st.sampled_from(["", " ", "\t"]))
    return padding + "".join(pieces) + padding


@st.composite
def number_and_two_forms(draw):
    number = draw(valid_numbers())
    return number, draw(written_forms(number)), draw(written_forms(number))


@settings(max_examples=300)
@given(number_and_two_forms())
def test_any_two_formatting_variants_of_a_number_normalize_equal(case):
    number, first, second = case
    expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assert normalize_phone(first) == normalize_phone(second) == expected


@given(valid_numbers())
def test_parenthesised_area_codes_normalize_like_the_bare_number(number):
    national = str(number.national_number)
    written = f"+{number.country_code} ({national[:3]}) {national[3:]}"
    bare = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    try:
        assert normalize_phone(written) == bare
    except InvalidAddress:
        pytest.fail(f"{written!r} was refused although {bare!r} is valid")


@st.composite
def case_flipped(draw, text):
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(char.swapcase() if flip else char for char, flip in zip(text, flips, strict=True))


@st.composite
def email_and_variant(draw):
    address = draw(emails())
    variant = draw(case_flipped(address))
    link_text = draw(st.one_of(st.just(variant), st.just(address.upper()), st.just(f" {variant} ")))
    form = draw(st.sampled_from(["bare", "markdown", "padded"]))
    if form == "markdown":
        return address, f"[{link_text}](mailto:{variant})"
    if form == "padded":
        return address, f"  {variant}\t"
    return address, variant


@settings(max_examples=300)
@given(email_and_variant())
def test_every_case_markdown_and_padding_variant_of_an_email_normalizes_equal(case):
    address, variant = case
    try:
        expected = normalize_email(address)
    except InvalidAddress:
        return
    assert normalize_email(variant) == expected


@st.composite
def a_pair_written_two_ways(draw):
    first, second = draw(valid_numbers()), draw(valid_numbers())
    return (draw(written_forms(first)), draw(written_forms(second))), (
        draw(written_forms(second)),
        draw(written_forms(first)),
    )


@settings(max_examples=200)
@given(a_pair_written_two_ways())
def test_both_directions_in_any_formatting_land_in_one_conversation(case):
    (from_1, to_1), (from_2, to_2) = case
    forward = participant_pair(normalize_phone(from_1), normalize_phone(to_1))
    backward = participant_pair(normalize_phone(from_2), normalize_phone(to_2))
    assert forward == backward


@given(st.text(min_size=33, max_size=200).filter(lambda text: len(text.strip()) > 32))
def test_overlong_phone_input_is_refused_before_parsing(text):
    with pytest.raises(InvalidAddress):
        normalize_phone(text)
