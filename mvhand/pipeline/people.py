"""Several people in ``mvhand run``: every camera's people -> association -> one chosen person.

With ``detect.max_people > 1`` each camera's 2D result carries every person it followed
(:mod:`mvhand.pipeline.people2d`). Here they are put in one table, associated and reconstructed
(:func:`mvhand.stages.people.reconstruct_people`: everybody, in ``hands3d_people.npz``), and the
person named by ``person`` (:func:`choose_person`) gives today's single-person files: every
person-hand goes through the run's own 3D stage, and the chosen person's associated 2D and 3D
make ``keypoints2d.npz``, ``hands3d.npz``, the fit and the exports, so they keep their meaning.
"""

from __future__ import annotations

import warnings

import numpy as np

from mvhand.core.people import Detections2D, PeopleResult, empty_detections
from mvhand.errors import ConfigError
from mvhand.pipeline.camera2d import Camera2D
from mvhand.pipeline.config import parse_person


def gather_detections(results: dict[str, Camera2D], n_frames: int,
                      fps: float | None) -> Detections2D:  # fmt: skip
    """Every camera's rows in one table, cameras in the order of ``results``."""
    names = tuple(results)
    parts = [empty_detections(names, n_frames, fps)]
    for c, r in enumerate(results.values()):
        d = r.detections
        if d is None:
            raise ValueError(f"camera '{r.camera}' has no several-people result")
        parts.append(Detections2D(np.full(len(d), c), d.frame, d.body_px, d.body_scores,
                                  d.hands_px, d.hands_scores, d.source, names, n_frames,
                                  fps))  # fmt: skip
    return Detections2D.concatenate(parts)


def choose_person(res: PeopleResult, rule: str) -> int | None:
    """The slot of the person ``rule`` names (see ``person`` in the pipeline config), or
    None when nobody was reconstructed.

    'primary' is the person seen best: the most hand views over the sequence (body views break
    ties). 'near:x,y,z' is the person whose wrists are on average nearest the point.

    Raises:
        ConfigError: a person id that was not found (the message lists those found).
    """
    kind, arg = parse_person(rule)
    if res.n_people == 0:
        return None
    if kind == "id":
        hit = np.flatnonzero(res.person_ids == arg)
        if not len(hit):
            raise ConfigError(f"'person' = {arg}: no such person; found "
                              f"{', '.join(str(i) for i in res.person_ids)}")  # fmt: skip
        return int(hit[0])
    if kind == "near":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            wrist = np.nanmean(res.hands3d[:, :, :, 0], axis=(0, 2))  # (P, 3)
        d = np.linalg.norm(wrist - np.asarray(arg), axis=-1)
        return int(np.argmin(np.where(np.isfinite(d), d, np.inf)))
    views = res.hands_n_views.sum(axis=(0, 2, 3)).astype(float)
    return int(np.lexsort((-res.body_n_views.sum(0), -views))[0])


def people_section(res: PeopleResult, slot: int | None, rule: str) -> dict:
    """The report's ``people`` section: what the association found, and who is in
    ``hands3d.npz``."""
    out = {k: v for k, v in res.report.items() if k != "warnings"}
    out["person"] = {"rule": rule,
                     "id": None if slot is None else int(res.person_ids[slot])}  # fmt: skip
    return out
