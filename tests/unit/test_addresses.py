import pytest

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
    ],
)
def test_invalid_phones_are_rejected_with_a_reason(raw, reason):
    with pytest.raises(InvalidAddress, match=reason):
        normalize_phone(raw)


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
        ("a" * 65 + "@example.com", "longer than 64"),
        ("\u202ea@example.com", "invisible"),
    ],
)
def test_ambiguous_or_overlong_emails_are_refused(raw, reason):
    with pytest.raises(InvalidAddress, match=reason):
        normalize_email(raw)


def test_a_local_part_of_exactly_64_characters_is_accepted():
    assert normalize_email("a" * 64 + "@example.com") == "a" * 64 + "@example.com"
