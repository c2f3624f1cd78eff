"""User-facing errors: each says what was wrong and what to do; the CLI prints it as one line."""


class MicrosrError(Exception):
    """Base class of errors caused by the user's input, not by a bug in microsr."""


class InputError(MicrosrError):
    """An input file or array cannot be used as given (shape, frame count, NaN, unreadable)."""


class OutputExistsError(MicrosrError):
    """The output path exists and ``overwrite`` was not asked for."""


class EstimationError(MicrosrError):
    """Pattern parameters could not be estimated reliably from the data."""
