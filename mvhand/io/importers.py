"""Importers from other tools' 2D keypoint files into mvhand's :class:`Keypoints2D`.

Formats (one input per camera unless stated):

- ``openpose``: a folder of per-frame ``*_keypoints.json`` files (OpenPose ``--write_json``).
  ``hand_left_keypoints_2d`` / ``hand_right_keypoints_2d`` hold 21 x (x, y, c); c = 0 means
  missing. One person per frame: the most confident (mean of all its confidences) or the
  first. Frames are numbered by the number before ``_keypoints.json`` (missing files leave
  NaN frames), else by natural file order.
- ``coco-wholebody``: a COCO JSON with 133 keypoints per annotation (``images`` +
  ``annotations``, or a results list of ``{"image_id", "keypoints", "score"}``). The hands
  are keypoints 91-111 (left) and 112-132 (right); the dataset's split layout
  (``lefthand_kpts``/``righthand_kpts``) is read too. Frames follow the images' file names in
  natural order (or their ids); one annotation per image (the highest ``score``; for ground
  truth the largest ``area``, then the most visible hand joints). Visibility/score 0 means
  missing; scores are clipped to [0, 1].
- ``array``: ONE ``.npy`` for all cameras, ``(C, T, 21, 2)`` for a single hand (``hand``) or
  ``(C, T, 2, 21, 2)`` for left and right; a last axis of 3 carries scores. ``-1`` in both
  coordinates, or NaN, marks a missing joint (the anipose/handmocap convention); scores are 1
  elsewhere unless given.

The result always has H = 2 hands (0 left, 1 right); a hand that is not in the input is NaN.
Inputs are matched to the calibration's cameras by name (folder or file stem), else in the
natural order of their names (``cam2`` before ``cam10``), or explicitly by ``cameras``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mvhand.core import HANDS
from mvhand.core.camera import Rig
from mvhand.core.data import Keypoints2D
from mvhand.core.skeleton import COCO_WHOLEBODY_LEFT, COCO_WHOLEBODY_RIGHT, N_JOINTS
from mvhand.errors import InputError
from mvhand.io.calib_convert import natural_key

log = logging.getLogger(__name__)

IMPORT_FORMATS: tuple[str, ...] = ("openpose", "coco-wholebody", "array")
#: Share of valid points outside the calibration's image that triggers a warning.
OUT_OF_IMAGE_WARN = 0.05
_OPENPOSE_KEYS = ("hand_left_keypoints_2d", "hand_right_keypoints_2d")
_FRAME_RE = re.compile(r"(\d+)(?:_keypoints)?\.json$", re.IGNORECASE)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", path) from None


def _triplets(values: Any, n: int, path: Path, key: str) -> np.ndarray:
    """A flat list of n x (x, y, c) as ``(n, 3)`` floats; empty lists give all-missing."""
    if values is None or (isinstance(values, list) and not values):
        return np.zeros((n, 3))
    try:
        arr = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"'{key}' must be a list of numbers", path) from None
    if arr.size != 3 * n:
        raise InputError(f"'{key}' has {arr.size} values, expected {3 * n} ({n} x, y, c)", path)
    return arr.reshape(n, 3)


def _to_xy_score(trip: np.ndarray, missing_if_zero: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(..., 3)`` (x, y, c) to NaN-masked xy ``(..., 2)`` and scores ``(...)`` in [0, 1]."""
    xy = trip[..., :2].astype(float)
    c = trip[..., 2].astype(float)
    miss = ~np.isfinite(xy).all(axis=-1) | ~np.isfinite(c)
    if missing_if_zero:
        miss |= c <= 0
    xy = np.where(miss[..., None], np.nan, xy)
    return xy, np.where(miss, 0.0, np.clip(c, 0.0, 1.0))


# ----------------------------------------------------------------------------- OpenPose


def _openpose_frames(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        raise InputError("OpenPose input must be a folder of *_keypoints.json files", folder)
    files = sorted(folder.glob("*.json"), key=lambda p: natural_key(p.name))
    if not files:
        raise InputError("no *.json files in this OpenPose folder", folder)
    numbers = [_FRAME_RE.search(p.name) for p in files]
    if all(numbers):
        nums = [int(m.group(1)) for m in numbers]
        if len(set(nums)) == len(nums):
            return sorted(zip(nums, files, strict=True))
        log.warning("%s: frame numbers in file names repeat; using file order", folder)
    return list(enumerate(files))


def _openpose_person(people: list[Any], person: str, path: Path) -> dict[str, Any] | None:
    people = [p for p in people if isinstance(p, dict)]
    if not people:
        return None
    if person == "first":
        return people[0]

    def confidence(p: dict[str, Any]) -> float:
        conf = [np.asarray(p.get(k) or [], dtype=float).reshape(-1)[2::3]
                for k in ("pose_keypoints_2d",) + _OPENPOSE_KEYS]  # fmt: skip
        allc = np.concatenate(conf)
        return float(allc.mean()) if allc.size else 0.0

    try:
        return max(people, key=confidence)
    except (TypeError, ValueError):
        raise InputError("malformed keypoint lists in 'people'", path) from None


def read_openpose_folder(folder: str | Path, person: str = "confident"
                         ) -> tuple[np.ndarray, np.ndarray, list[int]]:  # fmt: skip
    """One camera's OpenPose folder.

    Args:
        folder: the folder of per-frame JSON files.
        person: "confident" (highest mean confidence) or "first" (``people[0]``).

    Returns:
        ``(keypoints (N, 2, 21, 2) px, scores (N, 2, 21), frame numbers (N,))`` for the N files.
    """
    frames = _openpose_frames(Path(folder))
    kp = np.full((len(frames), 2, N_JOINTS, 2), np.nan)
    sc = np.zeros((len(frames), 2, N_JOINTS))
    for i, (_, path) in enumerate(frames):
        data = _read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("people", []), list):
            raise InputError("not an OpenPose keypoint file (no 'people' list)", path)
        chosen = _openpose_person(data.get("people", []), person, path)
        if chosen is None:
            continue
        for h, key in enumerate(_OPENPOSE_KEYS):
            kp[i, h], sc[i, h] = _to_xy_score(_triplets(chosen.get(key), N_JOINTS, path, key))
    return kp, sc, [n for n, _ in frames]


def import_openpose(folders: Sequence[str | Path], person: str = "confident"
                    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """OpenPose folders (one per camera) to ``(C, T, 2, 21, 2)`` px and ``(C, T, 2, 21)``."""
    per_cam = [read_openpose_folder(f, person) for f in folders]
    start = min(min(nums) for _, _, nums in per_cam)
    T = max(max(nums) for _, _, nums in per_cam) - start + 1
    kp = np.full((len(folders), T, 2, N_JOINTS, 2), np.nan)
    sc = np.zeros((len(folders), T, 2, N_JOINTS))
    for c, (k, s, nums) in enumerate(per_cam):
        idx = np.asarray(nums) - start
        kp[c, idx], sc[c, idx] = k, s
        if len(nums) != T:
            log.warning("%s: %d frame files for %d frames; the others are missing",
                        folders[c], len(nums), T)  # fmt: skip
    return kp, sc


# ----------------------------------------------------------------------------- COCO-WholeBody


def _coco_hands(ann: dict[str, Any], path: Path) -> np.ndarray:
    """``(2, 21, 3)`` (x, y, score) of the left and right hand of one annotation."""
    kps = ann.get("keypoints")
    if kps is not None and np.size(kps) == 133 * 3:
        trip = _triplets(kps, 133, path, "keypoints")
        return np.stack([trip[COCO_WHOLEBODY_LEFT], trip[COCO_WHOLEBODY_RIGHT]])
    if "lefthand_kpts" in ann or "righthand_kpts" in ann:
        return np.stack([_triplets(ann.get(k), N_JOINTS, path, k)
                         for k in ("lefthand_kpts", "righthand_kpts")])  # fmt: skip
    n = np.size(kps) // 3 if kps is not None else 0
    raise InputError(f"annotation {ann.get('id', '?')} has {n} keypoints; COCO-WholeBody needs "
                     "133 (or lefthand_kpts/righthand_kpts)", path)  # fmt: skip


def _coco_rank(ann: dict[str, Any], path: Path) -> tuple[float, float]:
    """Detections rank by ``score``; ground truth by ``area`` (the main person is the largest),
    then by the number of visible hand joints."""
    try:
        if "score" in ann:
            return float(ann["score"]), 0.0
        visible = float((_coco_hands(ann, path)[..., 2] > 0).sum())
        return float(ann.get("area", 0.0)), visible
    except (TypeError, ValueError):
        raise InputError(f"annotation {ann.get('id', '?')} has a non-numeric score or area",
                         path) from None  # fmt: skip


def read_coco_wholebody(path: str | Path, frame_order: str = "name"
                        ) -> tuple[np.ndarray, np.ndarray, list[Any]]:  # fmt: skip
    """One camera's COCO-WholeBody JSON.

    Args:
        path: the JSON file.
        frame_order: "name" (images' ``file_name`` in natural order) or "id" (image ids).

    Returns:
        ``(keypoints (T, 2, 21, 2) px, scores (T, 2, 21), image ids (T,))``.
    """
    path = Path(path)
    data = _read_json(path)
    if isinstance(data, list):
        anns, images = data, None
    elif isinstance(data, dict) and isinstance(data.get("annotations"), list):
        anns, images = data["annotations"], data.get("images")
    else:
        raise InputError("not a COCO JSON: needs 'annotations' (and 'images') or a results "
                         "list", path)  # fmt: skip
    if not all(isinstance(a, dict) and "image_id" in a for a in anns):
        raise InputError("every annotation needs an 'image_id'", path)
    if images:
        if not all(isinstance(im, dict) and "id" in im for im in images):
            raise InputError("every entry of 'images' needs an 'id'", path)
        key = (lambda im: natural_key(str(im.get("file_name", im["id"])))) \
            if frame_order == "name" else (lambda im: natural_key(str(im["id"])))
        ids = [im["id"] for im in sorted(images, key=key)]
    else:
        ids = sorted({a["image_id"] for a in anns}, key=lambda i: natural_key(str(i)))
    if not ids:
        raise InputError("no images or annotations in this COCO file", path)
    best: dict[Any, dict[str, Any]] = {}
    for ann in anns:
        cur = best.get(ann["image_id"])
        if cur is None or _coco_rank(ann, path) > _coco_rank(cur, path):
            best[ann["image_id"]] = ann
    unknown = set(best) - set(ids)
    if unknown:
        raise InputError(f"{len(unknown)} annotations refer to image ids not in 'images' "
                         f"(e.g. {sorted(unknown, key=str)[0]})", path)  # fmt: skip
    kp = np.full((len(ids), 2, N_JOINTS, 2), np.nan)
    sc = np.zeros((len(ids), 2, N_JOINTS))
    for t, image_id in enumerate(ids):
        if image_id in best:
            kp[t], sc[t] = _to_xy_score(_coco_hands(best[image_id], path))
    return kp, sc, ids


def import_coco_wholebody(files: Sequence[str | Path], frame_order: str = "name"
                          ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """COCO-WholeBody files (one per camera) to ``(C, T, 2, 21, 2)`` px and ``(C, T, 2, 21)``."""
    per_cam = [read_coco_wholebody(f, frame_order) for f in files]
    T = max(k.shape[0] for k, _, _ in per_cam)
    kp = np.full((len(files), T, 2, N_JOINTS, 2), np.nan)
    sc = np.zeros((len(files), T, 2, N_JOINTS))
    for c, (k, s, _) in enumerate(per_cam):
        kp[c, : len(k)], sc[c, : len(k)] = k, s
        if len(k) != T:
            log.warning("%s: %d frames, others have %d; padding the end with missing frames",
                        files[c], len(k), T)  # fmt: skip
    return kp, sc


# ----------------------------------------------------------------------------- arrays


def import_array(path: str | Path, hand: str = "right", missing_value: float = -1.0
                 ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """An anipose/handmocap-style ``.npy`` to ``(C, T, 2, 21, 2)`` px and ``(C, T, 2, 21)``.

    Args:
        path: ``.npy`` of shape ``(C, T, 21, 2|3)`` (one hand) or ``(C, T, 2, 21, 2|3)``.
        hand: which hand a one-hand array holds, "left" or "right".
        missing_value: a joint whose two coordinates both equal this is missing (NaN too).
    """
    path = Path(path)
    if hand not in HANDS:
        raise InputError(f"hand must be one of {HANDS}, got {hand!r}", path)
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"not a readable .npy array ({exc})", path) from None
    if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.number):
        raise InputError("expected a numeric .npy array", path)
    if arr.ndim == 4:
        arr = np.stack([np.full(arr.shape, np.nan), arr.astype(float)], axis=2)
        if hand == "left":
            arr = arr[:, :, ::-1]
    if arr.ndim != 5 or arr.shape[2] != 2 or arr.shape[3] != N_JOINTS or arr.shape[4] not in (2, 3):
        raise InputError(f"array shape {arr.shape}: expected (C, T, {N_JOINTS}, 2|3) or "
                         f"(C, T, 2, {N_JOINTS}, 2|3)", path)  # fmt: skip
    arr = arr.astype(float)
    xy = arr[..., :2]
    miss = ~np.isfinite(xy).all(axis=-1) | (xy == missing_value).all(axis=-1)
    scores = arr[..., 2] if arr.shape[-1] == 3 else np.ones(arr.shape[:-1])
    miss |= ~np.isfinite(scores)
    xy = np.where(miss[..., None], np.nan, xy)
    return xy, np.where(miss, 0.0, np.clip(scores, 0.0, 1.0))


# ----------------------------------------------------------------------------- dispatch


def _stem(path: Path) -> str:
    return path.name.split(".")[0] if path.is_file() else path.name


def match_inputs(inputs: Sequence[Path], calib_names: Sequence[str],
                 cameras: Sequence[str] | None = None) -> list[tuple[Path, str]]:  # fmt: skip
    """Pair each per-camera input with a calibration camera name.

    By ``cameras`` (same length as ``inputs``) when given; else by name when every input's
    stem is a camera name; else, when there is one input per camera, in natural order of the
    inputs' names (``cam2`` before ``cam10``).

    Raises:
        InputError: counts differ, or a name is not in the calibration.
    """
    inputs = [Path(p) for p in inputs]
    if cameras:
        if len(cameras) != len(inputs):
            raise InputError(f"--cameras lists {len(cameras)} names for {len(inputs)} inputs")
        bad = [c for c in cameras if c not in calib_names]
        if bad:
            raise InputError(f"camera(s) {bad} are not in the calibration "
                             f"(it has {', '.join(calib_names)})")  # fmt: skip
        return list(zip(inputs, cameras, strict=True))
    lower = {n.lower(): n for n in calib_names}
    stems = [_stem(p).lower() for p in inputs]
    if len(set(stems)) == len(stems) and all(s in lower for s in stems):
        return [(p, lower[s]) for p, s in zip(inputs, stems, strict=True)]
    if len(inputs) != len(calib_names):
        raise InputError(f"{len(inputs)} inputs for {len(calib_names)} calibrated cameras and "
                         "their names do not match the camera names: say which camera each "
                         "input is with --cameras")  # fmt: skip
    ordered = sorted(inputs, key=lambda p: natural_key(p.name))
    pairs = list(zip(ordered, calib_names, strict=True))
    log.info("matching inputs to cameras in order: %s",
             ", ".join(f"{p.name} -> {n}" for p, n in pairs))  # fmt: skip
    return pairs


def _warn_out_of_image(kp: np.ndarray, rig: Rig, names: Sequence[str]) -> None:
    for c, name in enumerate(names):
        w, h = rig[name].size_px
        xy = kp[c][np.isfinite(kp[c]).all(axis=-1)]
        if xy.size == 0:
            log.warning("camera '%s': no valid keypoints at all", name)
            continue
        out = (xy[:, 0] < -0.5) | (xy[:, 0] > w - 0.5) | (xy[:, 1] < -0.5) | (xy[:, 1] > h - 0.5)
        if out.mean() > OUT_OF_IMAGE_WARN:
            log.warning("camera '%s': %.0f%% of keypoints lie outside its %dx%d calibrated image "
                        "(wrong camera order, or rotated/scaled video?)",
                        name, 100 * out.mean(), w, h)  # fmt: skip


def import_keypoints(fmt: str, inputs: Sequence[str | Path], rig: Rig,
                     cameras: Sequence[str] | None = None, hand: str | None = None,
                     fps: float | None = None, **options: Any) -> Keypoints2D:  # fmt: skip
    """Import 2D hand keypoints in ``fmt`` for the cameras of ``rig``.

    Args:
        fmt: one of :data:`IMPORT_FORMATS`.
        inputs: per-camera folders/files (openpose, coco-wholebody) or one ``.npy`` (array).
        rig: the calibration; gives camera names, order and image sizes.
        cameras: camera names of the inputs (per input, or per array camera), in order.
        hand: keep only this hand ("left"/"right"; the other is NaN); for arrays, the hand
            the array holds (default "right").
        fps: frame rate to record.
        **options: ``person`` (openpose) or ``frame_order`` (coco-wholebody).

    Returns:
        Keypoints2D with cameras in calibration order and H = 2 hands.
    """
    if fmt not in IMPORT_FORMATS:
        raise InputError(f"unknown keypoint format {fmt!r}; use one of {IMPORT_FORMATS}")
    if hand is not None and hand not in HANDS:
        raise InputError(f"hand must be one of {HANDS}, got {hand!r}")
    paths = [Path(p) for p in inputs]
    if fmt == "array":
        if len(paths) != 1:
            raise InputError(f"the array format takes one .npy for all cameras, got {len(paths)}")
        kp, sc = import_array(paths[0], hand or "right")
        names = list(cameras) if cameras else list(rig.names)
        if len(names) != kp.shape[0]:
            raise InputError(f"the array has {kp.shape[0]} cameras, the calibration "
                             f"{len(rig)}: name them with --cameras", paths[0])  # fmt: skip
        for n in names:
            rig.index(n)
    else:
        pairs = match_inputs(paths, rig.names, cameras)
        ordered = [p for p, _ in pairs]
        if fmt == "openpose":
            kp, sc = import_openpose(ordered, options.get("person", "confident"))
        else:
            kp, sc = import_coco_wholebody(ordered, options.get("frame_order", "name"))
        names = [n for _, n in pairs]
        if hand is not None:
            other = 1 - HANDS.index(hand)
            kp[:, :, other], sc[:, :, other] = np.nan, 0.0
    order = sorted(range(len(names)), key=lambda i: rig.index(names[i]))
    names = [names[i] for i in order]
    kp, sc = kp[order], sc[order]
    _warn_out_of_image(kp, rig, names)
    return Keypoints2D(kp, sc, tuple(names), HANDS, fps)


# ----------------------------------------------------------------------------- several people
#: OpenPose BODY_25 and COCO-18 body indices of the COCO-17 joints (``coco[k] = op[MAP[k]]``).
_OPENPOSE_BODY_TO_COCO17: dict[int, np.ndarray] = {
    25: np.array([0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11]),
    18: np.array([0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]),
}


def read_image_table(path: str | Path) -> dict[Any, tuple[str, int]]:
    """The table that says which camera and frame each COCO image id is.

    Accepted: a CSV with the columns ``image_id,camera,frame`` (a header row), or a JSON list
    of ``{"image_id" (or "id"), "camera", "frame"}``. Integer-looking ids become ints.

    Raises:
        InputError: unreadable, missing columns, a repeated id or a negative frame.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        data = _read_json(path)
        if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
            raise InputError("an image table JSON must be a list of {image_id, camera, frame}",
                             path)  # fmt: skip
        entries = [(e.get("image_id", e.get("id")), e.get("camera"), e.get("frame"))
                   for e in data]  # fmt: skip
    else:
        import csv

        try:
            with path.open(newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        except FileNotFoundError:
            raise InputError("file not found", path) from None
        if rows and not {"image_id", "camera", "frame"} <= set(rows[0]):
            raise InputError("an image table CSV needs the columns image_id,camera,frame",
                             path)  # fmt: skip
        entries = [(r["image_id"], r["camera"], r["frame"]) for r in rows]
    table: dict[Any, tuple[str, int]] = {}
    for image_id, cam, frame in entries:
        try:
            key = int(image_id) if str(image_id).lstrip("-").isdigit() else image_id
            t = int(frame)
        except (TypeError, ValueError):
            raise InputError(f"image {image_id!r}: frame must be an integer, got {frame!r}",
                             path) from None  # fmt: skip
        if key is None or cam is None or t < 0:
            raise InputError(f"image {image_id!r}: needs a camera and a frame >= 0", path)
        if key in table:
            raise InputError(f"image id {key!r} is listed twice", path)
        table[key] = (str(cam), t)
    if not table:
        raise InputError("the image table is empty", path)
    return table


def _coco_person(kps: Any, path: Path, image_id: Any) -> tuple[np.ndarray, np.ndarray]:
    """Body ``(17, 3)`` and hands ``(2, 21, 3)`` triplets of a COCO-17 or WholeBody result."""
    n = np.size(kps) // 3 if kps is not None else 0
    if n not in (17, 133):
        raise InputError(f"image {image_id}: a result has {n} keypoints; COCO-17 has 17 and "
                         "COCO-WholeBody 133", path)  # fmt: skip
    trip = _triplets(kps, n, path, "keypoints")
    hands = np.zeros((2, N_JOINTS, 3))
    if n == 133:
        hands = np.stack([trip[COCO_WHOLEBODY_LEFT], trip[COCO_WHOLEBODY_RIGHT]])
    return trip[:17], hands


def _people_table(rows: list[tuple[int, int, np.ndarray, np.ndarray]], cameras: Sequence[str],
                  n_frames: int, fps: float | None):  # fmt: skip
    """Rows of (camera index, frame, body triplets, hand triplets) as a ``Detections2D``."""
    from mvhand.core.people import SOURCES, Detections2D

    N = len(rows)
    body = np.zeros((N, 17, 3))
    hands = np.zeros((N, 2, N_JOINTS, 3))
    for i, (_, _, b, h) in enumerate(rows):
        body[i], hands[i] = b, h
    bxy, bsc = _to_xy_score(body)
    hxy, hsc = _to_xy_score(hands)
    cam = np.array([r[0] for r in rows], dtype=np.int64)
    frame = np.array([r[1] for r in rows], dtype=np.int64)
    src = np.full(N, SOURCES.index("import"), dtype=np.int64)
    return Detections2D(cam, frame, bxy, bsc, hxy, hsc, src, tuple(cameras), n_frames, fps)


def import_coco_people(path: str | Path, table: dict[Any, tuple[str, int]], rig: Rig,
                       fps: float | None = None, min_score: float = 0.0):  # fmt: skip
    """A COCO keypoint results JSON of several people per image, for the association.

    Args:
        path: a list of ``{"image_id", "keypoints", "score"}`` (or a dict with
            ``annotations``), keypoints COCO-17 (51 values) or COCO-WholeBody (399 values).
        table: image id -> (camera, frame), from :func:`read_image_table`.
        rig: the calibration; the table's cameras must be in it.
        fps: frame rate to record.
        min_score: results with a lower ``score`` are left out.

    Returns:
        :class:`mvhand.core.people.Detections2D`, cameras in calibration order.

    Raises:
        InputError: not a results list, image ids that the table does not map (named), a
            camera not in the calibration, or a wrong keypoint count.
    """
    path = Path(path)
    data = _read_json(path)
    anns = data.get("annotations") if isinstance(data, dict) else data
    if not isinstance(anns, list) or not all(isinstance(a, dict) and "image_id" in a
                                             for a in anns):  # fmt: skip
        raise InputError("not a COCO keypoint results list ({image_id, keypoints, score})",
                         path)  # fmt: skip
    unknown = sorted({a["image_id"] for a in anns} - set(table), key=str)
    if unknown:
        shown = ", ".join(str(u) for u in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise InputError(f"{len(unknown)} image ids have no camera and frame in the image "
                         f"table: {shown}", path)  # fmt: skip
    bad = sorted({cam for cam, _ in table.values()} - set(rig.names))
    if bad:
        raise InputError(f"image table cameras {bad} are not in the calibration (it has "
                         f"{', '.join(rig.names)})", path)  # fmt: skip
    rows = []
    for a in anns:
        if float(a.get("score", 1.0) or 0.0) < min_score:
            continue
        cam, frame = table[a["image_id"]]
        body, hands = _coco_person(a.get("keypoints"), path, a["image_id"])
        rows.append((rig.index(cam), frame, body, hands))
    n_frames = max(f for _, f in table.values()) + 1
    return _people_table(rows, rig.names, n_frames, fps)


def _openpose_people_rows(data: Any, path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    if not isinstance(data, dict) or not isinstance(data.get("people", []), list):
        raise InputError("not an OpenPose keypoint file (no 'people' list)", path)
    out = []
    for person in data.get("people", []):
        if not isinstance(person, dict):
            continue
        pose = person.get("pose_keypoints_2d") or []
        n = len(pose) // 3
        body = np.zeros((17, 3))
        if n:
            if n not in _OPENPOSE_BODY_TO_COCO17:
                raise InputError(f"'pose_keypoints_2d' has {n} joints; BODY_25 (25) or "
                                 "COCO (18) expected", path)  # fmt: skip
            body = _triplets(pose, n, path, "pose_keypoints_2d")[_OPENPOSE_BODY_TO_COCO17[n]]
        hands = np.stack([_triplets(person.get(k), N_JOINTS, path, k) for k in _OPENPOSE_KEYS])
        if (body[:, 2] > 0).any() or (hands[..., 2] > 0).any():
            out.append((body, hands))
    return out


def import_openpose_people(folders: Sequence[str | Path], rig: Rig,
                           cameras: Sequence[str] | None = None,
                           fps: float | None = None):  # fmt: skip
    """OpenPose folders (one per camera) with several people per frame, for the association.

    Every person of every file becomes a row (BODY_25 or COCO-18 bodies as COCO-17; the
    hands as they are); frames are numbered as in :func:`import_openpose`.
    """
    pairs = match_inputs([Path(f) for f in folders], rig.names, cameras)
    per_cam = sorted((rig.index(name), _openpose_frames(Path(folder))) for folder, name in pairs)
    start = min(n for _, frames in per_cam for n, _ in frames)
    rows = []
    n_frames = 0
    for c, frames in per_cam:
        for num, path in frames:
            n_frames = max(n_frames, num - start + 1)
            for body, hands in _openpose_people_rows(_read_json(path), path):
                rows.append((c, num - start, body, hands))
    return _people_table(rows, rig.names, n_frames, fps)
