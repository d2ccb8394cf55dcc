"""IVR errors: every problem in a flow set is collected, so an admin sees all of them at once."""

from __future__ import annotations

from core.errors import ApiError
from core.yamlconf import ConfigError, Location


class Problems:
    """Collects ConfigErrors while a flow set is validated."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def add(self, error: ConfigError) -> None:
        if not any(str(e) == str(error) for e in self.errors):
            self.errors.append(error)

    def at(self, where: Location | None, reason: str) -> None:
        self.add(ConfigError(where, reason))

    def __bool__(self) -> bool:
        return bool(self.errors)

    def sorted(self) -> list[ConfigError]:
        def key(e: ConfigError) -> tuple[str, int, int, str]:
            loc = e.location
            return (loc.file, loc.line, loc.column, e.reason) if loc else ("", 0, 0, e.reason)
        return sorted(self.errors, key=key)


class FlowSetInvalid(ConfigError):
    """A flow set with one or more errors; the engine keeps serving the last good one."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        first = errors[0] if errors else ConfigError(None, "invalid flow set")
        super().__init__(first.location, first.reason)
        self.args = ("\n".join(str(e) for e in errors),)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    @property
    def messages(self) -> list[str]:
        return [str(e) for e in self.errors]


class IvrError(ApiError):
    """Base of runtime IVR errors (bad API input and the like)."""


class UnknownService(IvrError):
    status = 404
    error_id = "unknown_service"

    def __init__(self, service: str) -> None:
        super().__init__(f"no service {service}")


class InvalidRequest(IvrError):
    status = 400
    error_id = "invalid"


class UnknownEvent(IvrError):
    status = 404
    error_id = "not_found"

    def __init__(self) -> None:
        super().__init__("no such event")
