"""The one error root of trucewatch.

Every error a user can cause derives from :class:`TrucewatchError`. Each carries
``status`` (its HTTP meaning, used by the API) and a ``fix``: one sentence that
tells the user what to do next. The CLI prints ``message`` and ``fix`` on one
line and never a traceback.
"""

from __future__ import annotations


class TrucewatchError(Exception):
    """Root of all trucewatch errors."""

    status: int = 400
    code: str = "error"

    def __init__(self, message: str, *, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def one_line(self) -> str:
        return f"{self.message} (fix: {self.fix})" if self.fix else self.message

    def to_dict(self) -> dict[str, object]:
        return {"error": self.code, "status": self.status, "message": self.message,
                "fix": self.fix}


class ConfigError(TrucewatchError, ValueError):
    code = "config_error"


class InputFileError(TrucewatchError, OSError):
    """A file is missing, unreadable or of an unknown layout."""

    code = "input_file_error"

    def __init__(self, message: str, *, path: str = "", fix: str = "") -> None:
        super().__init__(message, fix=fix)
        self.path = path


class UnknownLayoutError(InputFileError):
    code = "unknown_layout"


class AgreementError(TrucewatchError, ValueError):
    """The agreement file is malformed or its geometry is invalid."""

    code = "agreement_error"

    def __init__(self, message: str, *, problems: list[str] | None = None, fix: str = "") -> None:
        super().__init__(message, fix=fix)
        self.problems = problems or []


class BaselineError(TrucewatchError, ValueError):
    """The baseline cannot be built or does not fit the data (e.g. another sensor)."""

    code = "baseline_error"


class SchemaVersionError(TrucewatchError, ValueError):
    code = "schema_version"


class StorageError(TrucewatchError, RuntimeError):
    status = 500
    code = "storage_error"


class NotFoundError(TrucewatchError, LookupError):
    status = 404
    code = "not_found"


class TransitionError(TrucewatchError):
    """An illegal status change (e.g. final -> automatic)."""

    status = 409
    code = "conflict"


class FirmsApiError(TrucewatchError, RuntimeError):
    status = 502
    code = "firms_api_error"


class SignatureError(TrucewatchError):
    """A signed submission failed: unknown, revoked or expired key, bad signature."""

    status = 401
    code = "signature_error"


class ReplayError(TrucewatchError):
    """A signed submission was already received (same nonce or same signature)."""

    status = 409
    code = "replayed_submission"


class ReviewError(TrucewatchError):
    """A review action the workflow forbids (lock held by another, two-person rule...)."""

    status = 409
    code = "review_conflict"


class TwoPersonRuleError(ReviewError):
    status = 403
    code = "two_person_rule"


class IntegrityError(TrucewatchError):
    """The audit chain or an evidentiary copy does not verify."""

    status = 500
    code = "integrity_error"
