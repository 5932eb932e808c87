"""User-facing errors: one line that says what was wrong and what to do; the CLI prints it without a traceback."""


class EdgerecError(Exception):
    """An expected failure caused by the user's input or environment (bad file, bad flag, missing backend)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))  # always one line


def shown(value: object, limit: int = 60) -> str:
    """repr(value) cut to `limit` characters, for echoing untrusted values inside one-line errors."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
