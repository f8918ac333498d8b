"""The one exception that bad program input raises."""


class ProgramError(ValueError):
    """A program text or structure is not in the language. ``line`` is 1-based where known."""

    def __init__(self, reason: str, line: int | None = None):
        self.reason = reason
        self.line = line
        super().__init__(f"line {line}: {reason}" if line is not None else reason)
