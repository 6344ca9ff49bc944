"""Cross-view association and 3D tracks of several people, on seeded synthetic scenes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mvhand.bench.synth import (
    PEOPLE_PRESETS,
    PeoplePreset,
    SynthConfig,
    _people_rows,
    _walker,
    make_bench_rig,
    score_people,
    synthesize_people,
)
from mvhand.core.associate import (
    AssociationConfig,
    associate,
    epipolar_distances,
    essential_matrices,
    linear_triangulation,
)
from mvhand.core.people import Detections2D
from mvhand.core.synthetic import make_or_rig
from mvhand.core.tracks3d import link_tracks
from mvhand.stages.people import PeopleConfig, reconstruct_people

#: Noise-free detections: nothing but the association can go wrong.
CLEAN = PeoplePreset("slow", at_table=0, walkers=0, noise_px=0.0, miss_rate=0.0,
                     mirror_rate=0.0, swap_rate=0.0, wrong_hand_rate=0.0,
                     hand_outlier_rate=0.0)  # fmt: skip


@pytest.fixture(scope="module")
def l3():
    seq = synthesize_people(SynthConfig(level="L3", n_cameras=8, n_frames=40))
    return seq, reconstruct_people(seq.rig, seq.detections)


def _table(seq_rows: dict, rig, n_frames: int, fps: float = 30.0) -> Detections2D:
    finite_h = np.isfinite(seq_rows["hands"]).all(-1)
    finite_b = np.isfinite(seq_rows["body"]).all(-1)
    return Detections2D(seq_rows["camera"], seq_rows["frame"], seq_rows["body"],
                        finite_b * 0.9, seq_rows["hands"], finite_h * 0.9, seq_rows["source"],
                        rig.names, n_frames, fps)  # fmt: skip


def test_convention_essential_matrix_epipolar_constraint():
    rig = make_or_rig(4, distortion=False)
    X = np.random.default_rng(0).normal([0, 0, 1.0], 0.2, (5, 3))
    xy = rig.undistort(rig.project(X))
    ess = essential_matrices(rig.extrinsics)
    ca, cb = np.array([0, 1, 3]), np.array([2, 0, 1])
    da, db = epipolar_distances(ess, ca, cb, xy[ca], xy[cb])
    assert np.abs(da).max() < 1e-9 and np.abs(db).max() < 1e-9
    da, db = epipolar_distances(ess, ca, cb, xy[ca], xy[cb] + 0.01)  # off the lines
    assert (da > 1e-4).all() and (db > 1e-4).all()


def test_linear_triangulation_matches_dlt():
    from mvhand.core.triangulate import dlt

    rig = make_or_rig(5)
    X = np.random.default_rng(3).normal([0, 0, 1.0], 0.2, (4, 7, 3))
    xy = rig.undistort(rig.project(X))
    w = np.random.default_rng(4).uniform(0.2, 1.0, xy.shape[:-1])
    np.testing.assert_allclose(linear_triangulation(rig.extrinsics, xy, w), X, atol=1e-9)
    noisy = xy + np.random.default_rng(5).normal(0, 1e-3, xy.shape)
    w[2:, 0, 0] = 0.0  # two views
    w[1:, 0, 1] = 0.0  # one view: no point
    got = linear_triangulation(rig.extrinsics, noisy, w)
    ref = dlt(rig.extrinsics, noisy, w)
    np.testing.assert_allclose(got[np.isfinite(ref)], ref[np.isfinite(ref)], atol=2e-3)
    assert np.isnan(got[0, 1]).all() and np.isnan(ref[0, 1]).all()


def test_l3_every_person_and_hand_found(l3):
    seq, res = l3
    score = score_people(seq, res.hands3d, res.det_hand_person, res.det_side)
    table = np.arange(PEOPLE_PRESETS["L3"].at_table)
    assert (score["match"][table] >= 0).all()
    assert np.nanmax(score["mpjpe_mm"][table]) < 8.0  # 5 px noise, 8 cameras
    assert score["completeness"][table].min() > 0.95
    assert score["idf1"] > 0.95
    assert score["id_switches"] == 0
    assert res.report["people_found"] == len(np.flatnonzero(seq.present.any(0)))


def test_bodies_triangulated_with_the_arm(l3):
    seq, res = l3
    score = score_people(seq, res.hands3d, res.det_hand_person, res.det_side)
    for g in range(PEOPLE_PRESETS["L3"].at_table):
        p = score["match"][g]
        arm = [5, 6, 7, 8, 9, 10]  # shoulders, elbows, wrists
        err = np.linalg.norm(res.body3d[:, p, arm] - seq.body3d[:, g, arm], axis=-1)
        assert np.nanmedian(err) < 0.03  # body noise is 1.5 cm per view


def test_crossing_walkers_keep_their_identities():
    rig = make_bench_rig(8, seed=3)
    rng = np.random.default_rng(7)
    T = 90
    a = _walker(T, 30.0, rng, np.array([-1.6, 0.75]), np.array([1.6, 0.8]), 0, 1.6)
    b = _walker(T, 30.0, rng, np.array([1.6, 1.3]), np.array([-1.6, 1.25]), 0, 1.6)
    hands, body = np.stack([a[0], b[0]], 1), np.stack([a[1], b[1]], 1)
    present = np.stack([a[2], b[2]], 1)
    rows = _people_rows(rng, rig, hands, body, present, dataclasses.replace(CLEAN, noise_px=3))
    det = _table(rows, rig, T)
    assoc = associate(rig, det)
    for k in range(assoc.n_tracks):
        owners = np.unique(rows["person"][assoc.det_track == k])
        assert len(owners) <= 1, f"track {k} mixes people {owners}"
    covered = np.isin(rows["person"], rows["person"][assoc.det_track >= 0])
    assert covered.all()
    # one track per walker: the crossing does not fragment or swap them
    assert len(np.unique(assoc.det_track[assoc.det_track >= 0])) == 2


@pytest.mark.parametrize("what", ["swap_rate", "mirror_rate"])
def test_left_right_from_the_arm_chain_not_the_view(what):
    preset = dataclasses.replace(PEOPLE_PRESETS["L3"], **{what: 0.3}, walkers=0)
    seq = _custom(preset, seed=2)
    res = reconstruct_people(seq.rig, seq.detections)
    score = score_people(seq, res.hands3d, res.det_hand_person, res.det_side)
    assert score["idf1"] > 0.95
    assert np.nanmax(score["mpjpe_mm"]) < 8.0  # a wrong side would be ~30 cm off


def test_hands_of_another_person_are_split_not_averaged():
    preset = dataclasses.replace(PEOPLE_PRESETS["L3"], wrong_hand_rate=0.15, walkers=0)
    seq = _custom(preset, seed=4)
    res = reconstruct_people(seq.rig, seq.detections)
    det = seq.detections
    wrong = (seq.true_hand[..., 0] >= 0) & (seq.true_hand[..., 0] != seq.true_person[:, None])
    wrong &= det.source[:, None] == 0
    assert wrong.sum() > 50
    score = score_people(seq, res.hands3d, res.det_hand_person, res.det_side)
    n, k = np.nonzero(wrong)
    claimed = score["match"][seq.true_person[n]]  # the body's person, not the hand's
    to_body = (res.det_hand_person[n, k] == claimed) & (claimed >= 0)
    assert to_body.mean() < 0.05
    owner = score["match"][seq.true_hand[n, k, 0]]
    # split off: to their owner, or dropped (the owner's own row shows that hand already)
    assert ((res.det_hand_person[n, k] == owner) | (res.det_hand_person[n, k] < 0)).all()
    assert np.nanmax(score["mpjpe_mm"]) < 8.0


def _custom(preset: PeoplePreset, seed: int, cams: int = 8, frames: int = 30):
    import mvhand.bench.synth as synth

    old = synth.PEOPLE_PRESETS["L3"]
    synth.PEOPLE_PRESETS["L3"] = preset
    try:
        return synthesize_people(SynthConfig(level="L3", n_cameras=cams, n_frames=frames,
                                             seed=seed))  # fmt: skip
    finally:
        synth.PEOPLE_PRESETS["L3"] = old


def test_invariant_to_camera_and_row_order(l3):
    seq, res = l3
    det = seq.detections
    perm = np.random.default_rng(1).permutation(len(det))
    shuffled = reconstruct_people(seq.rig, det.take(perm))
    names = tuple(reversed(det.cameras))
    reordered = reconstruct_people(seq.rig.subset(names), det.reorder_cameras(names))
    for other, rows in ((shuffled, perm), (reordered, np.arange(len(det)))):
        assert other.n_people == res.n_people
        np.testing.assert_allclose(other.hands3d, res.hands3d, atol=1e-6, equal_nan=True)
        np.testing.assert_array_equal(other.det_person, res.det_person[rows])
        np.testing.assert_array_equal(other.det_side, res.det_side[rows])
        np.testing.assert_array_equal(other.det_hand_person, res.det_hand_person[rows])


def test_invariant_to_units(l3):
    seq, res = l3
    mm = reconstruct_people(seq.rig.to_units("mm"), seq.detections)
    np.testing.assert_allclose(mm.hands3d, res.hands3d * 1000, atol=1e-3, equal_nan=True)
    np.testing.assert_array_equal(mm.det_person, res.det_person)


def test_one_camera_person_gets_no_3d_and_is_reported(l3):
    seq, _ = l3
    det = seq.detections
    alone = det.take(np.flatnonzero((det.camera == 0) & (det.source == 0))[:10])
    far = Detections2D(alone.camera, alone.frame, alone.body_px + [400.0, 0.0],
                       alone.body_scores, alone.hands_px + [400.0, 0.0], alone.hands_scores,
                       alone.source, alone.cameras, alone.n_frames, alone.fps)  # fmt: skip
    res = reconstruct_people(seq.rig, Detections2D.concatenate([det, far]))
    assert res.report["single_view_detections"] >= 10
    assert any("one camera only" in w for w in res.report["warnings"])
    assert (res.det_person[len(det):] < 0).all()
    assert (res.det_hand_person[len(det):] < 0).all()


def test_more_people_than_max_people_is_a_warning(l3):
    seq, _ = l3
    res = reconstruct_people(seq.rig, seq.detections, PeopleConfig(max_people=2))
    assert res.n_people == 2
    assert any("more than max_people = 2" in w for w in res.report["warnings"])


def test_no_detections():
    rig = make_bench_rig(4)
    from mvhand.core.people import empty_detections

    res = reconstruct_people(rig, empty_detections(rig.names, 5))
    assert res.hands3d.shape == (5, 0, 2, 21, 3) and res.report["people_found"] == 0


def test_association_without_verification_still_runs(l3):
    seq, _ = l3
    assoc = associate(seq.rig, seq.detections, AssociationConfig(verify=False))
    assert assoc.n_tracks >= 3


def test_link_tracks_people_enter_and_leave():
    pts = np.full((6, 1, 3), np.nan)
    frames = np.array([0, 1, 2, 10, 11, 12])
    pts[:3, 0] = [[0, 0, 0], [0.01, 0, 0], [0.02, 0, 0]]
    pts[3:, 0] = [[0.03, 0, 0], [0.04, 0, 0], [0.05, 0, 0]]  # back after a long gap
    tr = link_tracks(frames, pts, 0.1, 0.05, max_gap=5)
    assert tr.tolist() == [0, 0, 0, 1, 1, 1]
    tr = link_tracks(frames, pts, 0.1, 0.05, max_gap=20)
    assert tr.tolist() == [0, 0, 0, 0, 0, 0]


def test_detections_validate_shapes():
    z = np.zeros(2, dtype=int)
    with pytest.raises(ValueError, match="body_px"):
        Detections2D(z, z, np.zeros((2, 5, 2)), np.zeros((2, 17)), np.zeros((2, 2, 21, 2)),
                     np.zeros((2, 2, 21)), z, ("a",), 1)  # fmt: skip
    with pytest.raises(ValueError, match="frame indices"):
        Detections2D(z, z + 3, np.zeros((2, 17, 2)), np.zeros((2, 17)),
                     np.zeros((2, 2, 21, 2)), np.zeros((2, 2, 21)), z, ("a",), 2)  # fmt: skip


@pytest.mark.slow
def test_optimizer_per_person_hand(l3):
    seq, res = l3
    opt = reconstruct_people(seq.rig, seq.detections, PeopleConfig(optimize=True))
    score = score_people(seq, opt.hands3d, opt.det_hand_person, opt.det_side)
    base = score_people(seq, res.hands3d, res.det_hand_person, res.det_side)
    table = np.arange(PEOPLE_PRESETS["L3"].at_table)
    assert np.nanmax(score["mpjpe_mm"][table]) < np.nanmax(base["mpjpe_mm"][table])
    np.testing.assert_array_equal(opt.det_hand_person, res.det_hand_person)


def test_orient_tracks_undoes_a_whole_body_flip():
    from mvhand.core.people import BODY_MIRROR
    from mvhand.core.tracks3d import orient_tracks

    body = np.random.default_rng(0).normal(0, 0.3, (17, 3))
    pts = np.stack([body, body + 0.01, (body + 0.02)[BODY_MIRROR], body + 0.03])
    flip = orient_tracks(np.zeros(4, int), np.arange(4), pts, BODY_MIRROR)
    assert flip.tolist() == [False, False, True, False]


def test_people_config_from_overrides():
    from mvhand.config import load_config

    cfg = load_config(PeopleConfig, None, ["association.hand_gate=0.5", "max_people=3"])
    assert cfg.association.hand_gate == 0.5 and cfg.max_people == 3


# ------------------------------------------------------------ the fast paths = the plain ones


def test_assign_groups_is_the_hungarian_per_group():
    from scipy.optimize import linear_sum_assignment

    from mvhand.core.associate import assign_groups

    rng = np.random.default_rng(5)
    for _ in range(20):
        group = np.sort(rng.integers(0, 12, 60))
        cost = rng.random((60, 7)) * rng.choice([0.3, 1.0, 3.0], size=(60, 1))
        got = assign_groups(cost, group, 0.5)
        for g in np.unique(group):
            ri = np.flatnonzero(group == g)
            sub = cost[ri]
            r, c = linear_sum_assignment(np.where(sub <= 0.5, sub, 1e6))
            want = np.full(len(ri), -1)
            ok = sub[r, c] <= 0.5
            want[r[ok]] = c[ok]
            np.testing.assert_array_equal(got[ri], want)


def test_triangulate_members_matches_linear_triangulation():
    from mvhand.core.associate import _triangulate_members

    rig = make_or_rig(6, distortion=False)
    rng = np.random.default_rng(2)
    X = rng.normal([0, 0, 1.0], 0.2, (30, 21, 3))
    xy = rig.undistort(rig.project(X)) + rng.normal(0, 1e-3, (6, 30, 21, 2))
    w = rng.random((6, 30, 21)) * (rng.random((6, 30, 21)) > 0.3)
    cams, slot = np.repeat(np.arange(6), 30), np.tile(np.arange(30), 6)
    keep = rng.random(len(cams)) > 0.2  # members in any order, some views absent
    w_kept = np.where(keep.reshape(6, 30)[..., None], w, 0.0)
    ref = linear_triangulation(rig.extrinsics, xy, w_kept)
    perm = rng.permutation(np.flatnonzero(keep))
    got = _triangulate_members(rig.extrinsics, cams[perm], xy.reshape(-1, 21, 2)[perm],
                               w.reshape(-1, 21)[perm], slot[perm], 30)  # fmt: skip
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, atol=1e-9, equal_nan=True)


@pytest.fixture(scope="module")
def l4_short():
    return synthesize_people(SynthConfig(level="L4", n_cameras=8, n_frames=60, seed=4))


def test_following_in_chunks_is_following_frame_by_frame(l4_short, monkeypatch):
    import mvhand.core.associate as assoc

    seq = l4_short  # walkers enter (tracks start) and cross
    fast = associate(seq.rig, seq.detections)
    monkeypatch.setattr(assoc, "_CHUNK", 1)
    slow = associate(seq.rig, seq.detections)
    np.testing.assert_array_equal(fast.det_track, slow.det_track)
    np.testing.assert_allclose(fast.body3d, slow.body3d, atol=1e-9, equal_nan=True)
    np.testing.assert_array_equal(fast.hand_track, slow.hand_track)
    assert fast.track_body.sum() >= 5


def test_hands_in_rounds_are_hands_frame_by_frame(l4_short):
    import mvhand.core.associate as assoc
    from mvhand.core.camera import UNIT_SCALE_M

    seq, cfg = l4_short, AssociationConfig()
    det, rig = seq.detections, seq.rig.subset(seq.detections.cameras)
    to_units = 1.0 / UNIT_SCALE_M[rig.units]
    body_xy = assoc._undistort_rows(rig, det.camera, det.body_px)
    body_w = np.where(det.body_scores >= cfg.min_score, det.body_scores, 0.0)
    det_track, body3d, _, _ = assoc._person_tracks(rig.extrinsics, det, body_xy, body_w, cfg,
                                                   to_units, 30.0)  # fmt: skip
    hand_xy = assoc._undistort_rows(rig, det.camera, det.hands_px)
    hand_w = np.where(det.hands_scores >= cfg.min_score, det.hands_scores, 0.0)

    def state():
        return assoc._HandState(rig.extrinsics, det.frame, det.camera, hand_xy, hand_w,
                                det_track, assoc.HAND_LENGTH_M * to_units)  # fmt: skip

    knuckle = assoc._KNUCKLE_M * to_units
    fast = state()
    hand3d = assoc._assign_hands(fast, body3d, cfg, knuckle)
    # the plain way: one frame after the other, each with the 3D of the frames before
    ref = state()
    cand = assoc._hand_candidates(ref)
    hc = assoc._HandCosts.build(ref, cand, body3d, knuckle)
    ref3d = np.full_like(hand3d, np.nan)
    slot = np.full(len(cand), -1)
    for t in range(det.n_frames):
        sel = np.flatnonzero(hc.frame == t)
        slot[sel] = assoc._hand_round(ref, hc, sel, ref3d, cfg.hand_gate)
        assoc._settle_frames(ref, cand, slot, np.array([t]), ref3d, cfg)
    np.testing.assert_array_equal(fast.hand_track, ref.hand_track)
    np.testing.assert_array_equal(fast.hand_side, ref.hand_side)
    np.testing.assert_allclose(hand3d, ref3d, atol=1e-9, equal_nan=True)
    assert (fast.hand_track >= 0).mean() > 0.5
