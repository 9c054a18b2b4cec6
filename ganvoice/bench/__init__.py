"""``ganvoice-bench``: latency and throughput benchmarks of exported models (ONNX Runtime, torch-free).

Subcommands (see :mod:`ganvoice.bench.cli`): ``throughput``, ``stream``, ``first-audio``, ``budget``,
``xruns``, ``compare`` and ``all``. Each returns a :class:`~ganvoice.bench.report.Result`: JSON with
stable keys (and the machine it ran on), a Markdown table, and optional PNG plots. Torch is imported only
to export registered variants with random weights (and for the eager comparison rows) when it is installed.
"""
