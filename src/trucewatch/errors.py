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


class ContractError(TrucewatchError, ValueError):
    """A source adapter's table does not conform to the observation contract
    (model.contract); ``column`` names the column at fault."""

    code = "contract_error"

    def __init__(self, message: str, *, column: str = "", fix: str = "") -> None:
        super().__init__(message, fix=fix)
        self.column = column


class StorageError(TrucewatchError, RuntimeError):
    status = 500
    code = "storage_error"


class StorageUnavailableError(StorageError):
    """The store could not be opened for a reason that passes (SQLite's "disk I/O
    error" or "database is locked" under heavy load, after retries): 503, so that a
    client (``trucewatch replay --retry``) sends the same request again."""
    status = 503
    code = "storage_unavailable"


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


class BindingError(SignatureError):
    """A valid signature by a key that may not speak for this input: another source kind,
    or a platform, station or party the key is not registered for."""

    code = "key_not_bound"


class OversizeError(InputFileError):
    """An input (or what it decompresses to) is larger than the intake accepts."""

    status = 413
    code = "too_large"


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


class InvalidInputError(TrucewatchError, ValueError):
    """A value out of its range: a latitude of 999, a negative uncertainty, NaN, a time
    without a zone or outside a plausible range, a name that is not a valid name."""

    status = 422
    code = "validation_error"


class AuthenticationError(TrucewatchError):
    """No token, or one the store does not know, or one revoked: who acts is unknown."""

    status = 401
    code = "unauthorized"


class PermissionDeniedError(TrucewatchError):
    """The authenticated principal's role may not do this (e.g. create a token)."""

    status = 403
    code = "forbidden"


class PrincipalError(TrucewatchError):
    """A principal's name is taken (names are never given twice, not even after a
    revocation), or the principal is disabled, or missing where a reissue needs it."""

    status = 409
    code = "principal_conflict"


class MissingExtraError(TrucewatchError, ImportError):
    """A feature needs an optional extra that is not installed (e.g. ``[pdf]``)."""

    status = 501
    code = "missing_extra"

    def __init__(self, message: str, *, extra: str, fix: str = "") -> None:
        super().__init__(message, fix=fix or f"pip install 'trucewatch[{extra}]' (or run "
                                             "scripts/setup.sh, which installs every extra)")
        self.extra = extra
