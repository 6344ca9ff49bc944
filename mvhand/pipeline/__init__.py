"""The ``mvhand run`` orchestration: config, per-camera 2D with its cache, and the run."""
