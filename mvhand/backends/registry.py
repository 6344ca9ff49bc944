"""The one explicit mapping from backend names to model backends, and their config.

``make_backend(BackendConfig(name="mediapipe"))`` returns a :class:`Backend` holding a person
detector, a whole-body pose estimator and a hand keypoint estimator. Heavy imports (the TFLite
runtime, later torch/mmpose) happen inside the factory, so importing this module is cheap.
``"openmmlab"`` runs an mmdet person detector, an mmpose whole-body model and an mmpose hand
model from configs in the installed wheels (or user files) and user checkpoints in
``model_dir`` (see :mod:`mvhand.backends.openmmlab`).
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
    device: str = param(
        "cpu", "Where the openmmlab backend runs its models: 'cpu', 'cuda' or 'cuda:N' (the "
        "mediapipe backend runs on the CPU and ignores it).")  # fmt: skip
    person_config: str = param(
        "mmdet::rtmdet/rtmdet_m_8xb32-300e_coco.py", "openmmlab: the mmdet detector config, "
        "'mmdet::<path under the wheel's configs>' or a file path; its 'person' class is kept.")
    person_checkpoint: str | None = param(
        None, "openmmlab: the detector's checkpoint file, absolute or relative to model_dir; "
        "None looks in model_dir for the file that the config's model index publishes.")
    body_config: str = param(
        "mmpose::wholebody_2d_keypoint/rtmpose/coco-wholebody/"
        "rtmpose-m_8xb64-270e_coco-wholebody-256x192.py", "openmmlab: the mmpose top-down "
        "whole-body config (COCO-WholeBody, 133 keypoints), 'mmpose::<path>' or a file path.")
    body_checkpoint: str | None = param(
        None, "openmmlab: the whole-body model's checkpoint (as person_checkpoint).")
    hand_config: str = param(
        "mmpose::hand_2d_keypoint/rtmpose/hand5/rtmpose-m_8xb256-210e_hand5-256x256.py",
        "openmmlab: the mmpose top-down hand config (21 keypoints), 'mmpose::<path>' or a file "
        "path.")  # fmt: skip
    hand_checkpoint: str | None = param(
        None, "openmmlab: the hand model's checkpoint (as person_checkpoint).")


@dataclass
class Backend:
    """The three models of one backend (not thread-safe: one instance per worker)."""

    person: PersonDetector
    body: BodyPoseEstimator
    hand: HandKeypointEstimator
    name: str = ""
    #: optional hand (palm) detector for the hand-first path (hands without a body)
    palm: HandDetector | None = None


def _make_mediapipe(cfg: BackendConfig) -> Backend:
    from mvhand.backends.mediapipe_backend import make_mediapipe_backend

    return make_mediapipe_backend(cfg)


def _make_openmmlab(cfg: BackendConfig) -> Backend:
    from mvhand.backends.openmmlab import make_openmmlab_backend

    return make_openmmlab_backend(cfg)


#: Backend name -> factory. The factory imports its heavy dependencies itself.
BACKENDS: dict[str, Callable[[BackendConfig], Backend]] = {
    "mediapipe": _make_mediapipe,
    "openmmlab": _make_openmmlab,
}


def make_backend(cfg: BackendConfig | None = None) -> Backend:
    """Build the backend named by ``cfg.name``.

    Raises:
        ConfigError: the name is not a known backend.
        MissingDependencyError: the backend's packages are not installed (the message gives
            the pip command).
        ModelError: a model file is missing or fails to load.
    """
    cfg = BackendConfig() if cfg is None else cfg
    factory = BACKENDS.get(cfg.name)
    if factory is None:
        raise ConfigError(f"'backend.name' = {cfg.name!r} is not a known 2D backend; "
                          f"known: {', '.join(sorted(BACKENDS))}")  # fmt: skip
    return factory(cfg)
