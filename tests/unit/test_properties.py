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
