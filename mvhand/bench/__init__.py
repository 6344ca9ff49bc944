"""The benchmark harness: dataset format, loaders and validator, synthetic OR benchmark,
evaluation against annotations and 3D ground truth, baselines, and reports.

The format is documented in ``benchmark_data/README.md``. Modules:

- :mod:`mvhand.bench.dataset`: the on-disk format, loading and writing.
- :mod:`mvhand.bench.validate`: ``mvhand eval --check``: every problem, with file and entry.
- :mod:`mvhand.bench.synth`: synthetic OR sequences with exact ground truth.
- :mod:`mvhand.bench.evaluate`: scores of predictions against a dataset.
- :mod:`mvhand.bench.baselines`: DLT, robust triangulation, optimizer ablations, aniposelib.
- :mod:`mvhand.bench.report`: Markdown / CSV tables and PNG plots.
"""
