"""Limits that the address rules (messaging.addresses) apply and the API models (messaging.models) state in
the OpenAPI document: one definition, in a module that imports nothing, so a function that only reads never
loads the address libraries to learn a number."""

# A phone number as written, surrounding whitespace included: E.164 is at most 16 characters, and 32 leave
# room for the separators people type ("+1 (201) 666-1234" is 17). One limit, checked on what was sent.
MAX_PHONE_LENGTH = 32
