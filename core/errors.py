"""The project's own error type for inputs it cannot use."""

from __future__ import annotations


class ImageError(ValueError):
    """An input that cannot be scored.

    The message is a single human-readable line that is safe to show to a user: it
    never contains file contents, and callers add the file name themselves if needed.
    ``code`` is a stable reason code when one is known (a gate refusal's), else "". ``note``
    says what the capture step did and, for a photo of a film, how to take it again.
    """

    def __init__(self, message: str = "", code: str = "", note: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.note = note
