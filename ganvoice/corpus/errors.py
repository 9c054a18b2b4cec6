"""One-line errors of the corpus builder (the CLI prints them as ``error: ...``)."""

from ganvoice.errors import GanvoiceError


class SourceError(GanvoiceError):
    """A corpus source that cannot be used: unknown name, missing package or tool, empty folder."""


class ManifestError(GanvoiceError):
    """A manifest that is missing or has a malformed line."""
