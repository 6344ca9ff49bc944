"""Scoring predictions against a benchmark dataset: per-joint errors per sequence, then summaries
per sequence, per level and overall.

Predictions are the primary person's two hands (H = 2). A prediction that lacks frames, hands
or cameras is scored as misses (see :mod:`mvhand.core.metrics`): never counted correct in a PCK,
left out of mean errors, counted in the completeness and as false negatives in AP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mvhand.bench.dataset import SequenceData
from mvhand.core import metrics
from mvhand.core.camera import UNIT_SCALE_M
from mvhand.core.data import Hands3D, Keypoints2D
from mvhand.errors import InputError
from mvhand.io.keypoints import load_keypoints
from mvhand.io.results import load_hands3d

log = logging.getLogger(__name__)

PRED3D_FILE = "hands3d.npz"
PRED2D_FILE = "keypoints2d.npz"
N_PRIMARY_HANDS = 2


@dataclass(frozen=True)
class EvalConfig:
    """What is scored.

    Attributes:
        exclude_joints: joint names left out of every metric (the paper: wrist, thumb_cmc).
        pck2d_px: PCK2D thresholds (px).
        pck3d_mm: PCK3D thresholds (mm).
    """

    exclude_joints: tuple[str, ...] = ()
    pck2d_px: tuple[float, ...] = metrics.PCK2D_THRESHOLDS_PX
    pck3d_mm: tuple[float, ...] = metrics.PCK3D_THRESHOLDS_MM

    @property
    def joints(self) -> np.ndarray:
        return metrics.joint_mask(self.exclude_joints)


DEFAULT_EVAL = EvalConfig()


@dataclass(frozen=True, eq=False)
class SequenceScores:
    """Per-joint errors of one method on one sequence (arrays None when not applicable).

    Attributes:
        sequence, level: the sequence's name and complexity level.
        err3d_mm: ``(T, 2, 21)`` 3D errors against the 3D ground truth.
        pa3d_mm: ``(T, 2, 21)`` errors after per-frame Procrustes alignment.
        reproj_px: ``(C, K, 2, 21)`` projected 3D against the keyframe labels.
        err2d_px: ``(C, K, 2, 21)`` 2D predictions against the keyframe labels.
        oks: ``(N,)`` OKS of each 2D hand prediction on labeled images (NaN: no such hand).
        oks_scores: ``(N,)`` their confidences; n_gt: annotated hands (for AP).
        time_s: the method's run time on the sequence, if measured.
        err2d_all_px: ``(C, T, 2, 21)`` 2D predictions against the dense 2D truth of every
            frame (``truth_2d.npz``, rendered sets), visible joints only (NaN elsewhere).
        err2d_hidden_px: the same for the joints that are in the image but hidden.
        err2d_used_all_px: like ``err2d_all_px`` for the 2D the 3D prediction was computed
            from (``hands3d.npz``'s views: after the left/right swap repair), when it has them.
    """

    sequence: str
    level: str
    err3d_mm: np.ndarray | None = None
    pa3d_mm: np.ndarray | None = None
    reproj_px: np.ndarray | None = None
    err2d_px: np.ndarray | None = None
    oks: np.ndarray | None = None
    oks_scores: np.ndarray | None = None
    n_gt: int = 0
    time_s: float | None = None
    notes: list[str] = field(default_factory=list)
    err2d_all_px: np.ndarray | None = None
    err2d_hidden_px: np.ndarray | None = None
    err2d_used_all_px: np.ndarray | None = None


def _fit_frames(points: np.ndarray, n_frames: int, what: str, notes: list[str]) -> np.ndarray:
    """Pad (with NaN: misses) or cut a ``(T, ...)`` prediction to ``n_frames`` frames."""
    T = points.shape[0]
    if T == n_frames:
        return points
    notes.append(f"{what} has {T} frames, the sequence {n_frames}: "
                 + ("missing frames count as misses" if T < n_frames else "extra frames ignored"))
    out = np.full((n_frames, *points.shape[1:]), np.nan)
    out[: min(T, n_frames)] = points[:n_frames]
    return out


def _primary(points: np.ndarray, hands: tuple[str, ...], what: str, notes: list[str]):
    """The left and right hand of a prediction ``(T, H, ...)``, by name; NaN if absent."""
    out = np.full((points.shape[0], N_PRIMARY_HANDS, *points.shape[2:]), np.nan)
    for h, name in enumerate(("left", "right")):
        if name in hands:
            out[:, h] = points[:, hands.index(name)]
        else:
            notes.append(f"{what} has no '{name}' hand: counted as missed")
    return out


def score_3d(seq: SequenceData, pred: Hands3D, cfg: EvalConfig, notes: list[str]):
    """3D errors (mm), PA errors (mm) and reprojection errors (px) of a 3D prediction."""
    T = seq.info.n_frames
    pts = _primary(pred.keypoints3d, pred.hands, "the 3D prediction", notes)
    pts = _fit_frames(pts, T, "the 3D prediction", notes)
    to_mm = UNIT_SCALE_M[pred.units] * 1000.0
    err = pa = reproj = None
    if seq.gt3d is not None:
        gt = seq.gt3d.dense(T, "mm")[:, :N_PRIMARY_HANDS]
        has_gt = np.isfinite(gt).all(-1).any((1, 2))
        err = metrics.point_errors(pts * to_mm, gt, cfg.joints)[has_gt]
        pa = metrics.pa_point_errors(pts[has_gt] * to_mm, gt[has_gt], cfg.joints)
    ann = seq.annotations
    if ann is not None and ann.n_instances:
        rig_pts = pts * (UNIT_SCALE_M[pred.units] / UNIT_SCALE_M[seq.rig.units])
        gt2d = ann.keypoints_px[:, :, :N_PRIMARY_HANDS]
        reproj = metrics.reprojection_errors(seq.rig, rig_pts[ann.frames], gt2d, cfg.joints)
    return err, pa, reproj


def score_2d(seq: SequenceData, pred: Keypoints2D, cfg: EvalConfig, notes: list[str]):
    """2D errors ``(C, K, 2, 21)`` against the labels, and the OKS/AP inputs."""
    ann = seq.annotations
    if ann is None or ann.n_instances == 0:
        return None, None, None, 0
    C, K = len(seq.rig), len(ann.frames)
    kp = np.full((C, K, N_PRIMARY_HANDS, 21, 2), np.nan)
    sc = np.zeros((C, K, N_PRIMARY_HANDS, 21))
    missing = [c for c in seq.rig.names if c not in pred.cameras]
    if missing:
        notes.append(f"2D prediction lacks camera(s) {', '.join(missing)}: counted as missed")
    for c, name in enumerate(seq.rig.names):
        if name in pred.cameras:
            i = pred.cameras.index(name)
            k2 = _fit_frames(pred.keypoints_px[i], seq.info.n_frames, "2D prediction", notes)
            s2 = _fit_frames(pred.scores[i], seq.info.n_frames, "2D scores", notes)
            kp[c] = _primary(k2, pred.hands, "the 2D prediction", notes)[ann.frames]
            sc[c] = np.nan_to_num(_primary(s2, pred.hands, "2D scores", notes)[ann.frames])
    gt = ann.keypoints_px[:, :, :N_PRIMARY_HANDS]
    err = metrics.point_errors(kp, gt, cfg.joints)
    vis = ann.labeled[:, :, :N_PRIMARY_HANDS] & cfg.joints
    annotated = ann.annotated[:, :, :N_PRIMARY_HANDS]
    present = np.isfinite(kp).all(-1).any(-1) & ann.image_labeled[..., None]
    o = metrics.oks(kp[present], gt[present], vis[present], ann.area_px2[:, :, :2][present])
    o = np.where(annotated[present], o, np.nan)
    finite = np.isfinite(kp[present]).all(-1)
    conf = (sc[present] * finite).sum(-1) / np.maximum(finite.sum(-1), 1)
    return err, o, conf, int(annotated.sum())


def score_2d_dense(seq: SequenceData, pred: Keypoints2D, cfg: EvalConfig, notes: list[str]):
    """2D errors on every frame against ``truth_2d.npz``: ``(visible, hidden)`` joints, each
    ``(C, T, 2, 21)`` px, NaN where the joint is not in that group; (None, None) without it."""
    from mvhand.bench.dataset import load_truth2d

    if seq.truth2d_path is None:
        return None, None
    truth = load_truth2d(seq.truth2d_path)
    T = seq.info.n_frames
    kp = np.full((len(seq.rig), T, N_PRIMARY_HANDS, 21, 2), np.nan)
    for c, name in enumerate(seq.rig.names):
        if name in pred.cameras and name in truth.cameras:
            k2 = _fit_frames(pred.keypoints_px[pred.cameras.index(name)], T, "2D prediction",
                             notes)  # fmt: skip
            kp[c] = _primary(k2, pred.hands, "the 2D prediction", notes)
    order = [truth.cameras.index(n) if n in truth.cameras else -1 for n in seq.rig.names]
    gt = truth.keypoints_px[order][:, :, :N_PRIMARY_HANDS]
    vis = truth.visibility[order][:, :, :N_PRIMARY_HANDS]
    vis = np.where(np.array(order)[:, None, None, None] >= 0, vis, 0)
    out = []
    for flag in (2, 1):
        g = np.where((vis == flag)[..., None], gt, np.nan)
        out.append(metrics.point_errors(kp, g, cfg.joints))
    return out[0], out[1]


def score_sequence(seq: SequenceData, pred3d: Hands3D | None = None,
                   pred2d: Keypoints2D | None = None, cfg: EvalConfig = DEFAULT_EVAL,
                   time_s: float | None = None) -> SequenceScores:  # fmt: skip
    """Score a sequence's 3D and/or 2D predictions (either may be None)."""
    notes: list[str] = []
    err = pa = reproj = used = None
    if pred3d is not None:
        err, pa, reproj = score_3d(seq, pred3d, cfg, notes)
        if pred3d.views is not None:
            used, _ = score_2d_dense(seq, pred3d.views.keypoints, cfg, notes)
    err2d = oks = conf = None
    n_gt = 0
    dense = hidden = None
    if pred2d is not None:
        err2d, oks, conf, n_gt = score_2d(seq, pred2d, cfg, notes)
        dense, hidden = score_2d_dense(seq, pred2d, cfg, notes)
    for note in dict.fromkeys(notes):
        log.warning("%s: %s", seq.name, note)
    return SequenceScores(seq.name, seq.info.level, err, pa, reproj, err2d, oks, conf, n_gt,
                          time_s, list(dict.fromkeys(notes)), dense, hidden, used)  # fmt: skip


def missed_3d(seq: SequenceData) -> Hands3D:
    """A prediction with nothing in it: what a sequence without prediction files scores as."""
    shape = (seq.info.n_frames, N_PRIMARY_HANDS, 21)
    return Hands3D(np.full((*shape, 3), np.nan), np.full(shape, np.nan), np.zeros(shape, int),
                   np.zeros(shape), seq.rig.units)  # fmt: skip


def load_predictions(pred_dir: str | Path, seq: SequenceData, single: bool = False
                     ) -> tuple[Hands3D | None, Keypoints2D | None]:  # fmt: skip
    """Read ``<pred_dir>/<sequence>/hands3d.npz`` and ``keypoints2d.npz`` (either optional).

    With ``single`` (a one-sequence dataset) the files may also sit in ``pred_dir`` itself.

    Raises:
        InputError: ``pred_dir`` is missing, or a file exists but is unreadable.
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise InputError("predictions folder not found", pred_dir)
    folder = pred_dir / seq.name
    if not folder.is_dir() and single:
        folder = pred_dir
    p3, p2 = folder / PRED3D_FILE, folder / PRED2D_FILE
    h3 = load_hands3d(p3) if p3.is_file() else None
    k2 = load_keypoints(p2) if p2.is_file() else None
    return h3, k2


# ------------------------------------------------------------------------------ summaries
def _concat(items: list[np.ndarray | None]) -> np.ndarray | None:
    arrays = [a.ravel() for a in items if a is not None]
    return np.concatenate(arrays) if arrays else None


def _pck_columns(errors: np.ndarray | None, thresholds: tuple[float, ...], dim: str,
                 unit: str) -> dict[str, float]:  # fmt: skip
    """``mpck<dim>`` and ``pck<dim>@<t><unit>`` of pooled errors (NaN when there are none)."""
    p = metrics.pck(errors, thresholds) if errors is not None else np.full(len(thresholds), np.nan)
    out = {f"mpck{dim}": float(np.mean(p))}
    out.update({f"pck{dim}@{t:g}{unit}": float(v) for t, v in zip(thresholds, p, strict=True)})
    return out


def summarize(scores: list[SequenceScores], cfg: EvalConfig = DEFAULT_EVAL) -> dict[str, float]:
    """Pooled metrics over sequences: every joint of every frame weighs the same.

    Keys: ``mpjpe_mm``, ``pa_mpjpe_mm``, ``mpck3d``, ``pck3d@<t>mm``, ``completeness3d``,
    ``reproj_px``, ``mje_px``, ``mpck2d``, ``pck2d@<t>px``, ``ap``, ``time_s`` (sum); with a
    dense 2D truth (rendered sets) ``mje_all_px``, ``mpck2d_all`` and ``found2d_all`` (every
    frame, visible joints), ``mje_hidden_px`` (joints hidden in the view) and
    ``mje_used_all_px`` (the 2D the 3D was computed from, after its swap repair); each NaN
    when it does not apply.
    """
    out: dict[str, float] = {}
    e3 = _concat([s.err3d_mm for s in scores])
    out["mpjpe_mm"] = metrics.mean_error(e3) if e3 is not None else np.nan
    pa = _concat([s.pa3d_mm for s in scores])
    out["pa_mpjpe_mm"] = metrics.mean_error(pa) if pa is not None else np.nan
    out.update(_pck_columns(e3, cfg.pck3d_mm, "3d", "mm"))
    out["completeness3d"] = metrics.completeness(e3) if e3 is not None else np.nan
    rp = _concat([s.reproj_px for s in scores])
    out["reproj_px"] = metrics.mean_error(rp) if rp is not None else np.nan
    e2 = _concat([s.err2d_px for s in scores])
    out["mje_px"] = metrics.mean_error(e2) if e2 is not None else np.nan
    out.update(_pck_columns(e2, cfg.pck2d_px, "2d", "px"))
    oks = _concat([s.oks for s in scores])
    conf = _concat([s.oks_scores for s in scores])
    n_gt = sum(s.n_gt for s in scores)
    out["ap"] = metrics.average_precision(oks, conf, n_gt) if oks is not None else np.nan
    dense = _concat([s.err2d_all_px for s in scores])
    out["mje_all_px"] = metrics.mean_error(dense) if dense is not None else np.nan
    out["mpck2d_all"] = _pck_columns(dense, cfg.pck2d_px, "2d", "px")["mpck2d"]
    out["found2d_all"] = (100 * metrics.completeness(dense)) if dense is not None else np.nan
    hidden = _concat([s.err2d_hidden_px for s in scores])
    out["mje_hidden_px"] = metrics.mean_error(hidden) if hidden is not None else np.nan
    used = _concat([s.err2d_used_all_px for s in scores])
    out["mje_used_all_px"] = metrics.mean_error(used) if used is not None else np.nan
    times = [s.time_s for s in scores if s.time_s is not None]
    out["time_s"] = float(sum(times)) if times else np.nan
    return out


def per_joint(scores: list[SequenceScores], attr: str = "err3d_mm") -> np.ndarray:
    """Mean error per joint ``(21,)`` pooled over sequences, frames and hands (NaN: excluded)."""
    arrays = [getattr(s, attr).reshape(-1, 21) for s in scores if getattr(s, attr) is not None]
    if not arrays:
        return np.full(21, np.nan)
    return np.asarray(metrics.mean_error(np.concatenate(arrays), axis=0))


def group_by(scores: list[SequenceScores], key: str) -> dict[str, list[SequenceScores]]:
    """Scores grouped by ``"level"`` or ``"sequence"``, in sorted order."""
    groups: dict[str, list[SequenceScores]] = {}
    for s in sorted(scores, key=lambda s: getattr(s, key)):
        groups.setdefault(getattr(s, key), []).append(s)
    return groups
