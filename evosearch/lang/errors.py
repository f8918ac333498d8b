"""The one exception that bad program input raises, anywhere in evosearch."""


class ProgramError(ValueError):
    """A program text or structure is not in the language. ``line`` is 1-based where known."""

    def __init__(self, reason: str, line: int | None = None, source: str | None = None):
        self.reason = reason
        self.line = line
        self.source = source
        where = ", ".join(x for x in (source, f"line {line}" if line is not None else None) if x)
        super().__init__(f"{where}: {reason}" if where else reason)
