"""The one explicit mapping from backend names to model backends, and their config.

``make_backend(BackendConfig(name="mediapipe"))`` returns a :class:`Backend` holding a person
detector, a whole-body pose estimator and a hand keypoint estimator. Heavy imports (the TFLite
runtime, later torch/mmpose) happen inside the factory, so importing this module is cheap.
A later backend (e.g. OpenMMLab RTMDet + RTMW + RTMPose-hand from user checkpoints in
``model_dir``) is one more entry in ``BACKENDS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mvhand.backends.base import (
    BodyPoseEstimator,
    HandDetector,
    HandKeypointEstimator,
    PersonDetector,
)
from mvhand.config import param
from mvhand.errors import ConfigError


@dataclass(frozen=True)
class BackendConfig:
    """Which 2D model backend to use and how to run it."""

    name: str = param("mediapipe", "2D model backend; one of the keys of BACKENDS.")
    num_threads: int = param(1, "CPU threads per model (1 = one core per camera worker).", ge=1)
    model_dir: str | None = param(
        None, "Folder with user-supplied model checkpoints (backends that need them); the "
        "mediapipe backend uses the models inside its wheel and ignores it.")  # fmt: skip
    person_threshold: float = param(
        0.5, "Minimum person detector score to report a person.", ge=0.0, le=1.0)
    max_people: int = param(5, "At most this many people per frame, best first.", ge=1)
    body_threshold: float = param(
        0.5, "Minimum whole-body model presence score to report a body pose.", ge=0.0, le=1.0)


@dataclass
class Backend:
    """The three models of one backend (not thread-safe: one instance per worker)."""

    person: PersonDetector
    body: BodyPoseEstimator
    hand: HandKeypointEstimator
    name: str = ""


def _make_mediapipe(cfg: BackendConfig) -> Backend:
    from mvhand.backends.mediapipe_backend import make_mediapipe_backend

    return make_mediapipe_backend(cfg)


#: Backend name -> factory. The factory imports its heavy dependencies itself.
BACKENDS: dict[str, Callable[[BackendConfig], Backend]] = {
    "mediapipe": _make_mediapipe,
}


def make_backend(cfg: BackendConfig | None = None) -> Backend:
    """Build the backend named by ``cfg.name``.

    Raises:
        ConfigError: the name is not a known backend.
        MissingDependencyError: the backend's packages are not installed (the message gives
            the pip command).
        ModelError: a model file is missing or fails to load.
    #: optional hand (palm) detector for the hand-first path (hands without a body)
    palm: HandDetector | None = None
    """
    cfg = BackendConfig() if cfg is None else cfg
    factory = BACKENDS.get(cfg.name)
    if factory is None:
        raise ConfigError(f"'backend.name' = {cfg.name!r} is not a known 2D backend; "
                          f"known: {', '.join(sorted(BACKENDS))}")  # fmt: skip
    return factory(cfg)
