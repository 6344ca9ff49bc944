"""Several people in the figures, against a synthetic people run with known truth: the label of
every 2D box (person and side), the colours (one palette, the same in 2D and 3D), the overlay
videos, the summary page, the 3D scene per person, and a run without people unchanged."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from test_viz_overlay import _read_frame

from mvhand.bench.synth import SynthConfig, score_people, synthesize_people
from mvhand.cli.main import cli
from mvhand.core.camera import Camera, Rig
from mvhand.core.data import Hands3D
from mvhand.core.people import ARM_CHAIN, Detections2D
from mvhand.errors import InputError
from mvhand.io.calibration import save_calibration
from mvhand.io.people import PeopleFile, load_people, save_people
from mvhand.io.results import save_hands3d
from mvhand.stages.people import reconstruct_people
from mvhand.viz import geometry as geo
from mvhand.viz.people import (
    CameraFrame,
    camera_frame,
    draw_people_frame,
    hand_label,
    people_summary_figure,
    person_hand_rows,
    rgb255,
    rows_by_camera_frame,
    write_people_overlays,
)
from mvhand.viz.rundata import load_run
from mvhand.viz.scene import Scene

cv2 = pytest.importorskip("cv2")

#: The synthetic rig is 4K; its images are drawn at 1/8 (270 x 480 px) to stay fast.
SHRINK = 1 / 8
N_FRAMES = 24
#: Share of the associated boxes whose label must be the true person and side (the
#: association on L3 gets about 97 % of the hands right; the label must say what it decided).
MIN_TRUE_LABELS = 0.9
#: A 1 px anti-aliased ring (or text) pixel keeps its colour within this (per channel, 0-255).
RING_COLOUR_TOL = 45
#: mp4v changes colours; a box edge pixel stays within this per channel.
VIDEO_COLOUR_TOL = 70


def _shrink(rig: Rig, det: Detections2D, s: float) -> tuple[Rig, Detections2D]:
    """The same cameras with images ``s`` times the size (pixels scale exactly by ``s``)."""
    cams = []
    for c in rig.cameras:
        K = c.K.copy()
        K[:2] *= s
        size = (int(round(c.size_px[0] * s)), int(round(c.size_px[1] * s)))
        cams.append(Camera(c.name, size, K, c.dist, c.R_cam_world, c.t_cam_world, c.model))
    small = Detections2D(det.camera, det.frame, det.body_px * s, det.body_scores,
                         det.hands_px * s, det.hands_scores, det.source, det.cameras,
                         det.n_frames, det.fps)  # fmt: skip
    return Rig(tuple(cams), rig.units), small


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A people run folder (as `mvhand run --set detect.max_people=4` writes it) and the truth."""
    seq = synthesize_people(SynthConfig(level="L3", n_cameras=6, n_frames=N_FRAMES, seed=3))
    res = reconstruct_people(seq.rig, seq.detections)
    rig, det = _shrink(seq.rig, seq.detections, SHRINK)
    folder = tmp_path_factory.mktemp("people") / "run"
    folder.mkdir()
    save_people(folder / "hands3d_people.npz", res, det, frames=range(N_FRAMES), primary=0)
    h = Hands3D(res.hands3d[:, 0], res.hands_reprojection_error_px[:, 0],
                res.hands_n_views[:, 0], np.isfinite(res.hands3d[:, 0]).all(-1).astype(float))
    save_hands3d(folder / "hands3d.npz", h, fps=30.0)
    save_calibration(folder / "calibration.toml", rig)
    (folder / "report.json").write_text(json.dumps({"people": res.report}, default=float))
    match = score_people(seq, res.hands3d, res.det_hand_person, res.det_side)["match"]
    return {"seq": seq, "res": res, "rig": rig, "folder": folder, "match": match,
            "people": load_people(folder / "hands3d_people.npz")}  # fmt: skip


def _draw(world, c: int, t: int, reproject: bool = True):
    pf, rig = world["people"], world["rig"]
    cam = rig[pf.detections.cameras[c]]
    image = np.full((cam.size_px[1], cam.size_px[0], 3), 40, np.uint8)
    rp = cam.project(pf.result.hands3d[t]) if reproject else None
    return image, draw_people_frame(image, camera_frame(pf, c, t, rp))


def test_palette_distinct_for_8_ids_and_apart_from_grey():
    rgb = np.array([geo.person_rgb(i) for i in range(8)])
    gaps = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)[np.triu_indices(8, 1)]
    assert gaps.min() > 0.25
    assert np.linalg.norm(rgb - geo.person_rgb(-1), axis=1).min() > 0.4
    for i in range(8):
        left, right = geo.person_hand_rgb(i, 0), geo.person_hand_rgb(i, 1)
        np.testing.assert_array_equal(right, rgb[i])
        assert (left >= right - 1e-12).all() and left.sum() > right.sum()  # left paler
    np.testing.assert_array_equal(geo.person_rgb(10), geo.person_rgb(0))  # the table repeats


def test_every_box_says_its_person_and_side(world):
    res, seq, match = world["res"], world["seq"], world["match"]
    ids = res.person_ids.tolist()
    truth_of_slot = {int(p): g for g, p in enumerate(match) if p >= 0}
    n_right = n_assoc = n_unassoc = 0
    for c in range(len(world["rig"])):
        for t in (0, 9, 18):
            _, boxes = _draw(world, c, t)
            seen = {(b.row, b.slot) for b in boxes}
            for b in boxes:
                slot = res.det_hand_person[b.row, b.slot]
                side = res.det_side[b.row, b.slot]
                if slot < 0:
                    assert b.label == "?" and b.person == -1 and b.rgb == rgb255(geo.person_rgb(-1))
                    n_unassoc += 1
                    continue
                assert b.label == f"P{ids[slot]} {'LR'[side]}" == hand_label(ids[slot], side)
                assert b.rgb == rgb255(geo.person_rgb(ids[slot]))
                n_assoc += 1
                n_right += tuple(seq.true_hand[b.row, b.slot]) == (truth_of_slot.get(slot), side)
            # every hand slot with keypoints got a box
            rows = np.flatnonzero((world["people"].detections.camera == c)
                                  & (world["people"].detections.frame == t))  # fmt: skip
            has = np.isfinite(world["people"].detections.hands_px[rows]).all(-1).sum(-1) >= 2
            assert {(int(rows[i]), k) for i, k in zip(*np.nonzero(has), strict=True)} == seen
    assert n_assoc > 100 and n_unassoc > 0
    assert n_right / n_assoc >= MIN_TRUE_LABELS


def test_boxes_and_arms_are_drawn_in_the_person_colour(world):
    fractions = []
    arm_hits = arm_total = 0
    pf = world["people"]
    for c in range(len(world["rig"])):
        image, boxes = _draw(world, c, 12, reproject=False)
        h, w = image.shape[:2]
        under_label = np.zeros((h, w), bool)  # labels are drawn over everything
        for b in boxes:
            x0, y0, x1, y1 = np.round(b.label_box).astype(int)
            under_label[max(y0 - 2, 0):y1 + 3, max(x0 - 2, 0):x1 + 3] = True
        for b in boxes:
            x0, y0, x1, _ = b.box.astype(int)
            if not (0 <= y0 < h and 0 <= x0 and x1 < w):
                continue
            free = ~under_label[y0, x0:x1 + 1]
            edge = image[y0, x0:x1 + 1][free]  # the top edge, where later hands may cover it
            fractions.append((edge == b.rgb).all(-1).mean() if free.any() else 1.0)
        x0, y0, x1, y1 = boxes[-1].box.astype(int)  # drawn last: no hand covers its edges
        ring = np.zeros((h, w), bool)
        ring[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1] = True
        ring[max(y0 + 1, 0):y1, max(x0 + 1, 0):x1] = False
        ring &= ~under_label
        assert ring.sum() > 20 and (image[ring] == boxes[-1].rgb).all()
        frame = camera_frame(pf, c, 12)
        for i in range(len(frame.rows)):  # mid-upper-arm pixel of every associated body
            if frame.body_person[i] < 0:
                continue
            for chain in ARM_CHAIN:
                mid = frame.body_px[i, chain[:2]].mean(0)
                if np.isfinite(mid).all() and 0 <= mid[0] < w - 1 and 0 <= mid[1] < h - 1:
                    u, v = np.round(mid).astype(int)
                    arm_total += 1
                    rgb = np.array(rgb255(geo.person_rgb(int(frame.body_person[i]))))
                    arm_hits += np.abs(image[v, u].astype(int) - rgb).max() <= 2
    assert len(fractions) > 20 and np.median(fractions) > 0.8  # crowded: boxes overlap
    assert arm_total > 10 and arm_hits / arm_total > 0.7


def test_labels_of_crowded_hands_do_not_cover_each_other(world):
    image = np.full((480, 640, 3), 40, np.uint8)
    kp = np.stack(np.meshgrid(300 + 6 * np.arange(7), 200 + 6 * np.arange(3)), -1)
    hands = np.full((3, 2, 21, 2), np.nan)
    for n in range(3):  # three hands in almost the same place
        hands[n, 1] = kp.reshape(-1, 2) + 4 * n
    frame = CameraFrame(np.arange(3), hands, np.ones((3, 2, 21)), np.full((3, 17, 2), np.nan),
                        np.array([0, 1, 2]), np.array([[-1, 0], [-1, 1], [-1, 2]]),
                        np.array([[-1, 1], [-1, 1], [-1, 0]]), np.array([0, 1, 2]))  # fmt: skip
    boxes = draw_people_frame(image, frame)
    assert [b.label for b in boxes] == ["P0 R", "P1 R", "P2 L"]
    rects = [b.label_box for b in boxes]
    for i in range(3):
        for j in range(i + 1, 3):
            a, b = rects[i], rects[j]
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
    for b in boxes:  # each label is written in its colour inside its place
        x0, y0, x1, y1 = np.round(b.label_box).astype(int)
        near = np.abs(image[y0:y1, x0:x1].astype(int) - b.rgb).max(-1) <= RING_COLOUR_TOL
        assert near.sum() > 10


def test_reprojected_hands_are_rings_in_the_person_colour():
    image = np.full((480, 640, 3), 40, np.uint8)
    rep = np.full((1, 2, 21, 2), np.nan)
    rep[0, 1, 0] = [300.0, 200.0]
    z = np.zeros((0,), np.int64)
    frame = CameraFrame(z, np.zeros((0, 2, 21, 2)), np.zeros((0, 2, 21)), np.zeros((0, 17, 2)),
                        z, np.zeros((0, 2), np.int64), np.zeros((0, 2), np.int64),
                        np.array([5]), rep)  # fmt: skip
    assert draw_people_frame(image, frame) == []
    ring = 2 + 2  # joint radius at 480 px plus the ring's margin
    px = image[200, 300 + ring].astype(int)  # anti-aliased: near the colour, not white
    assert np.abs(px - rgb255(geo.person_rgb(5))).max() <= RING_COLOUR_TOL
    np.testing.assert_array_equal(image[200, 300], [40, 40, 40])  # a ring, not a dot


def _write_videos(folder, rig: Rig, n_frames: int) -> dict:
    folder.mkdir(exist_ok=True)
    videos = {}
    for cam in rig.cameras:
        w, h = cam.size_px
        path = folder / f"{cam.name}.avi"
        wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
        for _ in range(n_frames):
            wr.write(np.full((h, w, 3), 40, np.uint8))
        wr.release()
        videos[cam.name] = path
    return videos


def test_write_people_overlays_videos(world, tmp_path):
    rig, pf = world["rig"], world["people"]
    videos = _write_videos(tmp_path / "videos", rig, N_FRAMES)
    paths = write_people_overlays(tmp_path / "ov", videos, pf, rig)
    assert [p.name for p in paths] == [f"{c}.mp4" for c in pf.detections.cameras] + ["grid.mp4"]
    cap = cv2.VideoCapture(str(paths[0]))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N_FRAMES
    cap.release()
    t = 7  # the video's frame t shows the boxes drawn for result frame t
    image = _read_frame(paths[2], t)
    _, boxes = _draw(world, 2, t, reproject=False)
    hits = []
    for b in boxes:
        x0, y0, x1, _ = b.box.astype(int)
        y = min(max(y0, 0), image.shape[0] - 1)
        row = image[y, max(x0, 0):min(x1, image.shape[1] - 1)].astype(int)
        hits.append((np.abs(row - np.array(b.rgb)).max(-1) <= VIDEO_COLOUR_TOL).mean())
    assert np.median(hits) > 0.5
    with pytest.raises(InputError, match="increasing video frame numbers"):
        write_people_overlays(tmp_path / "x", videos, pf, rig, frame_indices=range(3))
    bare = PeopleFile(pf.result, None)
    with pytest.raises(InputError, match="no 2D detections"):
        write_people_overlays(tmp_path / "y", videos, bare, rig)


def test_summary_rows_match_the_report_and_png(world, tmp_path):
    pf, res = world["people"], world["res"]
    rows = person_hand_rows(pf)
    assert [r.label for r in rows] == [f"P{i} {s}" for i in res.person_ids
                                       for s in ("left", "right")]  # fmt: skip
    for r in rows:  # frames with 3D counted as the report counts them (stages/people.py)
        entry = next(p for p in res.report["people"] if p["id"] == r.person)
        assert int(r.has_3d.sum()) == entry["hand_frames"]["left" if r.side == 0 else "right"]
        assert (r.n_views[r.has_3d] >= 2).all() and (r.n_views[~r.has_3d] == 0).all()
    # wrist speed against the truth's order of magnitude: people at the table move slowly
    table = [r for r in rows if r.person in [world["match"][g] for g in range(3)]]
    assert max(np.nanmax(r.wrist_speed_mps) for r in table) < 5.0
    report = {"people": {**res.report, "ambiguous_frames": [3, 4],
                         "suspected_identity_switches": [{"person": 0, "hand": "left",
                                                          "frame": 5, "speed_mps": 7.0}]}}
    path = people_summary_figure(pf, tmp_path / "s" / "people.png", "synthetic", report=report)
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.shape[1] > 900 and img[..., :3].std() > 0.05
    one = PeopleFile(_keep_people(res, 1), None)
    h_one = mpimg.imread(people_summary_figure(one, tmp_path / "one.png")).shape[0]
    assert img.shape[0] > h_one  # one timeline row per person-hand: more people, taller page


def _keep_people(res, n: int):
    from dataclasses import replace

    return replace(res, hands3d=res.hands3d[:, :n], hands_n_views=res.hands_n_views[:, :n],
                   hands_reprojection_error_px=res.hands_reprojection_error_px[:, :n],
                   body3d=res.body3d[:, :n], body_n_views=res.body_n_views[:, :n],
                   person_ids=res.person_ids[:n])  # fmt: skip


def test_scene_has_one_group_per_person_in_its_colour(world):
    run = load_run(world["folder"])
    assert run.people is not None and run.people.primary == 0
    scene = Scene(run)
    res = run.people.result
    t = 20
    present = [int(pid) for p, pid in enumerate(res.person_ids)
               if np.isfinite(res.hands3d[t, p]).any() or np.isfinite(res.body3d[t, p]).any()]
    groups = scene.person_groups(t)
    assert [g.person_id for g in groups] == present and len(present) >= 3
    for g in groups:
        p = res.person_ids.tolist().index(g.person_id)
        np.testing.assert_array_equal(g.rgb, geo.person_rgb(g.person_id))
        allowed = np.array([geo.person_hand_rgb(g.person_id, s) * k for s in (0, 1)
                            for k in (1.0, 0.8)] + [geo.person_rgb(g.person_id)])  # fmt: skip
        d = np.abs(g.mesh.colors[:, None] - allowed[None]).max(-1).min(1)
        assert d.max() < 1e-9  # every vertex in this person's colours
        pts = np.concatenate([res.hands3d[t, p].reshape(-1, 3),
                              res.body3d[t, p][ARM_CHAIN.ravel()]])
        pts = pts[np.isfinite(pts).all(1)]
        near = np.linalg.norm(g.mesh.vertices[:, None] - pts[None], axis=-1).min(1)
        assert near.max() < 0.05  # the mesh is made of this person's joints
    meshes = scene.frame_meshes(t)
    assert len(meshes) == len(groups)
    for m, g in zip(meshes, groups, strict=True):
        np.testing.assert_array_equal(m.colors, g.mesh.colors)
    labels = [lab for lab in scene.labels(t) if lab.per_frame]
    want = {f"P{res.person_ids[p]} {'LR'[s]}" for p in range(res.n_people) for s in (0, 1)
            if np.isfinite(res.hands3d[t, p, s, 0]).all()}
    assert {lab.text for lab in labels} == want
    for lab in labels:
        np.testing.assert_array_equal(lab.rgb, geo.person_rgb(int(lab.text[1:].split()[0])))


def test_run_without_people_file_is_the_single_person_scene(world, tmp_path):
    single = tmp_path / "single"
    shutil.copytree(world["folder"], single)
    (single / "hands3d_people.npz").unlink()
    run = load_run(single)
    assert run.people is None
    scene = Scene(run)
    ref = load_run(world["folder"], people=False)
    assert ref.people is None
    for t in (0, 11):
        meshes = scene.frame_meshes(t)
        want = geo.skeleton_mesh(run.hands3d.keypoints3d[t], run.hands3d.units)
        assert len(meshes) == 1 and scene.person_groups(t) == []
        for got in (meshes[0], Scene(ref).frame_meshes(t)[0]):
            np.testing.assert_array_equal(got.vertices, want.vertices)
            np.testing.assert_array_equal(got.colors, want.colors)
        assert [lab.text for lab in scene.labels(t) if lab.per_frame] == ["L", "R"]


def test_people_only_folder_needs_only_a_calibration(world, tmp_path):
    """`mvhand people` writes no hands3d.npz: the primary person stands in for it."""
    folder = tmp_path / "people_only"
    folder.mkdir()
    shutil.copy(world["folder"] / "hands3d_people.npz", folder)
    run = load_run(folder, calib=world["folder"] / "calibration.toml")
    np.testing.assert_array_equal(run.hands3d.keypoints3d, world["res"].hands3d[:, 0])
    assert run.people is not None and len(Scene(run).person_groups(5)) >= 3
    with pytest.raises(InputError, match="no 3D results"):
        load_run(folder, calib=world["folder"] / "calibration.toml", people=False)


def test_rows_by_camera_frame_covers_every_row_once(world):
    det = world["people"].detections
    index = rows_by_camera_frame(det)
    rows = np.sort(np.concatenate(list(index.values())))
    np.testing.assert_array_equal(rows, np.arange(len(det)))
    for (c, t), r in index.items():
        assert (det.camera[r] == c).all() and (det.frame[r] == t).all()


def test_cli_overlay_people_and_single(world, tmp_path):
    videos = _write_videos(tmp_path / "videos", world["rig"], N_FRAMES)
    out = tmp_path / "ov"
    res = CliRunner().invoke(cli, ["overlay", str(world["folder"]), "--videos",
                                   str(videos[next(iter(videos))].parent), "--out", str(out),
                                   "--no-grid"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"of {world['res'].n_people} people" in res.output
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{c}.mp4" for c in world["rig"].names)
    res = CliRunner().invoke(cli, ["overlay", str(world["folder"]), "--videos",
                                   str(tmp_path / "videos"), "--out", str(tmp_path / "o2"),
                                   "--single"])  # fmt: skip
    assert res.exit_code == 2 and "keypoints2d.npz" in res.output  # the single-person path


def test_render_people_in_their_colours(world):
    pytest.importorskip("open3d", reason="open3d-cpu (the 'viz' extra) is not installed")
    from mvhand.viz.render import SceneRenderer

    run = load_run(world["folder"])
    res = run.people.result
    t = 12
    with SceneRenderer(Scene(run), (640, 360), "orbit") as r:
        image = r.render(t, labels=False)
        cam = r.camera(t)
    shares = []
    for p, pid in enumerate(res.person_ids.tolist()):
        pts = res.hands3d[t, p, 1]  # right hands: exactly the person's colour
        pts = pts[np.isfinite(pts).all(1)]
        if len(pts) < 10:
            continue
        uv = np.round(cam.project(pts)).astype(int)
        inside = (uv >= 0).all(1) & (uv[:, 0] < 640) & (uv[:, 1] < 360)
        px = image[uv[inside, 1], uv[inside, 0]].astype(int)
        want = np.round(255 * geo.person_rgb(pid))
        shares.append((np.abs(px - want).max(-1) <= 2).mean())
    assert len(shares) >= 3 and np.median(shares) > 0.5


class _Fake:
    """Stands in for any Open3D GUI object: every attribute is settable, every call works."""

    def __init__(self, *args, **kwargs) -> None:
        self.args = args

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Fake()

    def __call__(self, *args, **kwargs):
        return _Fake(*args)


class _FakeScene(_Fake):
    def __init__(self, *args) -> None:
        self.geometry: dict = {}

    def has_geometry(self, name: str) -> bool:
        return name in self.geometry

    def add_geometry(self, name: str, geometry, material) -> None:
        self.geometry[name] = geometry

    def remove_geometry(self, name: str) -> None:
        del self.geometry[name]


class _FakeWidget(_Fake):
    def __init__(self) -> None:
        self.labels: list = []

    def add_3d_label(self, position, text):
        label = _Fake(position, text)
        self.labels.append(label)
        return label

    def remove_3d_label(self, label) -> None:
        self.labels.remove(label)


def test_viewer_window_shows_every_person_and_nothing_stale(world):
    """The viewer's frame updates with a stand-in GUI (no display needed): one mesh per person
    present, none left over from a frame with more people, labels in the person's colour."""
    o3d = pytest.importorskip("open3d", reason="open3d-cpu (the 'viz' extra) is not installed")
    from types import SimpleNamespace

    from mvhand.viz.viewer import _ViewerWindow

    gui = _Fake()
    gui.SceneWidget = _FakeWidget
    gui.Color = lambda *rgb: tuple(rgb)
    rendering = _Fake()
    rendering.Open3DScene = _FakeScene
    fake = SimpleNamespace(geometry=o3d.geometry, utility=o3d.utility,
                           visualization=SimpleNamespace(gui=gui, rendering=rendering))
    scene = Scene(load_run(world["folder"]))
    window = _Fake()
    window.theme = SimpleNamespace(font_size=10.0)
    app = _Fake()
    app.create_window = lambda *args: window
    win = _ViewerWindow(fake, app, scene, 800, 600)
    counts = [len(scene.person_groups(t)) for t in range(scene.n_frames)]
    order = [int(np.argmax(counts)), int(np.argmin(counts))]
    assert counts[order[0]] > counts[order[1]]  # the walker comes and goes
    for t in order:
        win._show(t)
        names = [n for n in win.widget.scene.geometry if n.startswith("frame")]
        assert len(names) == counts[t]
        texts = {lab.args[1]: lab for lab in win.widget.labels if lab.args[1].startswith("P")}
        assert {lab.text for lab in scene.labels(t) if lab.per_frame} == set(texts)
        for text, lab in texts.items():
            assert lab.color == tuple(geo.person_rgb(int(text[1:].split()[0])))


def test_nobody_found_still_draws(world, tmp_path):
    """A result without people: every detection grey with "?", a summary page that says so."""
    import warnings
    from dataclasses import replace

    pf = world["people"]
    n = len(pf.detections)
    nobody = replace(_keep_people(pf.result, 0), det_person=np.full(n, -1),
                     det_hand_person=np.full((n, 2), -1), det_side=np.full((n, 2), -1))
    empty = PeopleFile(nobody, pf.detections, pf.frames)
    image = np.zeros((480, 270, 3), np.uint8)
    boxes = draw_people_frame(image, camera_frame(empty, 0, 3, np.zeros((0, 2, 21, 2))))
    assert boxes and {b.label for b in boxes} == {"?"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert people_summary_figure(empty, tmp_path / "nobody.png").stat().st_size > 10_000
    assert person_hand_rows(empty) == []
