"""``mvhand run`` with several people (``detect.max_people > 1``) on a synthetic two-person
scene with scripted models (the pixel-coded videos of test_run_pipeline): everybody's 3D
against the truth, the chosen person in ``hands3d.npz``, left/right from the arm, the people
file, and what the single-person mode says about the same videos.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from test_run_pipeline import EXACT_3D_MM, FAST, N_FRAMES, Scene

from mvhand.backends.base import BodyPose, HandKeypoints, PersonDetection
from mvhand.backends.registry import Backend
from mvhand.cli.main import cli
from mvhand.core.synthetic import make_hand_motion
from mvhand.errors import ConfigError
from mvhand.io.calibration import save_calibration
from mvhand.io.keypoints import load_keypoints
from mvhand.io.people import load_people
from mvhand.io.results import load_hands3d
from mvhand.pipeline.config import load_pipeline
from mvhand.pipeline.run import run_pipeline
from mvhand.stages.bodies import POSE33_TO_COCO17

PEOPLE = ["detect.max_people=3", *FAST]


def _body(hands: np.ndarray) -> np.ndarray:
    """COCO-17 ``(T, 17, 3)`` of a small person whose wrists are the hands' (legs unseen)."""
    T = len(hands)
    mid = hands[:, :, 0].mean(1) + [-0.04, 0.0, 0.07]
    b = np.full((T, 17, 3), np.nan)
    b[:, 0] = mid + [0, 0, 0.05]
    for s, sign in ((0, -1.0), (1, 1.0)):
        side = np.array([0.0, sign * 0.03, 0.0])
        b[:, 1 + s], b[:, 3 + s] = b[:, 0] + side + [0, 0, 0.01], b[:, 0] + 2 * side
        b[:, 5 + s] = mid + 3 * side
        b[:, 9 + s] = hands[:, s, 0]
        b[:, 7 + s] = (b[:, 5 + s] + b[:, 9 + s]) / 2 + [-0.02, 0, 0]
        b[:, 11 + s] = mid + 2 * side - [0, 0, 0.06]
    return b


class TwoScene(Scene):
    """Two people, one above the other in every view; the models see both."""

    def __init__(self) -> None:
        super().__init__()
        a = make_hand_motion(N_FRAMES, speed="slow", seed=2)
        b = make_hand_motion(N_FRAMES, speed="slow", seed=5)
        a = (a - a.reshape(-1, 3).mean(0)) * 0.5 + [0, 0, -0.12]
        b = (b - b.reshape(-1, 3).mean(0)) * 0.5 + [0, 0, 0.13]
        self.people = np.stack([a, b], 1)  # (T, 2 people, 2 hands, 21, 3)
        self.bodies = np.stack([_body(a), _body(b)], 1)  # (T, 2, 17, 3)
        self.proj_people = self.rig.project(self.people)  # (C, T, 2, 2, 21, 2)
        self.proj_bodies = self.rig.project(self.bodies)  # (C, T, 2, 17, 2)

    def box(self, c: int, t: int, p: int) -> np.ndarray:
        pts = np.concatenate([self.proj_bodies[c, t, p], self.proj_people[c, t, p].reshape(-1, 2)])
        pts = pts[np.isfinite(pts).all(-1)]
        return np.r_[pts.min(0) - 4, pts.max(0) + 4]


class TwoPerson:
    def __init__(self, scene):
        self.scene = scene

    def detect(self, image):
        c, t, _ = Scene.decode(image)
        return [PersonDetection(self.scene.box(c, t, p), 0.9 - 0.1 * p) for p in range(2)]


class TwoBody:
    """MediaPipe-33: the body joints of the person at the box, and their hand points."""

    def __init__(self, scene):
        self.scene = scene

    def estimate(self, image, box):
        c, t, _ = Scene.decode(image)
        s = self.scene
        centre = (np.asarray(box.box_xyxy[:2]) + box.box_xyxy[2:]) / 2
        p = int(np.argmin([np.linalg.norm(np.nanmean(s.proj_bodies[c, t, q], 0) - centre)
                           for q in range(2)]))  # fmt: skip
        kp, sc = np.full((33, 2), np.nan), np.zeros(33)
        ok = np.isfinite(s.proj_bodies[c, t, p]).all(-1)
        kp[POSE33_TO_COCO17[ok]], sc[POSE33_TO_COCO17[ok]] = s.proj_bodies[c, t, p][ok], 0.9
        for h, (w, pk, i, th) in enumerate([(15, 17, 19, 21), (16, 18, 20, 22)]):
            kp[[w, pk, i, th]] = s.proj_people[c, t, p, h][[0, 17, 5, 4]]
            sc[[w, pk, i, th]] = 0.9
        return BodyPose(kp, sc, "mediapipe_pose33")


class FourHands:
    """The true hand (of either person) nearest the crop centre, if within the crop."""

    def __init__(self, scene):
        self.scene = scene

    def estimate(self, image, crop):
        c, t, offset = Scene.decode(image)
        truth = self.scene.proj_people[c, t].reshape(4, 21, 2)
        d = np.linalg.norm(truth.mean(1) - (np.asarray(crop.center_px) + offset), axis=1)
        h = int(np.argmin(d))
        return HandKeypoints(truth[h] - offset, np.full(21, 0.9),
                             0.95 if d[h] < crop.size_px / 2 else 0.01)  # fmt: skip


def factory(scene):
    return lambda cfg: Backend(TwoPerson(scene), TwoBody(scene), FourHands(scene), "fake")


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    root = tmp_path_factory.mktemp("two")
    scene = TwoScene()
    scene.write(root / "videos")
    save_calibration(root / "cams.toml", scene.rig)
    return scene, root


def _run(scene, root, out, overrides=PEOPLE):
    return run_pipeline(root / "cams.toml", root / "videos", out, load_pipeline(None, overrides),
                        backend_factory=factory(scene))  # fmt: skip


def _mm(a, b):
    return np.linalg.norm(a - b, axis=-1) * 1000


def test_everybody_in_3d_and_the_chosen_person_in_hands3d(two, tmp_path):
    scene, root = two
    res = _run(scene, root, tmp_path / "out", [*PEOPLE, "overlay=true"])
    pf = load_people(tmp_path / "out" / "hands3d_people.npz")
    assert pf.result.n_people == 2 and pf.run_id == res.report["run_id"]
    # the overlays show everybody (one video per camera and the grid)
    assert sorted(p.name for p in (tmp_path / "out" / "overlay").iterdir()) == [
        "cam1.mp4", "cam2.mp4", "cam3.mp4", "grid.mp4"]
    # each reconstructed person is one true person, with left and right where they belong
    for p in range(2):
        err = [np.nanmedian(_mm(pf.result.hands3d[:, p], scene.people[:, q])) for q in range(2)]
        q = int(np.argmin(err))
        e = _mm(pf.result.hands3d[:, p], scene.people[:, q])
        assert np.nanmax(e) < EXACT_3D_MM and np.isfinite(e).mean() > 0.95
        body = _mm(pf.result.body3d[:, p, [5, 6, 7, 8, 9, 10]], scene.bodies[:, q, 5:11])
        assert np.nanmedian(body) < 1.0
    # hands3d.npz is the chosen person's 3D, identical to their slot in the people file
    h3 = load_hands3d(tmp_path / "out" / "hands3d.npz")
    slot = int(np.flatnonzero(pf.result.person_ids == pf.primary)[0])
    np.testing.assert_allclose(h3.keypoints3d, pf.result.hands3d[:, slot], equal_nan=True)
    report = res.report
    assert report["people"]["people_found"] == 2
    assert report["people"]["person"] == {"rule": "primary", "id": pf.primary}
    assert report["people"]["suspected_identity_switches"] == []
    assert report["people"]["weights"] == {}  # the optimizer is off here
    assert all(len(p["present"]) == 1 for p in report["people"]["people"])
    # the 2D in keypoints2d.npz is the chosen person's, each hand in its true side
    kp = load_keypoints(tmp_path / "out" / "keypoints2d.npz")
    q = int(np.argmin([np.nanmedian(_mm(h3.keypoints3d, scene.people[:, q])) for q in range(2)]))
    px = np.linalg.norm(kp.keypoints_px - scene.proj_people[:, :, q], axis=-1)
    assert np.nanmax(px) < 1e-3 and np.isfinite(px).mean() > 0.95
    assert (tmp_path / "out" / "summary_people.png").is_file()


def test_person_choice_near_a_point_and_by_id(two, tmp_path):
    scene, root = two
    upper = scene.people[:, 1, :, 0].reshape(-1, 3).mean(0)
    near = "person=near:" + ",".join(f"{v:.3f}" for v in upper)
    _run(scene, root, tmp_path / "a", [*PEOPLE, near])
    h3 = load_hands3d(tmp_path / "a" / "hands3d.npz")
    assert np.nanmax(_mm(h3.keypoints3d, scene.people[:, 1])) < EXACT_3D_MM
    pf = load_people(tmp_path / "a" / "hands3d_people.npz")
    other = int(pf.result.person_ids[pf.result.person_ids != pf.primary][0])
    _run(scene, root, tmp_path / "b", [*PEOPLE, f"person='{other}'"])
    h3 = load_hands3d(tmp_path / "b" / "hands3d.npz")
    assert np.nanmax(_mm(h3.keypoints3d, scene.people[:, 0])) < EXACT_3D_MM
    with pytest.raises(ConfigError, match="no such person; found"):
        _run(scene, root, tmp_path / "c", [*PEOPLE, "person='7'"])
    with pytest.raises(ConfigError, match="'person' must be"):
        load_pipeline(None, ["person=somebody"])


def test_cache_keeps_every_person_and_single_mode_warns(two, tmp_path):
    scene, root = two
    first = _run(scene, root, tmp_path / "out")
    again = _run(scene, root, tmp_path / "out")  # every camera from the cache
    assert again.reused == scene.rig.names
    np.testing.assert_array_equal(again.hands3d.keypoints3d, first.hands3d.keypoints3d)
    one = _run(scene, root, tmp_path / "one", ["detect.max_people=1", *FAST])
    text = " ".join(one.report["warnings"])
    assert "saw several people" in text and "detect.max_people" in text
    assert not (tmp_path / "one" / "hands3d_people.npz").exists()


def test_cli_max_people_and_person_flags(two, tmp_path, monkeypatch):
    scene, root = two
    import mvhand.backends.registry as registry

    monkeypatch.setattr(registry, "make_backend", factory(scene))
    out = tmp_path / "cli"
    res = CliRunner().invoke(cli, ["run", "--calib", str(root / "cams.toml"), str(root / "videos"),
                                   "--out", str(out), "--max-people", "3", "--person", "primary",
                                   "--workers", "1",
                                   "--set", "reconstruct.optimizer.enabled=false"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "person 0" in res.output and "person 1" in res.output
    report = json.loads((out / "report.json").read_text())
    assert report["people"]["people_found"] == 2
    assert "max_people = 3" in (out / "config.toml").read_text()


class TruePalm:
    """A palm detection at each true hand of the single-person scene (box around the palm)."""

    def __init__(self, scene):
        self.scene = scene

    def detect(self, image, region):
        from mvhand.backends.base import HandDetection

        c, t, offset = Scene.decode(image)
        out = []
        for h in range(2):
            kp = self.scene.proj[c, t, h] - offset
            palm = kp[[0, 5, 9, 13, 17]]
            box = np.r_[palm.min(0) - 2, palm.max(0) + 2]
            det_kp = np.stack([kp[0], kp[5], kp[9], kp[13], kp[17], kp[2], kp[3]])
            out.append(HandDetection(box, 0.9, det_kp))
        return out


class SidedHand:
    """The true hand nearest the crop, with the hand model's handedness of the true side."""

    def __init__(self, scene):
        self.scene = scene

    def estimate(self, image, crop):
        c, t, offset = Scene.decode(image)
        truth = self.scene.proj[c, t]
        d = np.linalg.norm(truth.mean(1) - (np.asarray(crop.center_px) + offset), axis=1)
        h = int(np.argmin(d))
        return HandKeypoints(truth[h] - offset, np.full(21, 0.9),
                             0.95 if d[h] < crop.size_px / 2 else 0.01, float(h))  # fmt: skip


def test_hands_without_a_body_are_tracked_from_the_palm_path(tmp_path):
    """No person in view: the palm path's best left and right hand seed a track (every 5th
    frame), the tracker carries them in between; rows of source 'palm', exact 2D."""
    from test_run_pipeline import FakeBody, FakePerson

    from mvhand.core.people import SOURCES
    from mvhand.pipeline.camera2d import process_camera

    scene = Scene()
    scene.no_person = {0, 1, 2}
    scene.write(tmp_path / "videos")
    backend = Backend(FakePerson(scene), FakeBody(scene), SidedHand(scene), "fake",
                      TruePalm(scene))  # fmt: skip
    cfg = load_pipeline(None, ["detect.max_people=2", "palm.tile_px=0"])
    res = process_camera("cam2", tmp_path / "videos" / "cam2.avi", range(N_FRAMES), backend, cfg)
    det = res.detections
    assert (det.source == SOURCES.index("palm")).all() and not det.has_body.any()
    both = np.isfinite(det.hands_px).all(-1).all(-1).all(-1)
    frames = np.unique(det.frame[both])
    assert len(frames) == N_FRAMES  # every frame, not only the palm detector's
    assert len(det) == N_FRAMES  # one row per frame: the untracked palm hands are the same
    for n in np.flatnonzero(both):
        np.testing.assert_allclose(det.hands_px[n], scene.proj[1, det.frame[n]], atol=1e-3)
    assert res.info["lone_hands"] == len(det)


def test_exports_hold_every_person(two, tmp_path):
    """With several people the exports add everybody's file (markers P<id>_L_wrist, ...):
    positions round-trip to hands3d_people.npz, the tidy CSV names each row's person."""
    import csv

    from mvhand.export.trc import read_trc

    scene, root = two
    out = tmp_path / "out"
    _run(scene, root, out, [*PEOPLE, "export.formats=['trc', 'csv']"])
    res = load_people(out / "hands3d_people.npz").result
    trc = read_trc(out / "export" / "people.trc")
    ids = [int(i) for i in res.person_ids]
    assert trc.names[:2] == [f"P{ids[0]}_L_wrist", f"P{ids[0]}_L_thumb_cmc"]
    assert len(trc.names) == 2 * 21 * len(ids) and f"P{ids[1]}_R_little_tip" in trc.names
    want = res.hands3d.reshape(N_FRAMES, -1, 3) * 1000  # m -> mm
    np.testing.assert_allclose(trc.points, want, atol=1e-3, equal_nan=True)
    with open(out / "export" / "people_long.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["person"] for r in rows} == {f"P{i}" for i in ids}
    assert all(r["marker"].startswith(r["person"] + "_") for r in rows[:200])
    assert (out / "export" / "hands.trc").is_file()  # the chosen person, as before


def test_hands_only_views_make_one_person_with_both_hands(tmp_path):
    """No body in any view: the association makes a hand-only person per hand; the run pairs
    the left-only and right-only person fed by the same palm tracks into one person, whose
    two hands match the truth."""
    from test_run_pipeline import FakeBody, FakePerson

    scene = Scene()
    scene.no_person = {0, 1, 2}
    scene.write(tmp_path / "videos")
    save_calibration(tmp_path / "cams.toml", scene.rig)
    backend = Backend(FakePerson(scene), FakeBody(scene), SidedHand(scene), "fake",
                      TruePalm(scene))  # fmt: skip
    cfg = load_pipeline(None, [*PEOPLE, "palm.tile_px=0"])
    res = run_pipeline(tmp_path / "cams.toml", tmp_path / "videos", tmp_path / "out", cfg,
                       backend_factory=lambda c: backend)  # fmt: skip
    pf = load_people(tmp_path / "out" / "hands3d_people.npz")
    assert pf.result.n_people == 1 and res.report["people"]["people"][0]["has_body"] is False
    e = _mm(res.hands3d.keypoints3d, scene.hands)
    assert np.isfinite(e).mean() > 0.95 and np.nanmax(e) < EXACT_3D_MM


def test_lone_hand_pairs_need_shared_rows_and_nearby_wrists():
    from mvhand.core.people import PeopleResult, lone_hand_pairs, merge_people

    T = 6
    h = np.full((T, 3, 2, 21, 3), np.nan)
    h[:, 0, 0] = 0.0  # person 0: a left hand at the origin
    h[:, 1, 1] = 0.3  # person 1: a right hand 0.52 m away
    h[:, 2, 1] = 5.0  # person 2: a right hand far away
    # rows 0-5 held persons 0 and 1 together, rows 6-11 person 2 alone
    hp = np.array([[0, 1]] * 6 + [[-1, 2]] * 6)
    res = PeopleResult(h, np.ones((T, 3, 2, 21)), np.ones((T, 3, 2, 21)),
                       np.full((T, 3, 17, 3), np.nan), np.zeros((T, 3)), np.array([4, 5, 6]),
                       np.full(12, -1), hp, np.array([[0, 1]] * 12))  # fmt: skip
    assert lone_hand_pairs(res) == [(0, 1)]
    assert lone_hand_pairs(res, max_distance_m=0.4) == []
    merged = merge_people(res, [(0, 1)])
    assert merged.person_ids.tolist() == [4, 6]
    np.testing.assert_array_equal(merged.hands3d[:, 0, 1], h[:, 1, 1])
    np.testing.assert_array_equal(merged.det_hand_person, [[0, 0]] * 6 + [[-1, 1]] * 6)


def test_fast_wrist_runs_are_one_event_each():
    """A jump to another place and back is one event of two steps; a long fast movement is one
    event of many steps; slow motion none."""
    from mvhand.core.people import PeopleResult
    from mvhand.stages.people import PeopleConfig, _switches

    T = 40
    h = np.zeros((T, 1, 2, 21, 3))
    h[:, 0, 1, :, 0] = np.arange(T)[:, None] * 0.01  # right hand: 0.3 m/s at 30 fps
    h[10, 0, 1] += 1.0  # one frame 1 m away: out and back
    h[25:31, 0, 0, :, 0] = (np.arange(6) * 0.2)[:, None]  # left hand: 6 m/s for 5 steps
    h[31:, 0, 0, :, 0] = 1.0
    res = PeopleResult(h, np.ones((T, 1, 2, 21)), np.ones((T, 1, 2, 21)),
                       np.full((T, 1, 17, 3), np.nan), np.zeros((T, 1)), np.array([3]),
                       np.zeros(0), np.zeros((0, 2)), np.zeros((0, 2)))  # fmt: skip
    events = sorted(_switches(res, PeopleConfig(), 30.0), key=lambda e: e["hand"])
    assert [(e["hand"], e["frames"], e["steps"]) for e in events] == [
        ("left", [25, 31], 5), ("right", [9, 12], 2)]
    assert events[1]["frame"] in (10, 11) and events[0]["speed_mps"] == 6.0


def test_people_3d_stage_on_worker_processes_gives_the_same_result(two, tmp_path):
    """Each person's 3D stage (with the optimizer) on 2 spawned processes: bit-identical to
    running them one after the other in this process."""
    scene, root = two
    opt = ["detect.max_people=3", "reconstruct.optimizer.weight_selection='fixed'"]
    one = _run(scene, root, tmp_path / "out", [*opt, "workers=1"])
    a = load_people(tmp_path / "out" / "hands3d_people.npz").result.hands3d
    # the 2D comes from the cache (no camera workers), the people's 3D from 2 processes
    two_ = _run(scene, root, tmp_path / "out", [*opt, "workers=2"])
    assert two_.reused == scene.rig.names
    np.testing.assert_array_equal(one.hands3d.keypoints3d, two_.hands3d.keypoints3d)
    b = load_people(tmp_path / "out" / "hands3d_people.npz").result.hands3d
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).mean() > 0.9
