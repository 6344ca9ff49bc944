"""Settings of the spatiotemporal hand optimizer, every weight with its unit and noise model."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from mvhand.config import param
from mvhand.errors import ConfigError

#: Largest allowed value of any weight: beyond it the other terms vanish in double precision
#: (1e308 or inf would silently turn the cost into NaN).
MAX_WEIGHT = 1e6


@dataclass(frozen=True)
class OptimizerConfig:
    """Settings of the spatiotemporal hand optimizer.

    The noise model: a view's 2D joint is off by Gaussian noise of ``sigma / sqrt(score)`` px
    per axis, ``sigma`` estimated from the data per camera and joint group (``noise_model``);
    reprojection residuals are divided by it, so every other term is weighed against
    "one standard deviation of this camera's detector", whatever the rig's pixel scale.
    """

    enabled: bool = param(True, "Run the optimizer after triangulation.")
    noise_model: str = param(
        "estimated",
        "2D noise per view: 'estimated' divides each reprojection residual by the robust "
        "residual scale (px) of its camera and joint group after triangulation (with the "
        "detector score: sigma / sqrt(score)); 'fixed' uses noise_px for every view.",
        choices=("estimated", "fixed"),
    )
    noise_px: float = param(
        2.0, "2D noise (px per axis, at score 1) of the 'fixed' noise model, and the fallback "
        "for cameras with too few residuals to estimate it.", gt=0, le=1e3,
    )  # fmt: skip
    min_noise_px: float = param(
        0.3, "Smallest 2D noise (px) the estimate may give (sub-pixel rounding of detections).",
        gt=0, le=1e3,
    )  # fmt: skip
    loss: str = param(
        "soft_l1",
        "Robust loss on reprojection residuals: soft_l1, huber, cauchy (redescending: a gross "
        "outlier's pull fades), or linear (plain least squares).",
        choices=("soft_l1", "huber", "cauchy", "linear"),
    )
    loss_scale: float = param(
        3.0, "Reprojection residual (in noise standard deviations) beyond which the robust loss "
        "grows sub-quadratically.", gt=0, le=1e3,
    )  # fmt: skip
    w_reprojection: float = param(
        1.0, "Weight of squared score-weighted reprojection residuals in noise units.",
        ge=0, le=MAX_WEIGHT,
    )  # fmt: skip
    # 0.3 with the robust limit 3 below, measured leave-one-camera-out (benchmarks/bench_real.py,
    # median px; 0.1 quadratic before): handmocap 1.319 (1.332), Pose2Sim single 18.23 (18.27),
    # Pose2Sim multi person-hands pooled 14.33 (14.63); rendered L0/L1 MPJPE 7.76/7.92 mm
    # (7.75/7.88); synthetic L0-L2 1.50/3.38/4.28 mm (1.53/3.35/4.23).
    w_smoothness: float = param(
        0.3,
        "Weight of each joint's squared acceleration (velocity) in units of 1000 mm/s^2 "
        "(100 mm/s), for a hand that moves at that reference rate (see smoothness_adaptivity); "
        "cross-validation scales it per hand.",
        ge=0, le=MAX_WEIGHT,
    )  # fmt: skip
    smoothness_adaptivity: float = param(
        1.5,
        "Exponent p: the smoothness weight is multiplied by (reference / measured motion)^p, "
        "the motion being each hand's noise-corrected RMS acceleration (velocity) in the "
        "initial 3D, so slow hands are smoothed hard and fast ones lightly; 0 = fixed weight.",
        ge=0, le=4,
    )  # fmt: skip
    # 3 (see w_smoothness): limits 1 / 10 gave handmocap 1.320 / 1.320, Pose2Sim single
    # 18.20 / 18.56, multi 14.67 / 14.16 px.
    smoothness_robust_limit: float = param(
        3.0,
        "Robust smoothness: a joint's acceleration (velocity) above this many reference units "
        "(1000 mm/s^2, 100 mm/s) is penalised linearly instead of quadratically, so sudden real "
        "movements survive while jitter is still smoothed; 0 = plain quadratic smoothness.",
        ge=0, le=1e6,
    )  # fmt: skip
    smoothness: str = param(
        "acceleration",
        "Temporal smoothness on the first (velocity) or second (acceleration) frame difference.",
        choices=("velocity", "acceleration"),
    )
    w_bone: float = param(
        1.0,
        "Weight of the bone-length prior: squared deviation of each bone from its length (one "
        "per bone and hand, shared by the sequence) in units of bone_sigma_mm; 1 = the prior "
        "as stated; cross-validation scales it per hand.",
        ge=0, le=MAX_WEIGHT,
    )  # fmt: skip
    bone_sigma_mm: float = param(
        3.0,
        "How much a detected bone's length varies between frames of a real hand (mm): the 2D "
        "model's joint placement shifts with pose (measured on handmocap: 3 mm).",
        gt=0, le=1e3,
    )  # fmt: skip
    bone_robust_mm: float = param(
        1.0,
        "Robust bone term: deviations from the shared length beyond this (mm) are penalised "
        "linearly, tolerating frames where the detector misplaces a joint; 0 = quadratic.",
        ge=0, le=1e3,
    )  # fmt: skip
    w_shape: float = param(
        0.0,
        "Weight of the paper's rotation-invariant shape term: squared change (mm^2) of the "
        "wrist-centred hand from the previous frame after Procrustes alignment, per unit of "
        "the reprojection term.",
        ge=0, le=MAX_WEIGHT,
    )  # fmt: skip
    w_angle_limits: float = param(
        0.0,
        "Weight of squared distances (mm^2) by which a finger's PIP/DIP joint bends past "
        "max_hyperextension_deg or max_sideways_deg (thumb excluded), per unit of reprojection.",
        ge=0, le=MAX_WEIGHT,
    )  # fmt: skip
    max_hyperextension_deg: float = param(
        10.0, "Backward bending of PIP/DIP joints allowed before the angle term acts (degrees).",
        ge=0, le=90,
    )  # fmt: skip
    max_sideways_deg: float = param(
        30.0, "Sideways bending of PIP/DIP joints allowed before the angle term acts (degrees).",
        ge=0, le=90,
    )  # fmt: skip
    weight_selection: str = param(
        "cross_validation",
        "How the smoothness and bone weights are chosen per hand: 'fixed' uses w_smoothness "
        "and w_bone; 'cross_validation' scales each by the power of 4 whose fits best predict "
        "held-out cameras (leave one camera out with cv_min_cameras to 7 cameras seeing the "
        "hand, alternate halves with 8 or more; fewer: fixed).",
        choices=("fixed", "cross_validation"),
    )
    cv_min_cameras: int = param(
        4, "Cameras that must see a hand for cross-validation (with fewer the weights stay "
        "fixed): leave-one-camera-out fits from 2 cameras chose worse weights than the fixed "
        "ones on handmocap and Pose2Sim (benchmarks/bench_real.py).", ge=3, le=1000,
    )  # fmt: skip
    cv_loss: bool = param(
        True, "Cross-validation also tries the redescending 'cauchy' loss at loss_scale 2, 1.5, "
        "1, then 0.7 (each kept only if the held-out error falls): on the rendered 12-camera "
        "benchmark with mislabelled views it lowered MPJPE 7.76 -> 6.63 mm (L0), 7.92 -> 6.95 "
        "(L1); a fixed cauchy 1.5 would raise the clean synthetic L0 1.53 -> 2.27 mm, where "
        "cross-validation keeps soft_l1 (as on the 4-camera real rigs).",
    )  # fmt: skip
    cv_frames: int = param(
        60, "Frames (from the middle of the sequence) that cross-validation fits: its cost is "
        "bounded by this, not by the sequence length.", ge=10, le=100000,
    )  # fmt: skip
    window: int = param(300, "Frames per optimization window; memory grows linearly with it.",
                        ge=3, le=100000)  # fmt: skip
    overlap: int = param(
        30, "Frames shared by consecutive windows, blended linearly; must be < window.",
        ge=0, le=100000,
    )  # fmt: skip
    max_iterations: int = param(15, "Levenberg-Marquardt iterations per window at most.",
                                ge=1, le=1000)  # fmt: skip
    tolerance: float = param(
        1e-4, "Stop when an iteration lowers the cost by less than this fraction.", gt=0, le=1
    )
    max_gap_frames: int = param(
        10,
        "Joints missing for at most this many consecutive frames are bridged by smoothness and "
        "bones; longer gaps, and gaps at the ends of the sequence, stay NaN.",
        ge=0, le=100000,
    )  # fmt: skip

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_field(f, getattr(self, f.name))
        if self.overlap >= self.window:
            raise ConfigError(
                f"optimizer 'overlap' ({self.overlap}) must be smaller than 'window' "
                f"({self.window}) frames"
            )

    def weights(self) -> dict[str, float]:
        """The weights, by name (for messages and reports)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name.startswith("w_")}  # fmt: skip


def _check_field(f: dataclasses.Field, value: object) -> None:
    """ConfigError naming the key if a number is not finite or outside its declared range
    (the TOML loader checks ranges too; this also covers configs built in code)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not math.isfinite(value):
        raise ConfigError(f"optimizer '{f.name}' must be a finite number, got {value!r}")
    checks = (("ge", ">=", value >= (f.metadata.get("ge") or 0)),
              ("le", "<=", value <= (f.metadata.get("le") or 0)),
              ("gt", ">", value > (f.metadata.get("gt") or 0)),
              ("lt", "<", value < (f.metadata.get("lt") or 0)))  # fmt: skip
    for key, sym, ok in checks:
        if f.metadata.get(key) is not None and not ok:
            raise ConfigError(
                f"optimizer '{f.name}' must be {sym} {f.metadata[key]}, got {value!r}"
            )


#: The default settings (one instance, for function defaults).
DEFAULT_CONFIG = OptimizerConfig()
