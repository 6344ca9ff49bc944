"""Read a run's output folder for the viewer, the renderer, the overlays and the summary.

A run folder (written by ``mvhand run`` / ``mvhand triangulate``) holds ``hands3d.npz`` and
usually ``keypoints2d.npz``, ``calibration.toml`` and ``report.json``. After a MANO fit
(``mvhand fit``, :mod:`mvhand.fit.output`) it may also hold ``mesh_<hand>.npz`` per hand:
``vertices`` ``(T, V, 3)`` in the 3D results' units, NaN where not fitted, and ``faces``
``(F, 3)``; those meshes are drawn. A run of several people also holds ``hands3d_people.npz``
(:mod:`mvhand.io.people`): then every person is drawn, each in its colour.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mvhand.core.camera import UNIT_SCALE_M, Rig
from mvhand.core.data import Hands3D, Keypoints2D
from mvhand.core.skeleton import N_JOINTS
from mvhand.errors import CalibrationError, InputError
from mvhand.io.keypoints import load_keypoints
from mvhand.io.people import PeopleFile, load_people
from mvhand.io.results import load_hands3d
from mvhand.io.runfolder import RunFolder

log = logging.getLogger(__name__)

#: A calibration "matches" the 3D results when, in the cameras that saw a joint, its
#: reprojection lands within this many pixels of the 2D detection for most joints ...
MATCH_MEDIAN_PX = 50.0
#: ... or, without 2D keypoints, when at least this share of the 3D joints lies in front of
#: and inside the image of two or more cameras.
MATCH_VISIBLE_SHARE = 0.5


@dataclass(frozen=True, eq=False)
class HandMeshes:
    """Fitted hand meshes over a sequence, per hand (None where a hand has no mesh).

    Attributes:
        vertices: per hand ``(T, V, 3)`` in the scene's units, NaN where not fitted.
        faces: per hand ``(F, 3)`` vertex indices.
    """

    vertices: tuple[np.ndarray | None, ...]
    faces: tuple[np.ndarray | None, ...]


@dataclass(frozen=True, eq=False)
class RunData:
    """Everything the visualisations read from a run folder.

    Attributes:
        folder: the run folder.
        hands3d: the 3D hands (``T`` frames).
        rig: the calibration, in the 3D results' units.
        keypoints2d: the 2D keypoints, or None.
        meshes: fitted hand meshes, or None.
        fps: frames per second of the results (None: unknown).
        frame_indices: ``(T,)`` the video frame of each result frame.
        people: everybody's 3D (``hands3d_people.npz``, in the 3D results' units), or None.
    """

    folder: Path
    hands3d: Hands3D
    rig: Rig
    keypoints2d: Keypoints2D | None
    meshes: HandMeshes | None
    fps: float | None
    frame_indices: np.ndarray
    people: PeopleFile | None = None

    @property
    def n_frames(self) -> int:
        return self.hands3d.keypoints3d.shape[0]


def load_run(folder: str | Path, calib: str | Path | None = None, check: bool = True,
             people: bool = True) -> RunData:  # fmt: skip
    """Read a run folder.

    Args:
        folder: the run's output folder.
        calib: calibration file to use instead of ``folder/calibration.toml`` (any format
            ``mvhand calib convert`` reads).
        check: verify that the calibration matches the 3D results (:func:`check_calibration`).
        people: also read ``hands3d_people.npz`` where the folder has one (False: the
            single-person view of the run).

    Raises:
        InputError: the folder or its 3D results are missing or unreadable.
        CalibrationError: no calibration, or one that does not match the results.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("run folder not found (give the output folder of `mvhand run`)", folder)
    h3d_path = RunFolder(folder).path("hands3d")
    pf = None
    if h3d_path.is_file():
        hands3d = load_hands3d(h3d_path)
    elif people and RunFolder(folder).path("hands3d_people").is_file():  # `mvhand people`
        pf = load_people(RunFolder(folder).path("hands3d_people"))
        hands3d = person_hands3d(pf)
    else:
        raise InputError("this folder holds no 3D results (hands3d.npz); give the output "
                         "folder of `mvhand run` or `mvhand triangulate`", folder)  # fmt: skip
    kp_path = RunFolder(folder).path("keypoints2d")
    keypoints2d = load_keypoints(kp_path) if kp_path.is_file() else None
    if hands3d.views is not None:  # the repaired 2D the 3D was made from (left/right fixed)
        keypoints2d = hands3d.views.keypoints
    rig = _load_rig(folder, calib, hands3d.units)
    if check:
        check_calibration(rig, hands3d, keypoints2d, calib or folder / "calibration.toml")
    report = _read_report(folder)
    pf = load_run_people(folder, hands3d) if people and pf is None else pf
    fps = _fps(h3d_path, keypoints2d, report)
    if fps is None and pf is not None and pf.detections is not None:
        fps = pf.detections.fps
    frames = _frame_indices(report, hands3d.keypoints3d.shape[0])
    if pf is not None and pf.frames is not None:
        frames = np.asarray(pf.frames, np.int64)
    meshes = load_meshes(folder, hands3d)
    return RunData(folder, hands3d, rig, keypoints2d, meshes, fps, frames, pf)


def person_hands3d(people: PeopleFile, person_id: int | None = None) -> Hands3D:
    """One person's hands as a :class:`Hands3D`: ``person_id``, else the file's primary
    person, else the one with the most joints in 3D (a folder of ``mvhand people`` holds no
    ``hands3d.npz``; the scene is then centred on everybody anyway)."""
    res = people.result
    ids = res.person_ids.tolist()
    pid = person_id if person_id is not None else people.primary
    if pid in ids:
        p = ids.index(pid)
    else:
        p = int(np.argmax(np.isfinite(res.hands3d).all(-1).sum((0, 2, 3)))) if ids else -1
    if p < 0:
        nan = np.full((res.n_frames, 2, N_JOINTS, 3), np.nan)
        return Hands3D(nan, nan[..., 0], np.zeros(nan.shape[:-1]), np.zeros(nan.shape[:-1]),
                       res.units)  # fmt: skip
    pts = res.hands3d[:, p]
    score = np.isfinite(pts).all(-1).astype(float)
    return Hands3D(pts, res.hands_reprojection_error_px[:, p], res.hands_n_views[:, p], score,
                   res.units)  # fmt: skip


def load_run_people(folder: str | Path, hands3d: Hands3D) -> PeopleFile | None:
    """The folder's ``hands3d_people.npz`` in the units of ``hands3d``; None if it has none,
    or (with a warning) one that is unreadable or has another frame count."""
    path = RunFolder(folder).path("hands3d_people")
    if not path.is_file():
        return None
    try:
        pf = load_people(path)
    except InputError as exc:
        log.warning("%s; drawing the single-person results only", exc)
        return None
    T = hands3d.keypoints3d.shape[0]
    if pf.result.n_frames != T:
        log.warning("%s has %d frames but hands3d.npz %d; drawing the single-person results "
                    "only", path, pf.result.n_frames, T)  # fmt: skip
        return None
    res = pf.result
    if res.units != hands3d.units:
        k = UNIT_SCALE_M[res.units] / UNIT_SCALE_M[hands3d.units]
        res = replace(res, hands3d=res.hands3d * k, body3d=res.body3d * k, units=hands3d.units)
        pf = replace(pf, result=res)
    return pf


def _load_rig(folder: Path, calib: str | Path | None, units: str) -> Rig:
    path = Path(calib) if calib is not None else RunFolder(folder).path("calibration")
    if not path.exists():
        hint = "" if calib is not None else "; the run folder has none, pass --calib"
        raise CalibrationError(f"calibration not found{hint}", path)
    from mvhand.io.calib_convert import load_rig

    return load_rig(path, units)


def check_calibration(rig: Rig, hands3d: Hands3D, keypoints2d: Keypoints2D | None,
                      source: str | Path) -> None:  # fmt: skip
    """Raise CalibrationError, naming ``source``, if ``rig`` does not fit the results.

    With 2D keypoints: every keypoint camera must be in the rig, and the 3D joints must
    reproject near their detections (median within :data:`MATCH_MEDIAN_PX`). Without: most
    3D joints must be seen by two cameras (:data:`MATCH_VISIBLE_SHARE`).
    """
    pts = hands3d.keypoints3d
    valid = hands3d.valid
    if not valid.any():
        return
    if hands3d.views is not None:  # compare with the views the 3D used, not raw detections
        keypoints2d = hands3d.views.inlier_keypoints()
    if keypoints2d is not None:
        absent = [c for c in keypoints2d.cameras if c not in rig.names]
        if absent:
            raise CalibrationError(
                f"the 2D keypoints' camera(s) {', '.join(absent)} are not in this calibration "
                f"(it has: {', '.join(rig.names)}); pass the calibration the run used", source)
        sub = rig.subset(keypoints2d.cameras)
        err = np.linalg.norm(sub.project(pts) - keypoints2d.keypoints_px, axis=-1)
        med = float(np.nanmedian(err)) if np.isfinite(err).any() else 0.0
        if med > MATCH_MEDIAN_PX:
            raise CalibrationError(
                f"this calibration does not match the results: the 3D joints reproject a median "
                f"{med:.0f} px from their 2D detections (the run's own error is "
                f"{np.nanmedian(hands3d.reprojection_error_px):.1f} px); check the file and its "
                "units", source)  # fmt: skip
        return
    inside = np.zeros(pts.shape[:-1], int)
    for cam in rig.cameras:
        uv = cam.project(pts)
        w, h = cam.size_px
        front = cam.world_to_cam(pts)[..., 2] > 0
        in_image = (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
        inside += front & in_image
    share = float((inside[valid] >= 2).mean())
    if share < MATCH_VISIBLE_SHARE:
        raise CalibrationError(
            f"this calibration does not match the results: only {100 * share:.0f} % of the 3D "
            "joints lie in view of two or more of its cameras; check the file and its units "
            f"(results are in {hands3d.units}, the calibration in {rig.units})", source)


def _read_report(folder: Path) -> dict:
    path = RunFolder(folder).path("report")
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        log.warning("%s: unreadable report (%s); frame numbers start at 0", path, exc)
        return {}


def _fps(h3d_path: Path, keypoints2d: Keypoints2D | None, report: dict) -> float | None:
    if h3d_path.is_file():
        with np.load(h3d_path, allow_pickle=False) as d:
            if "fps" in d.files and np.ndim(d["fps"]) == 0 and float(d["fps"]) > 0:
                return float(d["fps"])
    if keypoints2d is not None and keypoints2d.fps:
        return keypoints2d.fps
    fps = report.get("inputs", {}).get("fps") if isinstance(report.get("inputs"), dict) else None
    return float(fps) if isinstance(fps, (int, float)) and fps > 0 else None


def _frame_indices(report: dict, n_frames: int) -> np.ndarray:
    """The video frame of each result frame, from the report's frame range (else 0..T-1)."""
    inputs = report.get("inputs")
    frames = inputs.get("frames") if isinstance(inputs, dict) else None
    if isinstance(frames, dict) and {"start", "step"} <= set(frames):
        idx = frames["start"] + frames["step"] * np.arange(n_frames)
        return idx.astype(np.int64)
    return np.arange(n_frames, dtype=np.int64)


def load_meshes(folder: str | Path, hands3d: Hands3D) -> HandMeshes | None:
    """Read the ``mesh_<hand>.npz`` files of a folder (see the module doc); None if there are
    none.

    Raises:
        InputError: a mesh file is unreadable or does not fit the 3D results.
    """
    folder = Path(folder)
    T = hands3d.keypoints3d.shape[0]
    verts_all: list[np.ndarray | None] = []
    faces_all: list[np.ndarray | None] = []
    for hand in hands3d.hands:
        path = folder / f"mesh_{hand}.npz"
        if not path.is_file():
            verts_all.append(None)
            faces_all.append(None)
            continue
        try:
            with np.load(path, allow_pickle=False) as d:
                verts, faces = np.asarray(d["vertices"], float), np.asarray(d["faces"], np.int64)
        except KeyError as exc:
            raise InputError(f"not a mesh file: lacks {exc}", path) from None
        except (OSError, ValueError, EOFError) as exc:
            raise InputError(f"not a readable mesh file ({exc})", path) from None
        if verts.ndim != 3 or verts.shape[0] != T or verts.shape[-1] != 3:
            raise InputError(f"'vertices' must have shape ({T}, V, 3) to match hands3d.npz, "
                             f"got {verts.shape}", path)  # fmt: skip
        if faces.ndim != 2 or faces.shape[1] != 3 or faces.size and (
                faces.min() < 0 or faces.max() >= verts.shape[1]):  # fmt: skip
            raise InputError(f"'faces' must be (F, 3) indices below {verts.shape[1]}, got "
                             f"shape {faces.shape}", path)  # fmt: skip
        verts_all.append(verts)
        faces_all.append(faces)
    if all(v is None for v in verts_all):
        return None
    return HandMeshes(tuple(verts_all), tuple(faces_all))
