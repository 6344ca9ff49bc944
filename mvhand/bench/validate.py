"""The dataset validator behind ``mvhand eval --check``: every problem, with its file and entry.

Beyond what the readers of :mod:`mvhand.bench.dataset` check (syntax, keys, shapes, ranges,
camera names and image sizes against the calibration), it cross-checks the files of a sequence:
detections against the calibration and the frame count, videos against the calibration, and the
3D ground truth against the 2D labels (reprojection), which catches wrong units or a
calibration that does not belong to the recording.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mvhand.bench.dataset import (
    ANNOTATIONS_FILE,
    DATASET_FILE,
    GT3D_FILE,
    SEQUENCE_FILE,
    Problems,
    SequenceData,
    read_manifest,
    read_sequence,
)
from mvhand.core import metrics
from mvhand.errors import MvhandError
from mvhand.io.keypoints import load_keypoints

#: Median reprojection error (px) of the 3D ground truth onto the 2D labels above which the
#: validator warns that calibration, ground truth and labels disagree.
REPROJECTION_WARN_PX = 10.0


def check_dataset(dataset: str | Path) -> Problems:
    """Validate a dataset folder (or one sequence folder); returns every problem found."""
    dataset = Path(dataset)
    problems = Problems()
    if not dataset.is_dir():
        problems.error(dataset, "", "dataset folder not found")
        return problems
    if (dataset / SEQUENCE_FILE).is_file():
        dirs = [dataset]
    else:
        dirs = sorted(p for p in dataset.iterdir() if p.is_dir())
        for d in dirs:
            if not (d / SEQUENCE_FILE).is_file() and not d.name.startswith("."):
                problems.warn(d, "", f"folder without {SEQUENCE_FILE}: not a sequence, skipped")
        dirs = [d for d in dirs if (d / SEQUENCE_FILE).is_file()]
    if not dirs:
        problems.error(dataset, "", f"no sequence folders (with a {SEQUENCE_FILE}) found")
    levels = {}
    for d in dirs:
        seq = check_sequence(d, problems)
        if seq is not None:
            levels[d.name] = seq.info.level
    _check_manifest(dataset, levels, problems)
    return problems


def _check_manifest(dataset: Path, levels: dict[str, str], problems: Problems) -> None:
    """``dataset.toml`` (optional) must list the sequences that are there, with their levels."""
    listed = read_manifest(dataset, problems)
    if listed is None:
        return
    path = dataset / DATASET_FILE
    for i, entry in enumerate(listed):
        name = str(entry["name"])
        if not (dataset / name / SEQUENCE_FILE).is_file():
            problems.error(path, f"sequences[{i}]", f"sequence folder {name!r} not found")
        elif name in levels and entry.get("level", levels[name]) != levels[name]:
            problems.error(path, f"sequences[{i}]", f"level {entry.get('level')!r} disagrees with "
                           f"{name}/{SEQUENCE_FILE} ({levels[name]!r})")  # fmt: skip
    names = {str(e["name"]) for e in listed}
    for name in sorted(set(levels) - names):
        problems.warn(path, "sequences", f"sequence folder {name!r} is not listed")


def check_sequence(root: Path, problems: Problems) -> SequenceData | None:
    """Read one sequence and cross-check its files; problems are appended."""
    seq = read_sequence(root, problems)
    if seq is None:
        return None
    if seq.annotations is None and seq.gt3d is None:
        problems.warn(root, "", f"neither {ANNOTATIONS_FILE} nor {GT3D_FILE}: nothing to score "
                      "against")  # fmt: skip
    elif seq.annotations is not None and seq.annotations.n_instances == 0:
        problems.warn(root / ANNOTATIONS_FILE, "", "no annotated hand")
    _check_detections(seq, problems)
    _check_videos(seq, problems)
    _check_reprojection(seq, problems)
    return seq


def _check_detections(seq: SequenceData, problems: Problems) -> None:
    path = seq.detections_path
    if path is None:
        return
    try:
        kp = load_keypoints(path)
    except MvhandError as exc:
        problems.error(path, "", str(exc).removeprefix(f"{path}: "))
        return
    unknown = [c for c in kp.cameras if c not in seq.rig.names]
    if unknown:
        problems.error(path, "cameras", f"{', '.join(unknown)} not in the calibration "
                       f"({', '.join(seq.rig.names)})")  # fmt: skip
    absent = [c for c in seq.rig.names if c not in kp.cameras]
    if absent:
        problems.warn(path, "cameras",
                      f"no detections for calibrated camera(s) {', '.join(absent)}")
    if kp.n_frames != seq.info.n_frames:
        problems.error(path, "keypoints", f"{kp.n_frames} frames, but sequence.toml says "
                       f"n_frames = {seq.info.n_frames}")  # fmt: skip
    if len(kp.hands) != 2:
        problems.error(path, "hands", f"detections must hold the primary person's 2 hands, "
                       f"got {len(kp.hands)}")  # fmt: skip
    for c, name in enumerate(kp.cameras):
        if name not in seq.rig.names:
            continue
        w, h = seq.rig[name].size_px
        xy = kp.keypoints_px[c]
        far = np.isfinite(xy).all(-1) & ((xy < -0.25 * np.array([w, h]))
                                         | (xy > 1.25 * np.array([w, h]))).any(-1)  # fmt: skip
        if far.mean() > 0.05:
            problems.warn(path, f"keypoints[{name}]",
                          f"{100 * far.mean():.0f} % of detections lie far outside the "
                          f"{w}x{h} image: wrong camera size or order?")  # fmt: skip


def _check_videos(seq: SequenceData, problems: Problems) -> None:
    if not seq.videos:
        return
    import cv2

    for cam, path in seq.videos.items():
        if cam not in seq.rig.names:
            problems.error(path, "", f"video for camera {cam!r}, which is not in the calibration "
                           f"({', '.join(seq.rig.names)})")  # fmt: skip
            continue
        cap = cv2.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                problems.error(path, "", "cannot be opened as a video")
                continue
            size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            cap.release()
        if size != seq.rig[cam].size_px:
            problems.error(path, "", f"frame size {size[0]}x{size[1]} disagrees with the "
                           f"calibration of {cam} ({seq.rig[cam].size_px[0]}x"
                           f"{seq.rig[cam].size_px[1]})")  # fmt: skip
        if count > 0 and count != seq.info.n_frames:
            problems.warn(path, "", f"{count} frames, sequence.toml says {seq.info.n_frames}")


def _check_reprojection(seq: SequenceData, problems: Problems) -> None:
    ann, gt = seq.annotations, seq.gt3d
    if ann is None or gt is None or ann.n_instances == 0:
        return
    pts = gt.dense(seq.info.n_frames, seq.rig.units)[ann.frames]  # (K, H, J, 3)
    err = metrics.reprojection_errors(seq.rig, pts, ann.keypoints_px)
    for c, cam in enumerate(seq.rig.names):
        e = err[c][np.isfinite(err[c])]
        if e.size and np.median(e) > REPROJECTION_WARN_PX:
            problems.warn(seq.root / GT3D_FILE, f"camera {cam}",
                          f"the 3D ground truth reprojects {np.median(e):.1f} px (median) from "
                          f"the 2D labels: calibration, units or labels disagree")  # fmt: skip
