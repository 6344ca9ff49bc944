"""Stage 4: hand tracking per camera and hand, seeded and restarted as in the paper.

Schedule (:func:`plan_tracks`, pure and model-free): seed at the frame whose body-model hand
confidence is highest (and above ``seed_min_confidence``), propagate forward and backward until
the track fails or meets a frame another track of this hand already holds, remove the track's
frames from the candidates, and restart from the best remaining candidate until none is left.

The tracker (``method``), chosen by measurement:

- ``"keypoints"`` (default): the crop for frame t comes from the hand keypoints found at the
  neighbouring frame (as MediaPipe's own hand tracker does); if the hand model does not find a
  hand there, the body model's crop of frame t is tried. A result must keep the hand model's
  presence above ``min_presence``, stay within ``max_jump`` crop sides of the previous wrist,
  and, where the body sees that hand confidently, within ``max_body_distance`` crop sides of
  the body's wrist (so a track cannot drift onto the other hand).
- ``"body"``: the body model's crop of every frame (the untracked baseline; the same checks).

Why not an image tracker: OpenCV's CSRT costs 33 ms per update on a 60 px hand in a 1088x1920
frame here, more than the hand model itself (~10 ms) and more than half of the 60 ms per
camera-frame budget for two hands; KCF (2 ms) tracks an axis-aligned box of fixed size and
gives no failure signal better than the hand model's own presence score. The hand model run on
the previous frame's keypoints is both the tracker and the keypoint estimate, so each tracked
frame costs about one hand-model call.

Measured on the Pose2Sim demo (4 cameras x 100 frames, triangulation only, before the
optimizer): "body" gives 50 frames with both hands in 3D (median reprojection 7.3 / 5.7 px,
left / right), "keypoints" 69 frames (7.1 / 6.4 px) at ``min_presence`` 0.5; with the re-crop
step and ``min_presence`` 0.3 "keypoints" reaches 91 frames (7.6 / 7.0 px), and 0.2 adds only
2 frames, so 0.3 is the default. The hand model's presence on these small (30-60 px), motion-
blurred hands is often 0.3-0.5 on frames where its keypoints are right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mvhand.backends.base import HandCrop, HandKeypoints
from mvhand.config import param
from mvhand.core.crops import BodyHand, crop_from_hand_keypoints

#: Source codes in :attr:`TrackResult.source`.
SOURCE_NONE, SOURCE_BODY, SOURCE_TRACK = 0, 1, 2


@dataclass(frozen=True)
class TrackingConfig:
    """Hand tracking (the ``[tracking]`` section)."""

    method: str = param("keypoints", "how a track follows the hand from frame to frame: "
                        "'keypoints' (crop from the neighbouring frame's hand keypoints, body "
                        "crop as fallback) or 'body' (body crop every frame)",
                        choices=("keypoints", "body"))  # fmt: skip
    seed_min_confidence: float = param(
        0.3, "a frame can seed a track when the body model's mean hand-joint confidence "
        "exceeds this (the paper's 0.3)", ge=0.0, le=1.0)
    min_presence: float = param(
        0.3, "the hand model's hand-presence score below which a frame ends the track",
        ge=0.0, le=1.0)
    max_jump: float = param(
        1.0, "largest wrist move between neighbouring frames, in crop sides", gt=0.0)
    max_body_distance: float = param(
        1.5, "largest distance of the tracked wrist from a confident body wrist, in crop sides",
        gt=0.0)
    body_check_confidence: float = param(
        0.6, "body hand confidence from which the body's wrist is used to check a track",
        ge=0.0, le=1.0)
    refine: bool = param(
        True, "after a hit on a body-model crop, re-crop from the hand keypoints found and run "
        "the hand model again (MediaPipe's landmarks-to-ROI step); keeps the re-run if found")
    crop_min_score: float = param(
        0.1, "joints scoring at most this are ignored when the next crop is made", ge=0.0,
        le=1.0)
    patch_scale: float = param(
        2.5, "side of the image region kept per hand and frame for tracking, in body hand "
        "crop sides", ge=1.0, le=10.0)
    patch_min_px: int = param(160, "smallest side of a kept hand region, pixels", ge=32)
    patch_max_px: int = param(640, "largest side of a kept hand region, pixels", ge=32)


@dataclass(frozen=True, eq=False)
class TrackResult:
    """Tracked hands of one camera over T processed frames.

    Attributes:
        keypoints_px: ``(T, 2, 21, 2)`` full-image pixels, NaN where untracked.
        scores: ``(T, 2, 21)`` the hand model's joint scores, 0 where untracked.
        presence: ``(T, 2)`` the hand model's presence score, 0 where untracked.
        track_id: ``(T, 2)`` index of the track per hand (in seeding order), -1 where none.
        source: ``(T, 2)`` which crop gave the keypoints (``SOURCE_*``).
        n_model_calls: hand-model calls made.
    """

    keypoints_px: np.ndarray
    scores: np.ndarray
    presence: np.ndarray
    track_id: np.ndarray
    source: np.ndarray
    n_model_calls: int


# A tracker state is whatever the seed/step callables return; None means "failed".
SeedFn = Callable[[int], object | None]
StepFn = Callable[[int, object], object | None]


def plan_tracks(confidence: np.ndarray, seed: SeedFn, step: StepFn, min_confidence: float
                ) -> tuple[np.ndarray, dict[int, object]]:  # fmt: skip
    """The paper's seed-propagate-restart schedule for one hand.

    Args:
        confidence: ``(T,)`` body-model hand confidence per frame (NaN counts as 0).
        seed: ``seed(t)`` starts a track at frame t, returning its state or None (no hand).
        step: ``step(t, previous_state)`` tracks into frame t, returning the new state or
            None when the track fails there.
        min_confidence: frames with confidence strictly above this are candidate seeds.

    Returns:
        ``track_id (T,)`` (-1 where no track) and the state of every tracked frame.
    """
    conf = np.nan_to_num(np.asarray(confidence, dtype=float), nan=0.0)
    T = conf.shape[0]
    track_id = np.full(T, -1, dtype=np.int64)
    states: dict[int, object] = {}
    candidates = conf > min_confidence
    n_tracks = 0
    while candidates.any():
        t0 = int(np.argmax(np.where(candidates, conf, -np.inf)))
        candidates[t0] = False
        state = seed(t0)
        if state is None:
            continue
        track_id[t0], states[t0] = n_tracks, state
        for direction in (1, -1):
            prev, t = state, t0 + direction
            while 0 <= t < T and track_id[t] < 0:
                prev = step(t, prev)
                if prev is None:
                    break
                track_id[t], states[t] = n_tracks, prev
                t += direction
        candidates &= track_id < 0
        n_tracks += 1
    return track_id, states


@dataclass(frozen=True, eq=False)
class _State:
    kp: HandKeypoints
    crop: HandCrop
    source: int


def run_track(body_hands: Sequence[tuple[BodyHand | None, BodyHand | None]],
              estimate: Callable[[int, HandCrop], HandKeypoints | None],
              cfg: TrackingConfig = TrackingConfig()) -> TrackResult:  # fmt: skip
    """Track both hands of one camera.

    Args:
        body_hands: per processed frame, the body stage's (left, right) hand estimates.
        estimate: ``estimate(t, crop)`` runs the hand model on ``crop`` of frame position t
            (full-image pixels in and out), or returns None when that frame has no image.
        cfg: tracking settings.
    """
    T = len(body_hands)
    kp = np.full((T, 2, 21, 2), np.nan)
    sc = np.zeros((T, 2, 21))
    pres = np.zeros((T, 2))
    tid = np.full((T, 2), -1, dtype=np.int64)
    src = np.zeros((T, 2), dtype=np.int64)
    calls = [0]

    def run(t: int, crop: HandCrop) -> HandKeypoints | None:
        calls[0] += 1
        return estimate(t, crop)

    for h in range(2):
        bh = [frame[h] for frame in body_hands]
        conf = np.array([0.0 if b is None else b.confidence for b in bh])
        tracker = _HandTracker(bh, run, cfg)
        tid[:, h], states = plan_tracks(conf, tracker.seed, tracker.step, cfg.seed_min_confidence)
        for t, st in states.items():
            kp[t, h] = st.kp.keypoints_px
            sc[t, h] = st.kp.scores
            pres[t, h] = st.kp.presence
            src[t, h] = st.source
    return TrackResult(kp, sc, pres, tid, src, calls[0])


class _HandTracker:
    """Seed and step functions for one hand (see the module docstring)."""

    def __init__(self, body: list[BodyHand | None], run, cfg: TrackingConfig) -> None:
        self.body, self.run, self.cfg = body, run, cfg

    def _found(self, res: HandKeypoints | None) -> bool:
        return res is not None and res.presence >= self.cfg.min_presence and bool(
            np.isfinite(res.keypoints_px[0]).all())

    def _near_body(self, t: int, res: HandKeypoints, side: float) -> bool:
        b = self.body[t]
        if b is None or b.confidence < self.cfg.body_check_confidence:
            return True
        if not np.isfinite(b.keypoints_px[0]).all():
            return True
        dist = float(np.hypot(*(res.keypoints_px[0] - b.keypoints_px[0])))
        return dist <= self.cfg.max_body_distance * side

    def _refined(self, t: int, res: HandKeypoints, crop: HandCrop) -> tuple[HandKeypoints,
                                                                             HandCrop]:
        """The re-run on a crop from ``res``'s keypoints if it finds the hand, else ``res``."""
        if not self.cfg.refine:
            return res, crop
        crop2 = crop_from_hand_keypoints(res.keypoints_px, res.scores,
                                         min_score=self.cfg.crop_min_score)  # fmt: skip
        if crop2 is None:
            return res, crop
        res2 = self.run(t, crop2)
        return (res2, crop2) if self._found(res2) else (res, crop)

    def seed(self, t: int) -> _State | None:
        b = self.body[t]
        if b is None:
            return None
        res = self.run(t, b.crop)
        if not self._found(res):
            return None
        res, crop = self._refined(t, res, b.crop)
        return _State(res, crop, SOURCE_BODY)

    def step(self, t: int, prev: _State) -> _State | None:
        side = float(prev.crop.size_px)
        tries: list[tuple[HandCrop, int]] = []
        if self.cfg.method == "keypoints":
            crop = crop_from_hand_keypoints(prev.kp.keypoints_px, prev.kp.scores,
                                            min_score=self.cfg.crop_min_score)  # fmt: skip
            if crop is not None:
                tries.append((crop, SOURCE_TRACK))
        if self.body[t] is not None:
            tries.append((self.body[t].crop, SOURCE_BODY))
        for crop, source in tries:
            res = self.run(t, crop)
            if not self._found(res):
                continue
            if source == SOURCE_BODY:
                res, crop = self._refined(t, res, crop)
            jump = float(np.hypot(*(res.keypoints_px[0] - prev.kp.keypoints_px[0])))
            if jump <= self.cfg.max_jump * side and self._near_body(t, res, side):
                return _State(res, crop, source)
        return None
