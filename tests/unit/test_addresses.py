import pytest

from messaging import addresses, models
from messaging.addresses import InvalidAddress, normalize_email, normalize_phone
from messaging.grouping import participant_pair


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+18045551234", "+18045551234"),
        ("+1 (804) 555-1234", "+18045551234"),
        (" +1-804-555-1234 ", "+18045551234"),
        ("+44 7911 123456", "+447911123456"),
    ],
)
def test_phones_normalize_to_e164(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("8045551234", "international format"),
        ("+1555123456", "not a valid phone number"),
        ("+1abc", "not a"),
        ("", "empty"),
        ("+" + "1" * 40, "too long"),
        ("+1 (201) 666 - 1234  .  .  .  .  .", "more than 32 characters"),  # 34 characters, 11 digits
        ("+12016661234" + " " * 21, "more than 32 characters"),  # trailing spaces count: the limit is as sent
    ],
)
def test_invalid_phones_are_rejected_with_a_reason(raw, reason):
    with pytest.raises(InvalidAddress, match=reason):
        normalize_phone(raw)


def test_a_phone_number_of_32_characters_as_sent_is_accepted():
    assert normalize_phone("+1 (201) 666 - 1234  .  .  .  . ") == "+12016661234"
    assert normalize_phone(" +12016661234" + " " * 19) == "+12016661234"


def test_the_documented_phone_limit_is_the_one_applied():
    """The models state the limit in the OpenAPI document without importing phonenumbers: the same number."""
    assert models.MAX_PHONE_LENGTH == addresses.MAX_PHONE_LENGTH == 32


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("user@usehatchapp.com", "user@usehatchapp.com"),
        ("User@UseHatchApp.COM", "user@usehatchapp.com"),
        ("[user@usehatchapp.com](mailto:user@usehatchapp.com)", "user@usehatchapp.com"),
        ("[Contact@Gmail.com](mailto:Contact@Gmail.com)", "contact@gmail.com"),
        ("  contact@gmail.com  ", "contact@gmail.com"),
    ],
)
def test_emails_normalize_to_bare_lower_case(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["not-an-email", "a@", "@b.com", "[x](mailto:)", "a b@c.com", ""])
def test_invalid_emails_are_rejected(raw):
    with pytest.raises(InvalidAddress):
        normalize_email(raw)


def test_pair_is_the_same_in_both_directions():
    assert participant_pair("+18045551234", "+12016661234") == participant_pair("+12016661234", "+18045551234")
    assert participant_pair("b@x.com", "a@x.com") == ("a@x.com", "b@x.com")


def test_different_pairs_differ():
    assert participant_pair("+18045551234", "+12016661234") != participant_pair("+18045551234", "+14155550100")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("+1201666ABCD", "letters"),
        ("+1 201 666 1234 ext. 55", "extension"),
        ("+12016661234;ext=7", "extension"),
        ("+12016661234,,55", "extension"),
        ("+1 201 666 1234 x55", "extension"),
        ("+12016661234#55", "extension"),
        ("++12016661234", "more than one"),
        ("+1201\u202e6661234", "invisible"),
        ("+1201\u200b6661234", "invisible"),
        ("+1201\ufeff6661234", "invisible"),
        ("+\u0661\u0662\u0660\u0661\u0666\u0666\u0666\u0661\u0662\u0663\u0664", "ASCII digits"),
        ("+12016661", "wrong length"),  # dialable only locally: not a full E.164 number
    ],
)
def test_what_phonenumbers_would_convert_or_drop_is_refused(raw, reason):
    for assigned in (True, False):
        with pytest.raises(InvalidAddress, match=reason):
            normalize_phone(raw, assigned=assigned)


@pytest.mark.parametrize("raw", ["+15551234567", "+19876543210"])
def test_possible_numbers_pass_where_assignment_is_not_required(raw):
    assert normalize_phone(raw, assigned=False) == raw
    with pytest.raises(InvalidAddress, match="assigns no such number"):
        normalize_phone(raw)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("[a@b.com](mailto:c@d.com)", "ambiguous"),
        ("[Write to us](mailto:c@d.com)", "ambiguous"),
        ("a" * 65 + "@example.com", "longer than 64 bytes"),
        ("\u00e4" * 33 + "@example.com", "longer than 64 bytes"),  # 33 characters, 66 bytes in UTF-8
        ("\u202ea@example.com", "invisible"),
    ],
)
def test_ambiguous_or_overlong_emails_are_refused(raw, reason):
    with pytest.raises(InvalidAddress, match=reason):
        normalize_email(raw)


def test_a_local_part_of_exactly_64_bytes_is_accepted():
    assert normalize_email("a" * 64 + "@example.com") == "a" * 64 + "@example.com"
    assert normalize_email("\u00e4" * 32 + "@example.com") == "\u00e4" * 32 + "@example.com"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("a@\uff45xample.com", "compatibility characters"),  # fullwidth e: the library would store a@example.com
        ("\uff41@example.com", "compatibility characters"),  # fullwidth a, kept by the library: a look-alike
        ("a\uff20example.com", "compatibility characters"),  # fullwidth @
        ("a@example\uff0ecom", "compatibility characters"),  # fullwidth full stop
        ("\ufb01@example.com", "compatibility characters"),  # the ligature fi
        ("a@\ufb01le.com", "compatibility characters"),
        ("a@\u2460.com", "compatibility characters"),  # circled digit one
        ("a@\u2168.com", "compatibility characters"),  # roman numeral nine
        ("a@\u017fx.com", "compatibility characters"),  # long s
        ("a@example\u3002com", "would be stored as 'a@example.com'"),  # ideographic full stop, read as '.'
    ],
)
def test_emails_the_library_would_convert_or_that_read_as_another_address_are_refused(raw, reason):
    with pytest.raises(InvalidAddress, match=reason):
        normalize_email(raw)
    with pytest.raises(InvalidAddress):
        normalize_email(f"[{raw}](mailto:{raw})")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a@b\u00fccher.de", "a@b\u00fccher.de"),  # an internationalized domain, stored as written
        ("a@B\u00dcCHER.DE", "a@b\u00fccher.de"),  # ... up to case
        ("a@bu\u0308cher.de", "a@b\u00fccher.de"),  # ... and to canonical equivalence (u + combining diaeresis)
        ("a@xn--bcher-kva.de", "a@b\u00fccher.de"),  # its ASCII form names the same domain
        ("Jos\u00e9@example.com", "jos\u00e9@example.com"),
        ("\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a", "\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a"),
        ("a@stra\u00dfe.de", "a@stra\u00dfe.de"),  # sharp s stays (IDNA 2008, non-transitional)
    ],
)
def test_internationalized_addresses_are_accepted_as_written(raw, expected):
    assert normalize_email(raw) == expected
