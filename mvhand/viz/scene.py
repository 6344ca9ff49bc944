"""What is drawn at each frame of a run, as plain arrays, and where the virtual camera is.

Shared by the interactive viewer and the headless renderer so both show the same scene:
static parts (floor grid, camera frusta) and per-frame parts (both hands' skeletons coloured
per finger or by reprojection error, the fitted meshes), plus the 3D anchors of text labels.

A run of several people (``hands3d_people.npz``) shows every person instead: its hands and
arm chains in the person's colour (:func:`mvhand.viz.geometry.person_rgb`, the colour of the
2D overlays), one group per person, labelled ``P<id> L`` / ``P<id> R`` at the wrists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mvhand.core.camera import Camera
from mvhand.errors import InputError
from mvhand.viz import geometry as geo
from mvhand.viz.rundata import RunData


@dataclass(frozen=True)
class SceneOptions:
    """What to show.

    Attributes:
        cameras: draw the cameras as frusta with their names.
        grid: draw the floor grid.
        mesh: draw the fitted hand meshes when the run has them.
        color_by_error: colour joints by reprojection error instead of by finger.
        max_error_px: error drawn fully red in that mode.
        joint_scale: factor on joint and bone thickness.
    """

    cameras: bool = True
    grid: bool = True
    mesh: bool = True
    color_by_error: bool = False
    max_error_px: float = 20.0
    joint_scale: float = 1.0


@dataclass(frozen=True)
class Label:
    """A text label at a 3D point (scene units).

    Attributes:
        position: ``(3,)`` where.
        text: what.
        rgb: its colour in [0, 1] (None: white).
        per_frame: a label that moves with the frame (hands), not a static one (cameras).
    """

    position: np.ndarray
    text: str
    rgb: np.ndarray | None = None
    per_frame: bool = True


@dataclass(frozen=True, eq=False)
class PersonGroup:
    """One person's geometry at a frame: its id, colour and mesh (hands and arm chains)."""

    person_id: int
    rgb: np.ndarray
    mesh: geo.TriMesh


class Scene:
    """The drawable scene of a run.

    Args:
        run: the loaded run folder.
        options: what to show.
    """

    def __init__(self, run: RunData, options: SceneOptions = SceneOptions()) -> None:
        self.run = run
        self.options = options
        self.units = run.hands3d.units
        self.up = geo.up_vector(run.rig)
        pts = run.hands3d.keypoints3d
        if run.people is not None:  # everybody's hands and arms
            res = run.people.result
            pts = np.concatenate([pts.reshape(-1, 3), res.hands3d.reshape(-1, 3),
                                  res.body3d[:, :, geo.ARM_CHAIN.ravel()].reshape(-1, 3)])
        if not np.isfinite(pts).any():
            raise InputError("the 3D results hold no reconstructed joint, so there is nothing "
                             "to show; see report.json for why", run.folder / "hands3d.npz")
        self._points = pts
        self.target, self.radius = geo.scene_target(pts)

    @property
    def n_frames(self) -> int:
        return self.run.n_frames

    def static_lines(self, exclude_camera: str | None = None) -> list[geo.LineSet]:
        """Floor grid and camera frusta (empty list if both are off); the frustum of
        ``exclude_camera`` (the one looked through) is left out."""
        out = []
        if self.options.grid:
            out.append(geo.floor_grid(self.run.rig, self._points, self.up, self.units))
        if self.options.cameras:
            names = [n for n in self.run.rig.names if n != exclude_camera]
            if names:
                depth = geo.FRUSTUM_DEPTH_M * geo.units_per_m(self.units)
                out.append(geo.frustum_lines(self.run.rig.subset(names), depth))
        return out

    def bounds(self) -> np.ndarray:
        """``(2, 3)`` corners of everything the scene may show over the whole sequence."""
        pts = self._points.reshape(-1, 3)
        parts = [pts[np.isfinite(pts).all(1)]]
        if self.options.cameras:
            parts.append(np.stack([c.center_world for c in self.run.rig.cameras]))
        allp = np.vstack(parts)
        return np.stack([allp.min(0), allp.max(0)])

    def frame_meshes(self, t: int) -> list[geo.TriMesh]:
        """The skeletons (and fitted meshes) at frame ``t``; with several people, one mesh per
        person (:meth:`person_groups`)."""
        h3d = self.run.hands3d
        if self.run.people is not None:
            out = [g.mesh for g in self.person_groups(t)]
        else:
            err = h3d.reprojection_error_px[t] if self.options.color_by_error else None
            out = [geo.skeleton_mesh(h3d.keypoints3d[t], self.units, err,
                                     self.options.max_error_px, self.options.joint_scale)]
        meshes = self.run.meshes
        if self.options.mesh and meshes is not None:
            for verts, faces in zip(meshes.vertices, meshes.faces, strict=True):
                if verts is not None:
                    out.append(geo.hand_mesh(verts[t], faces))
        return out

    def person_groups(self, t: int) -> list[PersonGroup]:
        """Every person with a joint at frame ``t``: hands and arm chains in its colour (none
        for a single-person run)."""
        if self.run.people is None:
            return []
        res, o = self.run.people.result, self.options
        out = []
        for p, pid in enumerate(res.person_ids.tolist()):
            err = res.hands_reprojection_error_px[t, p] if o.color_by_error else None
            mesh = geo.person_mesh(res.hands3d[t, p], res.body3d[t, p], pid, self.units, err,
                                   o.max_error_px, o.joint_scale)  # fmt: skip
            if len(mesh.triangles):
                out.append(PersonGroup(pid, geo.person_rgb(pid), mesh))
        return out

    def labels(self, t: int, exclude_camera: str | None = None) -> list[Label]:
        """Camera names at the camera centres, and "L"/"R" beside each visible wrist ("P<id> L"
        in the person's colour with several people)."""
        out = []
        if self.options.cameras:
            out += [Label(c.center_world, c.name, per_frame=False) for c in self.run.rig.cameras
                    if c.name != exclude_camera]
        if self.run.people is not None:
            res = self.run.people.result
            for p, pid in enumerate(res.person_ids.tolist()):
                for s, letter in enumerate("LR"):
                    wrist = res.hands3d[t, p, s, 0]
                    if np.isfinite(wrist).all():
                        out.append(Label(wrist, f"P{pid} {letter}", geo.person_rgb(pid)))
            return out
        for h, name in enumerate(self.run.hands3d.hands):
            wrist = self.run.hands3d.keypoints3d[t, h, 0]
            if np.isfinite(wrist).all():
                out.append(Label(wrist, name[:1].upper()))
        return out

    def view_camera(self, view: str, t: int, size_px: tuple[int, int],
                    orbit_period_frames: float = 300.0) -> Camera:  # fmt: skip
        """The virtual camera of frame ``t``.

        Args:
            view: "orbit" (circles the hands' region once per ``orbit_period_frames``),
                "overview" (fixed, high, showing the cameras and the hands), "hand:left" /
                "hand:right" (a close-up circling that hand, following it), or a camera name
                (that camera's viewpoint, distortion ignored, fitted into ``size_px``).
            t: frame.
            size_px: (width, height) of the output image.
        """
        if view == "orbit":
            az = 2 * np.pi * t / max(orbit_period_frames, 1.0)
            dist = max(self.radius, 0.15 * geo.units_per_m(self.units)) * 3.2
            return geo.orbit_camera(self.target, dist, az, np.radians(25), self.up, size_px)
        if view.startswith("hand:"):
            centre = self.hand_centre(view.split(":", 1)[1], t)
            az = 2 * np.pi * t / max(orbit_period_frames, 1.0)
            dist = 0.45 * geo.units_per_m(self.units)
            return geo.orbit_camera(centre, dist, az, np.radians(30), self.up, size_px)
        if view == "overview":
            centers = np.stack([c.center_world for c in self.run.rig.cameras])
            spread = float(np.max(np.linalg.norm(centers - self.target, axis=1)))
            return geo.orbit_camera(self.target, 1.8 * spread, np.radians(35), np.radians(40),
                                    self.up, size_px)  # fmt: skip
        return geo.view_of_camera(self.run.rig[view], size_px)

    def hand_centre(self, hand: str, t: int) -> np.ndarray:
        """Mean joint of ``hand`` at frame ``t``, or at the nearest frame where it exists."""
        hands = self.run.hands3d.hands
        if hand not in hands:
            raise ValueError(f"unknown hand {hand!r}; the run has {', '.join(hands)}")
        pts = self.run.hands3d.keypoints3d[:, hands.index(hand)]
        has = np.isfinite(pts).all(-1).any(-1)
        if not has.any():
            return self.target
        nearest = np.flatnonzero(has)[np.argmin(np.abs(np.flatnonzero(has) - t))]
        p = pts[nearest]
        return p[np.isfinite(p).all(-1)].mean(0)
