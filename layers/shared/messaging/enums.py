"""The service's vocabulary: directions, message types, statuses and providers."""

from enum import StrEnum


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class MessageType(StrEnum):
    SMS = "sms"
    MMS = "mms"
    EMAIL = "email"


class MessageStatus(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"


class Provider(StrEnum):
    SMS = "mock-sms"
    EMAIL = "mock-email"
