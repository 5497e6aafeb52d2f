"""The error types every app builds on."""


class BackofficeError(Exception):
    """Base of every error this project raises on purpose; its message is for staff."""


class ExternalServiceError(BackofficeError):
    """An external API failed: carries the service, the HTTP status and the API's own title."""

    def __init__(self, service: str, message: str, *, status: int | None = None, title: str = ""):
        self.service = service
        self.status = status
        self.title = title
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [f"{self.service}:"]
        if self.status is not None:
            parts.append(f"HTTP {self.status}:")
        parts.append(self.message)
        if self.title and self.title not in self.message:
            parts.append(f"({self.title})")
        return " ".join(parts)


class ServiceTimeout(ExternalServiceError):
    """No answer within the read (or connect) timeout, retries included; `timeout_text`
    says which limits were waited for."""

    def __init__(self, service: str, message: str, *, timeout_text: str = ""):
        self.timeout_text = timeout_text
        super().__init__(service, message)
