"""Several people in the figures: per-person 2D overlays and the people summary page.

Every figure colours a person by its id with one palette (:func:`mvhand.viz.geometry.person_rgb`,
the same in 2D and 3D); a person's left hand is drawn paler than its right, its box and label
are not. The 2D overlays show, per camera and frame (from ``hands3d_people.npz``):

- each associated 2D hand in its person's colour, in a box labelled ``P<id> L`` / ``P<id> R``
  (the side is the 3D decision, ``det_side``, not the detector's slot);
- the person's 2D arm chains (shoulder-elbow-wrist of the row's body) in the same colour;
- detections no person got in grey, their hands labelled ``?``;
- every person-hand's 3D joints reprojected into the camera (rings in the person's colour).

Example:
    >>> pf = load_people("out/hands3d_people.npz")                  # doctest: +SKIP
    >>> write_people_overlays("out/overlay", videos, pf, rig)        # doctest: +SKIP
    >>> people_summary_figure(pf, "out/summary_people.png")          # doctest: +SKIP
"""

from __future__ import annotations

import logging
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvhand.core.camera import UNIT_SCALE_M, Rig
from mvhand.core.people import ARM_CHAIN, Detections2D
from mvhand.core.skeleton import BONES, bone_lengths
from mvhand.errors import InputError
from mvhand.io.people import PeopleFile
from mvhand.viz.geometry import person_hand_rgb, person_rgb
from mvhand.viz.overlay import (
    Progress,
    _box_around,
    _inside,
    _pt,
    check_frame_indices,
    match_cameras,
    write_camera_videos,
)

log = logging.getLogger(__name__)

#: Side letters of ``det_side`` (0 left, 1 right).
SIDE_LETTER = ("L", "R")
#: A person-hand "has 3D" in a frame with at least this many joints (as the report counts).
MIN_JOINTS_3D = 10
#: The wrist speed above which the report suspects an identity switch (m/s), drawn as a line.
MAX_WRIST_SPEED_MPS = 5.0


def rgb255(rgb: np.ndarray) -> tuple[int, int, int]:
    """A colour in [0, 1] as 8-bit RGB."""
    r, g, b = (int(round(255 * float(v))) for v in rgb)
    return r, g, b


def hand_label(person_id: int, side: int) -> str:
    """``"P<id> L"`` / ``"P<id> R"``; ``"?"`` for a hand no person got."""
    if person_id < 0:
        return "?"
    return f"P{person_id} {SIDE_LETTER[side] if side in (0, 1) else '?'}"


@dataclass(frozen=True, eq=False)
class CameraFrame:
    """What one camera shows at one frame, with each row's person ids (not slots).

    Attributes:
        rows: ``(n,)`` rows of the detection table.
        hands_px: ``(n, 2, 21, 2)``; hands_scores: ``(n, 2, 21)``.
        body_px: ``(n, 17, 2)`` COCO-17.
        body_person: ``(n,)`` person id of each row's body, -1 if not associated.
        hand_person: ``(n, 2)`` person id of each hand slot, -1 if not associated.
        side: ``(n, 2)`` 3D side of each hand slot (0 left, 1 right, -1 none).
        person_ids: ``(P,)`` ids of the reprojected people.
        reprojected_px: ``(P, 2, 21, 2)`` everybody's 3D hands in this camera, or None.
    """

    rows: np.ndarray
    hands_px: np.ndarray
    hands_scores: np.ndarray
    body_px: np.ndarray
    body_person: np.ndarray
    hand_person: np.ndarray
    side: np.ndarray
    person_ids: np.ndarray
    reprojected_px: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class HandBox:
    """A hand box drawn by :func:`draw_people_frame`.

    Attributes:
        row, slot: the detection row and its hand slot.
        person: the person id, -1 if not associated.
        side: 0 left, 1 right, -1 unknown.
        label: the text drawn by the box.
        box: ``(4,)`` x0, y0, x1, y1 pixels.
        rgb: the box's 8-bit colour.
        label_box: ``(4,)`` where the label went (above the box, else below it, else
            stacked higher up: labels of crowded hands do not cover each other where there
            is room); None until placed.
    """

    row: int
    slot: int
    person: int
    side: int
    label: str
    box: np.ndarray
    rgb: tuple[int, int, int]
    label_box: np.ndarray | None = None


def rows_by_camera_frame(det: Detections2D) -> dict[tuple[int, int], np.ndarray]:
    """The detection rows of each (camera, frame)."""
    order = np.lexsort((det.frame, det.camera))
    keys = np.stack([det.camera[order], det.frame[order]], 1)
    starts = np.flatnonzero(np.r_[True, (np.diff(keys, axis=0) != 0).any(1)]) if len(order) else []
    bounds = list(starts) + [len(order)]
    return {(int(keys[a, 0]), int(keys[a, 1])): order[a:b]
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)}  # fmt: skip


def camera_frame(people: PeopleFile, camera: int, t: int,
                 reprojected_px: np.ndarray | None = None,
                 index: dict[tuple[int, int], np.ndarray] | None = None
                 ) -> CameraFrame:  # fmt: skip
    """The :class:`CameraFrame` of camera index ``camera`` at result frame ``t``.

    Args:
        people: the people file (needs its detections).
        camera: index into ``people.detections.cameras``.
        t: result frame (row of ``hands3d``; the detections' frame).
        reprojected_px: ``(P, 2, 21, 2)`` the people's 3D hands projected into this camera.
        index: :func:`rows_by_camera_frame` of the detections (computed if None).
    """
    det, res = people.detections, people.result
    if det is None:
        raise InputError("the people file holds no 2D detections (written by an earlier "
                         "version); run again to draw the overlays")  # fmt: skip
    index = rows_by_camera_frame(det) if index is None else index
    rows = index.get((int(camera), int(t)), np.zeros(0, np.int64))
    ids = np.r_[res.person_ids, -1]  # slot -1 -> id -1
    return CameraFrame(rows, det.hands_px[rows], det.hands_scores[rows], det.body_px[rows],
                       ids[res.det_person[rows]], ids[res.det_hand_person[rows]],
                       res.det_side[rows], res.person_ids, reprojected_px)  # fmt: skip


def draw_people_frame(image_rgb: np.ndarray, frame: CameraFrame,
                      min_score: float = 0.0) -> list[HandBox]:  # fmt: skip
    """Draw one camera's people on ``image_rgb`` (``(h, w, 3)`` uint8 RGB, modified in place).

    Args:
        image_rgb: the camera's image.
        frame: what to draw.
        min_score: hand keypoints below this score are not drawn.

    Returns:
        The hand boxes drawn, unassociated ones first (they are drawn underneath).
    """
    h_img = image_rgb.shape[0]
    r = max(2, int(round(h_img / 400)))
    lw = max(1, r // 2)
    unassoc_first = np.argsort(frame.body_person >= 0, kind="stable")
    for i in unassoc_first:
        _draw_arms(image_rgb, frame.body_px[i], rgb255(person_rgb(int(frame.body_person[i]))),
                   lw + 2, r + 1)  # fmt: skip
    if frame.reprojected_px is not None:
        for p, pid in enumerate(frame.person_ids):
            for s in (0, 1):
                _draw_rings(image_rgb, frame.reprojected_px[p, s],
                            rgb255(person_hand_rgb(int(pid), s)), r + 2)  # fmt: skip
    slots = [(i, k) for i in range(len(frame.rows)) for k in (0, 1)]
    slots.sort(key=lambda ik: frame.hand_person[ik] >= 0)
    boxes = []
    for i, k in slots:
        box = _draw_hand(image_rgb, frame, i, k, min_score, r, lw)
        if box is not None:
            boxes.append(box)
    return _draw_labels(image_rgb, boxes)


def _draw_hand(image, frame: CameraFrame, i: int, k: int, min_score: float, r: int,
               lw: int) -> HandBox | None:  # fmt: skip
    import cv2

    kp = frame.hands_px[i, k].copy()
    kp[frame.hands_scores[i, k] < min_score] = np.nan
    box = _box_around(kp)
    if box is None:
        return None
    pid, side = int(frame.hand_person[i, k]), int(frame.side[i, k])
    kp_rgb = rgb255(person_hand_rgb(pid, side) if pid >= 0 else person_rgb(-1))
    box_rgb = rgb255(person_rgb(pid))
    for a, b in BONES:
        if _inside(kp[a]) and _inside(kp[b]):
            cv2.line(image, _pt(kp[a]), _pt(kp[b]), kp_rgb, lw + 1, cv2.LINE_AA)
    for p in kp:
        if _inside(p):
            cv2.circle(image, _pt(p), r, kp_rgb, -1, cv2.LINE_AA)
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    cv2.rectangle(image, (x0, y0), (x1, y1), box_rgb, lw + 1, cv2.LINE_8)  # exact colour
    return HandBox(int(frame.rows[i]), k, pid, side if pid >= 0 else -1, hand_label(pid, side),
                   np.array([x0, y0, x1, y1], float), box_rgb)  # fmt: skip


def _draw_labels(image, boxes: list[HandBox]) -> list[HandBox]:
    """Each box's label at the first free place (above, below, then stacked above); the
    associated hands choose first. Drawn after every hand, so that no hand covers a label."""
    from dataclasses import replace

    import cv2

    scale, thick = _text_size(image)
    h, w = image.shape[:2]
    taken: list[np.ndarray] = []
    placed = {}
    for n in sorted(range(len(boxes)), key=lambda n: boxes[n].person < 0):
        b = boxes[n]
        (tw, th), base = cv2.getTextSize(b.label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick + 2)
        x0, y0, _, y1 = b.box
        step = th + base + 2
        tops = [y0 - 4 - step, y1 + 4] + [y0 - 4 - step * (m + 2) for m in range(3)]
        rects = [np.array([x0, t, x0 + tw, t + step]) for t in tops]
        free = [q for q in rects if q[1] >= 0 and q[3] <= h and q[0] < w
                and not any(_overlap(q, o) for o in taken)]  # fmt: skip
        rect = free[0] if free else rects[0]
        taken.append(rect)
        placed[n] = replace(b, label_box=rect)
        _text(image, b.label, (int(rect[0]), int(rect[3] - base - 1)), b.rgb)
    return [placed[n] for n in range(len(boxes))]


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


def _draw_arms(image, body_px: np.ndarray, rgb, width: int, radius: int) -> None:
    import cv2

    for chain in ARM_CHAIN:
        pts = body_px[chain]
        for a, b in zip(pts[:-1], pts[1:], strict=True):
            if _inside(a) and _inside(b):
                cv2.line(image, _pt(a), _pt(b), rgb, width, cv2.LINE_AA)
        for p in pts:
            if _inside(p):
                cv2.circle(image, _pt(p), radius, rgb, -1, cv2.LINE_AA)


def _draw_rings(image, pts: np.ndarray, rgb, radius: int) -> None:
    import cv2

    for a, b in BONES:
        if _inside(pts[a]) and _inside(pts[b]):
            cv2.line(image, _pt(pts[a]), _pt(pts[b]), rgb, 1, cv2.LINE_AA)
    for p in pts:
        if _inside(p):
            cv2.circle(image, _pt(p), radius, rgb, 1, cv2.LINE_AA)


def _text_size(image) -> tuple[float, int]:
    """Font scale and stroke of the labels (readable in the grid video too)."""
    return max(0.45, image.shape[0] / 1300), max(1, int(round(image.shape[0] / 700)))


def _text(image, text: str, org: tuple[int, int], rgb) -> None:
    """Text with a dark outline (readable on any video)."""
    import cv2

    scale, thick = _text_size(image)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2,
                cv2.LINE_AA)  # fmt: skip
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, rgb, thick, cv2.LINE_AA)


def write_people_overlays(out_dir: str | Path, videos: dict[str, Path], people: PeopleFile,
                          rig: Rig, frame_indices=None, grid: bool = True,
                          progress: Progress | None = None, fps: float | None = None, *,
                          min_score: float = 0.0) -> list[Path]:  # fmt: skip
    """Write ``out_dir/<camera>.mp4`` per camera (and ``grid.mp4``) with every person drawn.

    Args:
        out_dir: output folder (created).
        videos: camera name -> video file.
        people: the people file, with its detections.
        rig: the calibration (converted to the results' units if need be).
        frame_indices: ``(T,)`` video frame of each result frame; None: ``people.frames``,
            else ``0 .. T-1``.
        grid: also write the grid video of all cameras.
        progress: ``progress(done, total)`` per frame.
        fps: frame rate of the outputs (default: the detections', else the first video's).
        min_score: hand keypoints below this score are not drawn.

    Returns:
        The written videos, cameras in the detections' order, then the grid.

    Raises:
        InputError: no detections in the file, no matching video, a camera missing from the
            calibration, videos of another size, or an unwritable output.
    """
    det, res = people.detections, people.result
    if det is None:
        raise InputError("the people file holds no 2D detections (written by an earlier "
                         "version); run again to draw the overlays")  # fmt: skip
    idx = check_frame_indices(people.frames if frame_indices is None else frame_indices,
                              res.n_frames)  # fmt: skip
    cams = match_cameras(videos, det.cameras, rig)
    rig = rig if rig.units == res.units else rig.to_units(res.units)
    reproj = {c: rig[c].project(res.hands3d) for c in cams}  # (T, P, 2, 21, 2)
    index = rows_by_camera_frame(det)

    def draw(_k: int, cam: str, t: int, image: np.ndarray) -> np.ndarray:
        frame = camera_frame(people, det.cameras.index(cam), t, reproj[cam][t], index)
        draw_people_frame(image, frame, min_score)
        return image

    return write_camera_videos(out_dir, {c: videos[c] for c in cams}, rig, idx, draw, grid,
                               progress, fps or det.fps)  # fmt: skip


# ------------------------------------------------------------------------- the summary page
@dataclass(frozen=True, eq=False)
class PersonHandRow:
    """One person-hand of the summary page.

    Attributes:
        person: the person id; side: 0 left, 1 right; label: e.g. ``"P2 left"``.
        has_3d: ``(T,)`` frames with at least :data:`MIN_JOINTS_3D` joints in 3D.
        n_views: ``(T,)`` views of the 3D hand (most over its joints; 0 without 3D).
        wrist_speed_mps: ``(T,)`` wrist speed since the previous frame with a wrist (NaN
            where there is none).
        bone_cv: median over the 20 bones of each bone length's spread (std / median) over
            time; NaN with too few frames.
    """

    person: int
    side: int
    label: str
    has_3d: np.ndarray
    n_views: np.ndarray
    wrist_speed_mps: np.ndarray
    bone_cv: float


def person_hand_rows(people: PeopleFile, fps: float | None = None) -> list[PersonHandRow]:
    """Per person (in slot order) and hand (left, right) the figures of the summary page.

    Args:
        people: the people file.
        fps: frame rate for the speeds (default: the detections', else 30).
    """
    res = people.result
    fps = float(fps or (people.detections.fps if people.detections is not None else None) or 30)
    to_m = UNIT_SCALE_M[res.units]
    T = res.n_frames
    out = []
    for p, pid in enumerate(res.person_ids.tolist()):
        for s, side in enumerate(("left", "right")):
            pts = res.hands3d[:, p, s]
            ok = np.isfinite(pts).all(-1)
            has = ok.sum(-1) >= MIN_JOINTS_3D
            views = np.where(ok, res.hands_n_views[:, p, s], 0).max(-1)
            speed = np.full(T, np.nan)
            t = np.flatnonzero(ok[:, 0])
            if len(t) > 1:
                step = np.linalg.norm(np.diff(pts[t, 0], axis=0), axis=-1) * to_m * fps
                speed[t[1:]] = step / np.diff(t)
            out.append(PersonHandRow(int(pid), s, f"P{pid} {side}", has,
                                     np.where(has, views, 0).astype(np.int64), speed,
                                     _bone_cv(pts[has])))  # fmt: skip
    return out


def _bone_cv(pts: np.ndarray) -> float:
    if len(pts) < 2:
        return float("nan")
    lengths = bone_lengths(pts)  # (T, 20)
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.isfinite(lengths).sum(0)
        if (n >= 2).sum() == 0:
            return float("nan")
        cv = np.nanstd(lengths[:, n >= 2], 0) / np.nanmedian(lengths[:, n >= 2], 0)
    return float(np.nanmedian(cv))


def people_section(report: dict | None) -> dict:
    """The people part of a report: ``report["people"]`` in a run's report.json, the report
    itself in ``mvhand people``'s (where ``"people"`` is the list of persons)."""
    if not report:
        return {}
    sec = report.get("people")
    return sec if isinstance(sec, dict) else report


def people_summary_figure(people: PeopleFile, path: str | Path, title: str = "",
                          fps: float | None = None, *, report: dict | None = None) -> Path:
    """Write the one-page people summary PNG to ``path`` and return it.

    Panels: per person-hand, a timeline of the frames with 3D coloured by the number of views
    (one row per person-hand, labelled in the person's colour); the wrist speed over time with
    the 5 m/s line; the bone-length spread per person-hand. With ``report`` (report.json, or
    its ``"people"`` section), the suspected identity switches (red crosses) and ambiguous
    frames (shaded) are marked.

    Args:
        people: the people file.
        path: the PNG file.
        title: the figure title (default: "mvhand: several people").
        fps: frame rate for the speeds and a time axis in seconds (default: the
            detections'; the axis shows frames when the rate is not known).
        report: the run's report, or None.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rate = fps or (people.detections.fps if people.detections is not None else None)
    rows = person_hand_rows(people, rate)
    sec = people_section(report)
    T = people.result.n_frames
    x = (np.arange(T) / rate) if rate else np.arange(T, dtype=float)
    xlabel = "time (s)" if rate else "frame"
    n = max(len(rows), 1)
    fig = plt.figure(figsize=(11.7, 5.4 + 0.22 * n), dpi=110)
    gs = fig.add_gridspec(3, 2, height_ratios=[0.6 + 0.22 * n, 2.0, 1.6], width_ratios=[3, 1],
                          hspace=0.55, wspace=0.2)  # fmt: skip
    fig.suptitle(title or "mvhand: several people", fontsize=13)
    _timeline(fig.add_subplot(gs[0, :]), rows, x, xlabel, sec)
    _speeds(fig.add_subplot(gs[1, :]), rows, x, xlabel, sec)
    _spread(fig.add_subplot(gs[2, 0]), rows)
    _notes(fig.add_subplot(gs[2, 1]), people, rows, sec)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _x_of(x: np.ndarray, t: int) -> float:
    return float(x[min(max(int(t), 0), len(x) - 1)])


def _timeline(ax, rows: list[PersonHandRow], x: np.ndarray, xlabel: str, sec: dict) -> None:
    import matplotlib.colors as mcolors

    if not rows:
        ax.axis("off")
        ax.text(0.5, 0.5, "no person with 3D (see report.json's warnings)", ha="center",
                va="center", fontsize=11, transform=ax.transAxes)  # fmt: skip
        return
    data = np.array([r.n_views for r in rows], float).reshape(len(rows), len(x))
    data[data == 0] = np.nan
    vmax = max(2.0, float(np.nanmax(data)) if np.isfinite(data).any() else 2.0)
    dx = (x[1] - x[0]) if len(x) > 1 else 1.0
    cmap = _views_cmap()
    cmap = cmap.with_extremes(bad=mcolors.to_rgba("0.85"))
    im = ax.imshow(data, aspect="auto", interpolation="nearest", cmap=cmap, vmin=1, vmax=vmax,
                   extent=(x[0] - dx / 2, x[-1] + dx / 2, len(rows) - 0.5, -0.5))  # fmt: skip
    ax.set_yticks(range(len(rows)), [r.label for r in rows], fontsize=7)
    for tick, r in zip(ax.get_yticklabels(), rows, strict=True):
        tick.set_color(person_rgb(r.person) * 0.85)
        tick.set_fontweight("bold")
    for t in sec.get("ambiguous_frames", []) or []:
        ax.axvspan(_x_of(x, t) - dx / 2, _x_of(x, t) + dx / 2, color="red", alpha=0.25, lw=0)
    where = {(r.person, r.label.split()[1]): i for i, r in enumerate(rows)}
    for sw in sec.get("suspected_identity_switches", []) or []:
        i = where.get((sw.get("person"), sw.get("hand")))
        if i is not None:
            ax.plot(_x_of(x, sw["frame"]), i, "x", color="red", ms=7, mew=2)
    ax.set_xlabel(xlabel)
    ax.set_title("frames with 3D per person and hand (colour: views; grey: none; red: "
                 "ambiguous frames, x: suspected identity switches)", fontsize=9)  # fmt: skip
    ax.figure.colorbar(im, ax=ax, fraction=0.02, pad=0.01, label="views")


def _views_cmap():
    """The colour map of the view counts (a copy, safe to modify)."""
    import matplotlib

    return matplotlib.colormaps["viridis"].copy()


def _speeds(ax, rows: list[PersonHandRow], x, xlabel: str, sec: dict) -> None:
    top = MAX_WRIST_SPEED_MPS
    for r in rows:
        v = r.wrist_speed_mps
        if np.isfinite(v).any():
            ax.plot(x, v, color=person_hand_rgb(r.person, r.side) * 0.9, lw=1.0,
                    ls="--" if r.side == 0 else "-", label=r.label)  # fmt: skip
            top = max(top, float(np.nanmax(v)))
    ax.axhline(MAX_WRIST_SPEED_MPS, color="red", lw=1.0, ls=":")
    ax.text(x[0], MAX_WRIST_SPEED_MPS, f" {MAX_WRIST_SPEED_MPS:g} m/s", color="red", va="bottom",
            fontsize=8)  # fmt: skip
    for sw in sec.get("suspected_identity_switches", []) or []:
        ax.plot(_x_of(x, sw["frame"]), sw.get("speed_mps", top), "x", color="red", ms=7, mew=2)
    ax.set_ylim(0, top * 1.5)  # room for the legend above the line
    ax.set_xlabel(xlabel)
    ax.set_ylabel("wrist speed (m/s)")
    ax.set_title("wrist speed (left hands dashed); a jump above the red line is a suspected "
                 "identity switch", fontsize=9)  # fmt: skip
    if rows:
        ax.legend(fontsize=6, ncol=min(len(rows), 8), loc="upper right")
    ax.grid(alpha=0.3)


def _spread(ax, rows: list[PersonHandRow]) -> None:
    cv = [100 * r.bone_cv if np.isfinite(r.bone_cv) else 0.0 for r in rows]
    xs = np.arange(len(rows))
    ax.bar(xs, cv, color=[person_hand_rgb(r.person, r.side) for r in rows], edgecolor="k",
           linewidth=0.4)  # fmt: skip
    ax.set_xticks(xs, [r.label.replace(" left", " L").replace(" right", " R") for r in rows],
                  fontsize=7, rotation=45 if len(rows) > 10 else 0)  # fmt: skip
    ax.set_ylabel("bone length spread (%)")
    ax.set_title("bone lengths over time: median spread (std / median) per person-hand; "
                 "steady skeletons stay low", fontsize=9)  # fmt: skip
    ax.grid(alpha=0.3, axis="y")


def _notes(ax, people: PeopleFile, rows: list[PersonHandRow], sec: dict) -> None:
    ax.axis("off")
    lines = [f"{people.result.n_people} people, {people.result.n_frames} frames"]
    if people.primary is not None:
        lines.append(f"primary (hands3d.npz): P{people.primary}")
    for left, right in zip(rows[::2], rows[1::2], strict=True):
        lines.append(f"P{left.person}: frames with 3D L {int(left.has_3d.sum())}, "
                     f"R {int(right.has_3d.sum())}")  # fmt: skip
    sw, amb = sec.get("suspected_identity_switches"), sec.get("ambiguous_frames")
    if sw is not None:
        lines.append(f"suspected identity switches: {len(sw)}")
    if amb is not None:
        lines.append(f"ambiguous frames: {len(amb)}")
    for w in (sec.get("warnings") or [])[:3]:
        lines += textwrap.wrap(f"! {w}", 44, subsequent_indent="  ")
    ax.text(0, 1, "\n".join(lines[:26]), va="top", ha="left", fontsize=7, family="monospace",
            transform=ax.transAxes)  # fmt: skip
