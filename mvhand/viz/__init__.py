"""Visualisation of runs: Open3D viewer and headless renders, 2D overlays, summary figure.

- :mod:`mvhand.viz.rundata`: read a run folder (3D, 2D, calibration, meshes) and check that
  the calibration matches it.
- :mod:`mvhand.viz.geometry` / :mod:`mvhand.viz.scene`: the 3D scene as plain arrays.
- :mod:`mvhand.viz.render`: headless renders (``mvhand render``); :mod:`mvhand.viz.viewer`:
  the interactive window (``mvhand view``). Both need the optional ``open3d`` (``viz`` extra),
  imported only when used.
- :mod:`mvhand.viz.overlay`: per-camera overlay videos (``mvhand overlay``, ``run --overlay``).
- :mod:`mvhand.viz.summary`: the one-page PNG summary of a run.
"""
