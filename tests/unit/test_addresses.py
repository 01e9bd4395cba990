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
