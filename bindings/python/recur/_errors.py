"""The one exception type of the package."""

__all__ = ["RecurError"]


class RecurError(Exception):
    """Every failure of Recur, in-process or remote.

    ``code`` is a short string to branch on: for the C library the status name
    (``"invalid_argument"``, ``"io"``, ``"format"``, ``"invalid_input"``, ``"unsupported"``,
    ``"out_of_memory"``, ``"internal"``), for the daemon the wire error code
    (``"bad_request"``, ``"not_found"``, ``"invalid_input"``, ...), and ``"timeout"`` when the
    daemon did not answer in time. ``message`` says what was wrong.
    """

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
