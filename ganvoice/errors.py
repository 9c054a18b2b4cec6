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
