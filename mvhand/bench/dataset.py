"""The benchmark dataset format (documented in ``benchmark_data/README.md``): loading and writing.

A dataset is a folder of sequences; a sequence is a folder holding::

    sequence.toml          level (L0-L5), fps, n_frames, persons, description, [metadata]
    calibration.toml       anipose TOML (mvhand.io.calibration)
    annotations_2d.json    COCO-style keyframe labels: 21 keypoints per hand, left/right, v
    gt3d.npz               optional 3D ground truth: keypoints3d (T, H, 21, 3), frames, units
    detections_2d.npz      optional 2D detections (mvhand keypoint file): a pipeline's input
    truth_2d.npz           optional dense 2D truth of every frame and view (rendered sets)
    videos/<camera>.<ext>  optional per-camera videos

Readers collect :class:`Problem` s instead of stopping at the first one, so the validator
(:mod:`mvhand.bench.validate`) can report them all; :func:`load_sequence` raises on errors.
"""

from __future__ import annotations

import json
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mvhand.core.camera import UNIT_SCALE_M, Rig
from mvhand.core.data import Keypoints2D
from mvhand.core.skeleton import BONES, JOINT_NAMES, N_JOINTS
from mvhand.errors import InputError, MvhandError
from mvhand.io.atomic import save_npz_atomic, write_text_atomic
from mvhand.io.calibration import calibration_to_toml, load_calibration
from mvhand.io.keypoints import load_keypoints, save_keypoints

log = logging.getLogger(__name__)

LEVELS: dict[str, str] = {
    "L0": "static, single person",
    "L1": "slow motion, small tools",
    "L2": "fast motion, large tools",
    "L3": "static, multi-person",
    "L4": "partial observability",
    "L5": "dynamic, multi-person",
}

DATASET_FILE = "dataset.toml"
SEQUENCE_FILE = "sequence.toml"
CALIBRATION_FILE = "calibration.toml"
ANNOTATIONS_FILE = "annotations_2d.json"
GT3D_FILE = "gt3d.npz"
DETECTIONS_FILE = "detections_2d.npz"
TRUTH2D_FILE = "truth_2d.npz"
VIDEOS_DIR = "videos"
#: A hand's box (for the OKS scale) is the box around its labeled joints enlarged by this factor
#: per side, when an annotation gives no ``area``: skin reaches past the joints.
HAND_BOX_SCALE = 1.2
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".MP4", ".MOV")
FORMAT_NAME = "mvhand-hand2d"
_SEQUENCE_KEYS = {"level", "fps", "n_frames", "persons", "description", "source"}


@dataclass(frozen=True)
class Problem:
    """One problem found in a dataset.

    Attributes:
        path: the file (or folder) it is in.
        entry: where in the file, e.g. ``annotations[12]`` or ``keypoints3d``; "" for the file.
        message: what is wrong and what to do.
        severity: "error" (the sequence cannot be scored as is) or "warning".
    """

    path: Path
    entry: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.path}: {self.entry}" if self.entry else str(self.path)
        return f"{self.severity}: {where}: {self.message}"


class Problems(list):
    """A list of :class:`Problem` with shorthands to add errors and warnings."""

    def error(self, path: Path, entry: str, message: str) -> None:
        self.append(Problem(Path(path), entry, message, "error"))

    def warn(self, path: Path, entry: str, message: str) -> None:
        self.append(Problem(Path(path), entry, message, "warning"))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self if p.severity == "error"]


def hand_names(n_persons: int) -> tuple[str, ...]:
    """Hand names along axis H: person 0 ``left, right``; person p > 0 ``p<p>_left, ...``."""
    names: list[str] = []
    for p in range(n_persons):
        prefix = "" if p == 0 else f"p{p}_"
        names += [f"{prefix}left", f"{prefix}right"]
    return tuple(names)


@dataclass(frozen=True)
class SequenceInfo:
    """The contents of ``sequence.toml``.

    Attributes:
        name: the sequence folder's name.
        level: complexity level, one of ``LEVELS``.
        fps: frame rate (frames per second).
        n_frames: number of frames T.
        n_persons: people whose hands are annotated (person 0 is the primary, e.g. the surgeon).
        description: free text.
        source: "recorded" or "synthetic".
        metadata: any further key/values (the ``[metadata]`` table).
    """

    name: str
    level: str
    fps: float
    n_frames: int
    n_persons: int = 1
    description: str = ""
    source: str = "recorded"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def hands(self) -> tuple[str, ...]:
        return hand_names(self.n_persons)


@dataclass(frozen=True, eq=False)
class Annotations2D:
    """Keyframe 2D labels of one sequence, dense over cameras, keyframes and hands.

    Attributes:
        keypoints_px: ``(C, K, H, 21, 2)`` pixels; NaN where not labeled (v = 0).
        visibility: ``(C, K, H, 21)`` COCO flags: 0 not labeled, 1 labeled but occluded,
            2 labeled and visible.
        annotated: ``(C, K, H)`` True where the hand has an annotation entry.
        area_px2: ``(C, K, H)`` the annotation's area (hand box w * h), for OKS.
        image_labeled: ``(C, K)`` True where the view and frame is a labeled image; a hand
            without an entry in a labeled image is absent from that view.
        frames: ``(K,)`` frame indices of the keyframes.
        cameras: ``(C,)`` camera names (the calibration's order).
        hands: ``(H,)`` hand names (see :func:`hand_names`).
    """

    keypoints_px: np.ndarray
    visibility: np.ndarray
    annotated: np.ndarray
    area_px2: np.ndarray
    image_labeled: np.ndarray
    frames: np.ndarray
    cameras: tuple[str, ...]
    hands: tuple[str, ...]

    @property
    def labeled(self) -> np.ndarray:
        """``(C, K, H, 21)`` True where the joint is labeled (v > 0)."""
        return self.visibility > 0

    @property
    def n_instances(self) -> int:
        return int(self.annotated.sum())


@dataclass(frozen=True, eq=False)
class GroundTruth3D:
    """3D ground truth of a sequence.

    Attributes:
        keypoints3d: ``(T', H, 21, 3)`` in ``units``, NaN where unknown.
        frames: ``(T',)`` the frame indices the rows belong to.
        units: "m", "cm" or "mm".
        hands: ``(H,)`` hand names.
    """

    keypoints3d: np.ndarray
    frames: np.ndarray
    units: str
    hands: tuple[str, ...]

    def dense(self, n_frames: int, units: str) -> np.ndarray:
        """``(n_frames, H, 21, 3)`` in ``units``, NaN on frames without ground truth."""
        out = np.full((n_frames, *self.keypoints3d.shape[1:]), np.nan)
        ok = (self.frames >= 0) & (self.frames < n_frames)
        out[self.frames[ok]] = self.keypoints3d[ok]
        return out * (UNIT_SCALE_M[self.units] / UNIT_SCALE_M[units])


@dataclass(frozen=True, eq=False)
class SequenceData:
    """One loaded sequence.

    Attributes:
        root: its folder.
        info: ``sequence.toml``.
        rig: the calibration.
        annotations: the 2D labels, if any.
        gt3d: the 3D ground truth, if any.
        detections_path: ``detections_2d.npz`` if present.
        videos: camera name -> video file.
        truth2d_path: ``truth_2d.npz`` if present (read it with :func:`load_truth2d`).
    """

    root: Path
    info: SequenceInfo
    rig: Rig
    annotations: Annotations2D | None
    gt3d: GroundTruth3D | None
    detections_path: Path | None
    videos: dict[str, Path]
    truth2d_path: Path | None = None

    @property
    def name(self) -> str:
        return self.info.name

    def detections(self) -> Keypoints2D:
        """The 2D detections (``detections_2d.npz``); InputError if the sequence has none."""
        if self.detections_path is None:
            raise InputError(f"sequence has no {DETECTIONS_FILE} to run a pipeline on", self.root)
        return load_keypoints(self.detections_path)


# ---------------------------------------------------------------------------------- reading
def read_info(root: Path, problems: Problems) -> SequenceInfo | None:
    """Parse ``sequence.toml``; add a problem per bad key."""
    path = root / SEQUENCE_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.error(path, "", "missing; every sequence folder needs a sequence.toml")
        return None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problems.error(path, "", f"not valid TOML ({exc})")
        return None
    seq = data.get("sequence")
    if not isinstance(seq, dict):
        problems.error(path, "[sequence]", "missing table [sequence]")
        return None
    bad = len(problems.errors)
    for key in sorted(set(seq) - _SEQUENCE_KEYS):
        problems.error(path, f"sequence.{key}", f"unknown key; known: {sorted(_SEQUENCE_KEYS)}")
    level = seq.get("level")
    if level not in LEVELS:
        problems.error(path, "sequence.level", f"must be one of {list(LEVELS)}, got {level!r}")
    fps, n_frames, persons = seq.get("fps"), seq.get("n_frames"), seq.get("persons", 1)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps <= 0:
        problems.error(path, "sequence.fps", f"must be a positive number, got {fps!r}")
    for key, value in (("n_frames", n_frames), ("persons", persons)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.error(path, f"sequence.{key}", f"must be a positive integer, got {value!r}")
    meta = data.get("metadata", {})
    if not isinstance(meta, dict):
        problems.error(path, "metadata", "must be a table")
    if len(problems.errors) > bad:
        return None
    return SequenceInfo(root.name, level, float(fps), n_frames, persons,
                        str(seq.get("description", "")), str(seq.get("source", "recorded")),
                        dict(meta))  # fmt: skip


def read_rig(root: Path, problems: Problems) -> Rig | None:
    """Load ``calibration.toml``; add a problem if it cannot be read."""
    path = root / CALIBRATION_FILE
    try:
        return load_calibration(path)
    except MvhandError as exc:
        message = str(exc)
        prefix = f"{path}: "
        problems.error(path, "", message[len(prefix):] if message.startswith(prefix) else message)
        return None


def _num(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and np.isfinite(v)


def _read_images(images: Any, path: Path, rig: Rig, info: SequenceInfo,
                 problems: Problems) -> dict[Any, tuple[int, int]]:  # fmt: skip
    """Map image id -> (camera index, frame); problems for bad or inconsistent entries."""
    out: dict[Any, tuple[int, int]] = {}
    if not isinstance(images, list):
        problems.error(path, "images", "must be a list of image records")
        return out
    for i, img in enumerate(images):
        entry = f"images[{i}]"
        if not isinstance(img, dict):
            problems.error(path, entry, "must be an object")
            continue
        entry += f" (id {img.get('id')!r})"
        missing = [k for k in ("id", "camera", "frame") if k not in img]
        if missing:
            problems.error(path, entry, f"lacks {', '.join(missing)}")
            continue
        if img["id"] in out:
            problems.error(path, entry, "duplicate image id")
            continue
        cam, frame = img["camera"], img["frame"]
        if cam not in rig.names:
            problems.error(path, entry, f"camera {cam!r} is not in the calibration "
                           f"({', '.join(rig.names)})")  # fmt: skip
            continue
        if isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame < info.n_frames:
            problems.error(path, entry, f"frame must be an integer in [0, {info.n_frames}), "
                           f"got {frame!r}")  # fmt: skip
            continue
        size = rig[cam].size_px
        given = (img.get("width"), img.get("height"))
        if given != (None, None) and tuple(given) != size:
            problems.error(path, entry, f"image size {given[0]}x{given[1]} disagrees with the "
                           f"calibration of {cam} ({size[0]}x{size[1]})")  # fmt: skip
        out[img["id"]] = (rig.index(cam), frame)
    return out


def _read_keypoints(kps: Any, entry: str, path: Path, problems: Problems):
    """``(21, 2)`` pixels and ``(21,)`` v from a COCO keypoint list, or None with a problem."""
    if not isinstance(kps, list) or len(kps) != 3 * N_JOINTS:
        n = len(kps) if isinstance(kps, list) else type(kps).__name__
        problems.error(path, entry + ".keypoints", f"must be a list of {3 * N_JOINTS} numbers "
                       f"(x, y, v per joint), got {n}")  # fmt: skip
        return None
    if not all(_num(v) for v in kps):
        problems.error(path, entry + ".keypoints", "contains a non-numeric or non-finite value")
        return None
    arr = np.asarray(kps, dtype=float).reshape(N_JOINTS, 3)
    v = arr[:, 2]
    if not np.isin(v, (0, 1, 2)).all():
        bad = int(np.flatnonzero(~np.isin(v, (0, 1, 2)))[0])
        problems.error(path, entry + ".keypoints", f"visibility of joint {JOINT_NAMES[bad]} "
                       f"must be 0, 1 or 2, got {v[bad]:g}")  # fmt: skip
        return None
    return arr[:, :2], v.astype(np.int8)


def _check_label(ann: dict, entry: str, path: Path, hands: tuple[str, ...],
                 problems: Problems) -> int | None:  # fmt: skip
    """Hand index H of an annotation from its ``hand`` and ``person``; None with a problem."""
    side, person = ann.get("hand"), ann.get("person", 0)
    if side not in ("left", "right"):
        problems.error(path, entry + ".hand", f"must be 'left' or 'right', got {side!r}")
        return None
    n_persons = len(hands) // 2
    if isinstance(person, bool) or not isinstance(person, int) or not 0 <= person < n_persons:
        problems.error(path, entry + ".person", f"must be an integer in [0, {n_persons}) "
                       f"(sequence.toml persons = {n_persons}), got {person!r}")  # fmt: skip
        return None
    return 2 * person + (0 if side == "left" else 1)


def _read_annotation(ann: Any, i: int, path: Path, images: dict, rig: Rig,
                     hands: tuple[str, ...], problems: Problems):  # fmt: skip
    """One annotation -> (c, frame, h, xy, v, area) or None (with a problem)."""
    entry = f"annotations[{i}]"
    if not isinstance(ann, dict):
        problems.error(path, entry, "must be an object")
        return None
    entry += f" (id {ann.get('id')!r})"
    if ann.get("image_id") not in images:
        problems.error(path, entry + ".image_id", f"{ann.get('image_id')!r} is not an image id")
        return None
    h = _check_label(ann, entry, path, hands, problems)
    kp = _read_keypoints(ann.get("keypoints"), entry, path, problems)
    if h is None or kp is None:
        return None
    xy, v = kp
    c, frame = images[ann["image_id"]]
    w, hgt = rig[c].size_px
    lab = v > 0
    outside = lab & ((xy[:, 0] < -0.5) | (xy[:, 1] < -0.5) | (xy[:, 0] > w - 0.5)
                     | (xy[:, 1] > hgt - 0.5))  # fmt: skip
    if outside.any():
        problems.warn(path, entry, f"{int(outside.sum())} labeled joint(s) lie outside the "
                      f"{w}x{hgt} image of {rig[c].name}")  # fmt: skip
    if not lab.any():
        problems.warn(path, entry, "no labeled joint (all v = 0); the entry is ignored")
    area = ann.get("area")
    if area is not None and (not _num(area) or area < 0):
        problems.error(path, entry + ".area", f"must be a non-negative number, got {area!r}")
        return None
    if area is None:
        span = xy[lab].max(0) - xy[lab].min(0) if lab.any() else np.zeros(2)
        area = float(span[0] * span[1]) * HAND_BOX_SCALE**2
    return c, frame, h, np.where(lab[:, None], xy, np.nan), v, float(area)


def _read_json(path: Path, problems: Problems) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        problems.error(path, f"line {exc.lineno} column {exc.colno}", f"not valid JSON ({exc.msg})")
    except UnicodeDecodeError as exc:
        problems.error(path, "", f"not UTF-8 text ({exc})")
    return None


def read_annotations(root: Path, rig: Rig, info: SequenceInfo,
                     problems: Problems) -> Annotations2D | None:  # fmt: skip
    """Parse ``annotations_2d.json`` (None when absent); a problem per bad entry."""
    path = root / ANNOTATIONS_FILE
    if not path.is_file():
        return None
    data = _read_json(path, problems)
    if data is None:
        return None
    if not isinstance(data, dict) or "annotations" not in data or "images" not in data:
        problems.error(path, "", "must be a COCO-style object with 'images' and 'annotations'")
        return None
    images = _read_images(data["images"], path, rig, info, problems)
    anns = data["annotations"] if isinstance(data["annotations"], list) else None
    if anns is None:
        problems.error(path, "annotations", "must be a list")
        return None
    rows, seen = [], {}
    for i, ann in enumerate(anns):
        row = _read_annotation(ann, i, path, images, rig, info.hands, problems)
        if row is None:
            continue
        key = row[:3]
        if key in seen:
            problems.error(path, f"annotations[{i}]", f"duplicate: image {ann['image_id']!r} "
                           f"already has this hand in annotations[{seen[key]}]")  # fmt: skip
            continue
        seen[key] = i
        rows.append(row)
    return _assemble(images, rows, rig, info.hands)


def _assemble(images: dict, rows: list, rig: Rig, hands: tuple[str, ...]) -> Annotations2D:
    frames = np.array(sorted({f for _, f in images.values()}), dtype=np.int64)
    fidx = {int(f): k for k, f in enumerate(frames)}
    C, K, H = len(rig), len(frames), len(hands)
    kp = np.full((C, K, H, N_JOINTS, 2), np.nan)
    vis = np.zeros((C, K, H, N_JOINTS), np.int8)
    annotated = np.zeros((C, K, H), bool)
    area = np.zeros((C, K, H))
    labeled = np.zeros((C, K), bool)
    for c, f in images.values():
        labeled[c, fidx[f]] = True
    for c, f, h, xy, v, a in rows:
        k = fidx[f]
        kp[c, k, h], vis[c, k, h], area[c, k, h] = xy, v, a
        annotated[c, k, h] = bool((v > 0).any())
    return Annotations2D(kp, vis, annotated, area, labeled, frames, rig.names, hands)


def read_gt3d(root: Path, info: SequenceInfo, problems: Problems) -> GroundTruth3D | None:
    """Parse ``gt3d.npz`` (None when absent); problems for bad keys, shapes or units."""
    path = root / GT3D_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as d:
            data = {k: d[k] for k in d.files}
    except (ValueError, OSError, EOFError) as exc:
        problems.error(path, "", f"not a readable NPZ file ({exc})")
        return None
    for key in ("keypoints3d", "units"):
        if key not in data:
            problems.error(path, key, "missing array (see benchmark_data/README.md)")
    if problems_in(problems, path):
        return None
    kp, units = data["keypoints3d"], str(data["units"])
    H = len(info.hands)
    if kp.ndim != 4 or kp.shape[1:] != (H, N_JOINTS, 3):
        problems.error(path, "keypoints3d", f"must have shape (T, {H}, {N_JOINTS}, 3) for "
                       f"{info.n_persons} person(s), got {kp.shape}")  # fmt: skip
        return None
    if units not in UNIT_SCALE_M:
        problems.error(path, "units", f"must be one of {list(UNIT_SCALE_M)}, got {units!r}")
        return None
    frames = data.get("frames", np.arange(kp.shape[0]))
    if frames.shape != (kp.shape[0],) or not np.issubdtype(frames.dtype, np.integer):
        problems.error(path, "frames", f"must be {kp.shape[0]} integers, got {frames.shape}")
        return None
    if frames.size and (frames.min() < 0 or frames.max() >= info.n_frames):
        problems.error(path, "frames", f"indices must lie in [0, {info.n_frames})")
        return None
    return GroundTruth3D(kp.astype(float), frames.astype(np.int64), units, info.hands)


def problems_in(problems: Problems, path: Path) -> bool:
    """True if ``problems`` holds an error about ``path``."""
    return any(p.path == Path(path) for p in problems.errors)


def find_videos(root: Path) -> dict[str, Path]:
    """Camera name -> video file under ``videos/`` (the file's stem is the camera name)."""
    folder = root / VIDEOS_DIR
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix in VIDEO_SUFFIXES}


def read_sequence(root: str | Path, problems: Problems) -> SequenceData | None:
    """Read every file of a sequence folder, collecting problems; None if unusable."""
    root = Path(root)
    info = read_info(root, problems)
    rig = read_rig(root, problems)
    if info is None or rig is None:
        return None
    ann = read_annotations(root, rig, info, problems)
    gt = read_gt3d(root, info, problems)
    det = root / DETECTIONS_FILE
    truth = root / TRUTH2D_FILE
    return SequenceData(root, info, rig, ann, gt, det if det.is_file() else None,
                        find_videos(root), truth if truth.is_file() else None)  # fmt: skip


def load_sequence(root: str | Path) -> SequenceData:
    """Load a sequence; InputError listing its errors (warnings are logged)."""
    problems = Problems()
    seq = read_sequence(root, problems)
    for p in problems:
        if p.severity == "warning":
            log.warning("%s", p)
    if problems.errors or seq is None:
        lines = [str(p) for p in problems.errors[:10]]
        more = len(problems.errors) - len(lines)
        tail = f"\n... and {more} more; run `mvhand eval --check`" if more > 0 else ""
        raise InputError("invalid benchmark sequence:\n" + "\n".join(lines) + tail, root)
    return seq


def sequence_dirs(dataset: str | Path) -> list[Path]:
    """Sequence folders of a dataset (those with a sequence.toml), sorted; or the folder itself
    when it is a sequence."""
    dataset = Path(dataset)
    if not dataset.is_dir():
        raise InputError("dataset folder not found", dataset)
    if (dataset / SEQUENCE_FILE).is_file():
        return [dataset]
    return sorted(p for p in dataset.iterdir() if (p / SEQUENCE_FILE).is_file())


def load_dataset(dataset: str | Path) -> list[SequenceData]:
    """Load every sequence of a dataset; InputError if there is none or one is invalid."""
    dirs = sequence_dirs(dataset)
    if not dirs:
        raise InputError(f"no sequence folders (with a {SEQUENCE_FILE}) found; see "
                         "benchmark_data/README.md", dataset)  # fmt: skip
    return [load_sequence(d) for d in dirs]


# ---------------------------------------------------------------------------------- writing
def sequence_toml(info: SequenceInfo) -> str:
    """``sequence.toml`` text for ``info``."""
    import tomli_w

    doc: dict[str, Any] = {"sequence": {
        "level": info.level, "fps": info.fps, "n_frames": info.n_frames,
        "persons": info.n_persons, "description": info.description, "source": info.source,
    }}  # fmt: skip
    if info.metadata:
        doc["metadata"] = info.metadata
    return tomli_w.dumps(doc)


def annotations_to_coco(ann: Annotations2D, rig: Rig) -> dict[str, Any]:
    """The COCO-style JSON object of ``ann`` (image ids from 1, annotation ids from 1)."""
    images, anns = [], []
    for c, k in zip(*np.nonzero(ann.image_labeled), strict=True):
        cam, frame = ann.cameras[c], int(ann.frames[k])
        image_id = len(images) + 1
        w, h = rig[cam].size_px
        images.append({"id": image_id, "camera": cam, "frame": frame, "width": w, "height": h,
                       "file_name": f"{cam}/{frame:06d}.jpg"})  # fmt: skip
        for hand in np.flatnonzero(ann.annotated[c, k]):
            v = ann.visibility[c, k, hand]
            xy = np.where((v > 0)[:, None], ann.keypoints_px[c, k, hand], 0.0)
            kps = np.column_stack([xy, v]).ravel()
            lab = xy[v > 0]
            box = [*lab.min(0), *(lab.max(0) - lab.min(0))] if lab.size else [0.0] * 4
            anns.append({
                "id": len(anns) + 1, "image_id": image_id, "category_id": 1,
                "person": int(hand) // 2, "hand": "left" if hand % 2 == 0 else "right",
                "keypoints": [float(x) if i % 3 < 2 else int(x) for i, x in enumerate(kps)],
                "num_keypoints": int((v > 0).sum()),
                "bbox": [float(b) for b in box], "area": float(ann.area_px2[c, k, hand]),
            })  # fmt: skip
    categories = [{"id": 1, "name": "hand", "supercategory": "person",
                   "keypoints": list(JOINT_NAMES),
                   "skeleton": [[int(a) + 1, int(b) + 1] for a, b in BONES]}]  # fmt: skip
    return {"info": {"format": FORMAT_NAME, "version": 1}, "categories": categories,
            "images": images, "annotations": anns}  # fmt: skip


def write_manifest(dataset: str | Path, name: str, description: str,
                   sequences: list[SequenceInfo], created_by: str = "") -> Path:  # fmt: skip
    """Write ``dataset.toml``: the dataset's name, how it was made, and its sequences."""
    import tomli_w

    doc: dict[str, Any] = {
        "dataset": {"name": name, "description": description, "created_by": created_by},
        "sequences": [{"name": s.name, "level": s.level} for s in sequences],
    }  # fmt: skip
    path = Path(dataset) / DATASET_FILE
    write_text_atomic(path, tomli_w.dumps(doc))
    return path


def read_manifest(dataset: Path, problems: Problems) -> list[dict[str, Any]] | None:
    """The ``[[sequences]]`` of ``dataset.toml`` (None when absent or unreadable)."""
    path = dataset / DATASET_FILE
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problems.error(path, "", f"not valid TOML ({exc})")
        return None
    seqs = data.get("sequences", [])
    if not isinstance(seqs, list) or not all(isinstance(s, dict) and "name" in s for s in seqs):
        problems.error(path, "sequences", "must be an array of tables with a 'name'")
        return None
    return seqs


def write_sequence(root: str | Path, info: SequenceInfo, rig: Rig,
                   annotations: Annotations2D | None = None, gt3d: GroundTruth3D | None = None,
                   detections: Keypoints2D | None = None) -> Path:  # fmt: skip
    """Write a sequence folder in the benchmark format; returns the folder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(root / SEQUENCE_FILE, sequence_toml(info))
    write_text_atomic(root / CALIBRATION_FILE, calibration_to_toml(rig))
    if annotations is not None:
        text = json.dumps(annotations_to_coco(annotations, rig), separators=(",", ":"))
        write_text_atomic(root / ANNOTATIONS_FILE, text)
    if gt3d is not None:
        save_npz_atomic(root / GT3D_FILE, keypoints3d=gt3d.keypoints3d, frames=gt3d.frames,
                        units=np.array(gt3d.units), hands=np.array(gt3d.hands),
                        joints=np.array(JOINT_NAMES))  # fmt: skip
    if detections is not None:
        save_keypoints(root / DETECTIONS_FILE, detections)
    return root


# ------------------------------------------------------------------------- dense 2D truth
@dataclass(frozen=True, eq=False)
class Truth2D:
    """The 2D truth of every frame and view (``truth_2d.npz``, written by rendered sets).

    Attributes:
        keypoints_px: ``(C, T, H, 21, 2)`` the calibration's projection (distortion included)
            of the 3D truth, also where the joint is hidden or outside the image.
        visibility: ``(C, T, H, 21)`` COCO flags: 0 outside the image (or behind the camera),
            1 inside but hidden, 2 visible.
        occluder: ``(C, T, H, 21)`` what hides the joint, an index into ``occluder_names``
            ("visible", "self", "other_hand", "instrument", "scene", "outside").
        cameras, hands, occluder_names: the names along C, H and of the codes.
    """

    keypoints_px: np.ndarray
    visibility: np.ndarray
    occluder: np.ndarray
    cameras: tuple[str, ...]
    hands: tuple[str, ...]
    occluder_names: tuple[str, ...]


def save_truth2d(root: str | Path, truth: Truth2D) -> Path:
    """Write ``truth_2d.npz`` into the sequence folder ``root``."""
    path = Path(root) / TRUTH2D_FILE
    save_npz_atomic(path, keypoints_px=truth.keypoints_px.astype(np.float32),
                    visibility=truth.visibility.astype(np.int8),
                    occluder=truth.occluder.astype(np.int8), cameras=np.array(truth.cameras),
                    hands=np.array(truth.hands), occluder_names=np.array(truth.occluder_names),
                    joints=np.array(JOINT_NAMES))  # fmt: skip
    return path


def load_truth2d(path: str | Path) -> Truth2D:
    """Read ``truth_2d.npz``; InputError if it is malformed."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            out = Truth2D(z["keypoints_px"].astype(float), z["visibility"], z["occluder"],
                          tuple(str(c) for c in z["cameras"]), tuple(str(h) for h in z["hands"]),
                          tuple(str(o) for o in z["occluder_names"]))  # fmt: skip
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"not a readable truth_2d file ({exc})", path) from None
    C, T, H = out.visibility.shape[:3]
    if (out.keypoints_px.shape != (C, T, H, N_JOINTS, 2)
            or out.occluder.shape != (C, T, H, N_JOINTS)):  # fmt: skip
        raise InputError("keypoints_px, visibility and occluder shapes disagree", path)
    return out
