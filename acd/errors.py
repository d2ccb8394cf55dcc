"""Errors of the ACD a client sees: each an ApiError with its status and error id."""

from __future__ import annotations

from core.errors import ApiError


class AcdError(ApiError):
    error_id = "acd_error"


class SupervisionError(AcdError):
    """Listen, whisper or barge refused (no such call, operator busy, AMI away...)."""

    def __init__(self, status: int, error_id: str, message: str) -> None:
        super().__init__(message, status=status, error_id=error_id)


class UnknownOperator(AcdError):
    status = 404
    error_id = "not_found"

    def __init__(self) -> None:
        super().__init__("no such operator")
