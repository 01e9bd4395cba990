"""Unified messaging service: the code shared by every Lambda function (shipped as SharedLayer)."""
