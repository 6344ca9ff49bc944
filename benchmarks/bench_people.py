"""Benchmark of the several-people path on the synthetic multi-person levels L3-L5.

For each level (``mvhand.bench.synth.synthesize_people``: people at the table, distractors
walking in, across and out) it prints, after matching result people to the truth:
per-person-hand MPJPE (mm; people at the table and walkers separately), completeness,
identity switches, and the share of true 2D hand detections assigned to the right person and
hand (IDF1-like), for

- ``people``: ``mvhand.stages.people.reconstruct_people`` (association + robust triangulation
  per person-hand; ``--optimize`` adds the optimizer);
- ``per-frame clusters+link``: the association's other mode: every frame clustered from
  scratch (epipolar affinities, average linkage, 3D verification), clusters linked in 3D
  afterwards; ``same, no 3D verify`` without the verification step;
- ``single``: today's single-person path on the same data: per camera and frame the most
  confident person (as the front-end keeps one person per camera), its hands by the
  detector's side guess, the robust triangulation with its swap repair; scored against the
  true person it overlaps most (the surgeon, person 0, in practice).

and the association's share of the 3D stage's time (wall clock and CPU time of this process;
the CPU time is the steadier figure on a shared machine, whose load average is printed too).

    .venv/bin/python benchmarks/bench_people.py --cameras 12 --frames 300 --levels L3,L4,L5
    .venv/bin/python benchmarks/bench_people.py --levels L5 --paths people   # timing only
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np

from mvhand.bench.synth import PEOPLE_PRESETS, SynthConfig, score_people, synthesize_people
from mvhand.core.associate import AssociationConfig
from mvhand.core.data import Keypoints2D
from mvhand.core.people import Detections2D
from mvhand.core.triangulate import triangulate
from mvhand.stages.people import PeopleConfig, reconstruct_people


def single_person_keypoints(det: Detections2D) -> tuple[Keypoints2D, np.ndarray]:
    """One person per camera and frame (the highest mean score), hands by side guess; and the
    rows used ``(C, T)`` (-1 none)."""
    C, T = det.n_cameras, det.n_frames
    n_body = (det.body_scores > 0).sum(1)
    score = det.body_scores.sum(1) / np.maximum(n_body, 1)
    score = score + 1e-3 * det.hands_scores.mean((1, 2))
    best = np.full((C, T), -1, dtype=np.int64)
    best_score = np.full((C, T), -np.inf)
    for n in np.argsort(score, kind="stable"):  # the last (highest) wins
        c, t = det.camera[n], det.frame[n]
        if score[n] >= best_score[c, t]:
            best[c, t], best_score[c, t] = n, score[n]
    kp = np.full((C, T, 2, 21, 2), np.nan)
    sc = np.zeros((C, T, 2, 21))
    c, t = np.nonzero(best >= 0)
    kp[c, t], sc[c, t] = det.hands_px[best[c, t]], det.hands_scores[best[c, t]]
    return Keypoints2D(kp, sc, det.cameras, fps=det.fps), best


def score_single(seq, hands3d: np.ndarray, used: np.ndarray) -> dict:
    """The single-person result as a one-person result, scored like the people path."""
    det = seq.detections
    person = np.full(len(det), -1, dtype=np.int64)
    side = np.full((len(det), 2), -1, dtype=np.int64)
    rows = used[used >= 0]
    person[rows], side[rows] = 0, [0, 1]
    return score_people(seq, hands3d[:, None], np.repeat(person[:, None], 2, 1), side)


def _fmt(score: dict, table: np.ndarray, walkers: np.ndarray) -> str:
    mp = score["mpjpe_mm"]
    done = score["completeness"]

    def stat(idx: np.ndarray) -> str:
        if len(idx) == 0:
            return "      -"
        m = mp[idx]
        found = np.isfinite(m).all(1).sum()
        return f"{np.nanmean(m):7.1f} ({found}/{len(idx)})" if found else f"   none (0/{len(idx)})"

    return (f"{stat(table)}  {stat(walkers)}  {100 * done[table].mean():6.1f} %  "
            f"{score['id_switches']:4d}  {100 * score['idf1']:6.1f} %")  # fmt: skip


def run_level(level: str, cams: int, frames: int, seed: int, optimize: bool,
              others: bool = True) -> None:  # fmt: skip
    seq = synthesize_people(SynthConfig(level=level, n_cameras=cams, n_frames=frames,
                                        seed=seed))  # fmt: skip
    preset = PEOPLE_PRESETS[level]
    table = np.arange(preset.at_table)
    walkers = np.arange(preset.at_table, preset.at_table + preset.walkers)
    det = seq.detections
    print(f"\n{level}: {cams} cameras, {frames} frames, {preset.at_table} at the table + "
          f"{preset.walkers} walking through; {len(det)} detections "
          f"({int((det.source == 1).sum())} hands without a body)")  # fmt: skip
    print("  path                      MPJPE table   MPJPE walkers  complete  IDsw  IDF1")
    cfg = PeopleConfig(optimize=optimize)
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    res = reconstruct_people(seq.rig, det, cfg)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    s = score_people(seq, res.hands3d, res.det_hand_person, res.det_side)
    print(f"  people (follow + cluster) {_fmt(s, table, walkers)}")
    tm = res.report["timings_s"]
    assoc_cpu = res.report["association"].get("cpu_seconds", float("nan"))
    share = 100 * tm["association"] / max(tm["reconstruction"], 1e-9)
    print(f"  time: association {tm['association']:.2f} s, per-person-hand 3D "
          f"{tm['reconstruction']:.2f} s ({share:.0f} % of it), total {wall:.2f} s; "
          f"CPU: association {assoc_cpu:.2f} s, total "
          f"{cpu:.2f} s ({100 * assoc_cpu / max(cpu - assoc_cpu, 1e-9):.0f} %); load average "
          f"{load:.1f}; people found {res.report['people_found']}, warnings "
          f"{len(res.report['warnings'])}")  # fmt: skip
    if not others:
        return
    for label, assoc in (("per-frame clusters+link", AssociationConfig(propagate=False)),
                         ("  same, no 3D verify", AssociationConfig(propagate=False,
                                                                    verify=False))):
        t2 = time.perf_counter()
        other = reconstruct_people(seq.rig, det, dataclasses.replace(cfg, association=assoc))
        dt = other.report["timings_s"]["association"]
        s = score_people(seq, other.hands3d, other.det_hand_person, other.det_side)
        print(f"  {label:<24}  {_fmt(s, table, walkers)}  (association {dt:.1f} s, "
              f"total {time.perf_counter() - t2:.1f} s)")  # fmt: skip
    kp, used = single_person_keypoints(det)
    t1 = time.perf_counter()
    single = triangulate(seq.rig, kp)
    t_single = time.perf_counter() - t1
    pts = getattr(single, "keypoints3d", None)
    pts = single.points3d if pts is None else pts
    s = score_single(seq, pts, used)
    who = int(np.flatnonzero(s["match"] >= 0)[0]) if (s["match"] >= 0).any() else -1
    idx = np.array([who] if who >= 0 else [], dtype=int)
    print(f"  single (matched person {who})  {_fmt(s, idx, walkers[:0])}  (triangulation "
          f"{t_single:.2f} s)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", type=int, default=12)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--levels", default="L3,L4,L5")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--optimize", action="store_true", help="run the optimizer per hand too")
    ap.add_argument("--paths", choices=["all", "people"], default="all",
                    help="people: only the default people path (timing)")
    args = ap.parse_args()
    for level in args.levels.split(","):
        run_level(level.strip(), args.cameras, args.frames, args.seed, args.optimize,
                  others=args.paths == "all")  # fmt: skip


if __name__ == "__main__":
    main()
