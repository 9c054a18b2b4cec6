"""The speech corpus builder: sources -> resampled mono clips + ``manifest.jsonl`` (see ``manifest``)."""
