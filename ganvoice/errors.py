"""User-facing errors: each carries one line that the CLI prints without a traceback."""


class GanvoiceError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class ModelFormatError(GanvoiceError):
    """A model file that is missing, not ONNX, foreign (no ganvoice metadata) or from a newer format."""


class AudioError(GanvoiceError):
    """Audio that is missing, empty, corrupt or not finite."""


class SpecMismatchError(GanvoiceError):
    """Input whose sample rate or mel spec does not match the model's."""


class DeviceError(GanvoiceError):
    """No audio device, an unknown device, or an unavailable execution provider."""


def first_line(text: object) -> str:
    """The first non-blank line of ``str(text)`` (an exception's message), for one-line errors.

    An exception with an empty message gives its type's name; other empty text, "unknown error".
    """
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    if lines:
        return lines[0]
    return type(text).__name__ if isinstance(text, BaseException) else "unknown error"


#: Notes already shown (one per old name and place, per process).
_RENAMED_SHOWN: dict = {}


def renamed(old: str, new: str, where: str) -> None:
    """The one-line note for an old name that still works: ``WHERE: 'OLD' is now 'NEW'``.

    A :class:`FutureWarning` (so a user running a command sees it, once, and a test can check for it),
    attributed to ``ganvoice`` rather than to a source line, so that it stays one line.
    """
    import warnings

    text = f"{where}: {old!r} is now {new!r} (the old name still works)"
    warnings.warn_explicit(text, FutureWarning, "ganvoice", 0, module="ganvoice", registry=_RENAMED_SHOWN)
