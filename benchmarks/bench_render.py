"""Renderer choice for `mvhand bench render`: our numpy rasterizer against Open3D's offscreen
renderer on the same scene (the operating room, two skinned hands with forearms and
instruments), one camera, 1080x1920.

    python benchmarks/bench_render.py [--frames 10] [--camera 5] [--open3d]

Prints CPU seconds (ours) and wall seconds (Open3D, whose renderer threads are not this
process's CPU time alone) per frame for each (colour; and colour + depth for Open3D, which the
truth's visibility needs), the static part's one-off cost, and how far Open3D's depth image
and ours agree on the hand pixels.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mvhand.bench.render.camera_render import render_frame, render_static
from mvhand.bench.render.rig import or_rig
from mvhand.bench.render.scene import (
    LEVEL_SCENES,
    frame_mesh,
    make_motion,
    static_scene,
    surgical_lights,
)


def ours(cam, scene, lights, level, motion, frames: int) -> tuple[float, float, list]:
    """CPU seconds (this process; a fair figure on a shared machine): static, per frame."""
    t0 = time.process_time()
    static = render_static(cam, scene, lights, level.glare)
    t_static = time.process_time() - t0
    rng = np.random.default_rng(0)
    depths = []
    t0 = time.process_time()
    for t in range(frames):
        _, win, buf = render_frame(cam, static, frame_mesh(motion, level, t), lights,
                                   level.glare, rng)  # fmt: skip
        depths.append((win, buf.depth.copy() if buf is not None else None))
    return t_static, (time.process_time() - t0) / frames, depths


def _o3d_mesh(o3d, mesh):
    m = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(mesh.vertices),
                                  o3d.utility.Vector3iVector(mesh.faces.astype(np.int32)))
    m.vertex_normals = o3d.utility.Vector3dVector(mesh.normals)
    m.vertex_colors = o3d.utility.Vector3dVector(np.clip(mesh.albedo, 0, 1))
    return m


def open3d(cam, scene, level, motion, frames: int) -> tuple[float, float, float, list]:
    import open3d as o3d
    from open3d.visualization import rendering

    w, h = cam.size_px
    t0 = time.perf_counter()
    r = rendering.OffscreenRenderer(w, h)
    mat = rendering.MaterialRecord()
    mat.shader = "defaultLit"
    r.scene.add_geometry("static", _o3d_mesh(o3d, scene), mat)
    r.scene.scene.add_spot_light("lamp", [1, 0.97, 0.9], [-0.25, -0.35, 2.05], [0, 0, -1],
                                 300000, 4.0, 0.3, 0.55, True)  # fmt: skip
    E = np.eye(4)
    E[:3, :3], E[:3, 3] = cam.R_cam_world, cam.t_cam_world
    r.setup_camera(o3d.camera.PinholeCameraIntrinsic(w, h, cam.K), E)
    r.render_to_image()
    t_static = time.perf_counter() - t0
    t_col = t_both = 0.0
    depths = []
    for t in range(frames):
        t0 = time.perf_counter()
        if r.scene.has_geometry("moving"):
            r.scene.remove_geometry("moving")
        r.scene.add_geometry("moving", _o3d_mesh(o3d, frame_mesh(motion, level, t)), mat)
        np.asarray(r.render_to_image())
        t1 = time.perf_counter()
        depths.append(np.asarray(r.render_to_depth_image(z_in_view_space=True)))
        t_col += t1 - t0
        t_both += time.perf_counter() - t0
    return t_static, t_col / frames, t_both / frames, depths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--camera", type=int, default=5)
    ap.add_argument("--open3d", action="store_true", help="also time Open3D's renderer")
    args = ap.parse_args()
    level = LEVEL_SCENES["L2"]
    rng = np.random.default_rng(0)
    motion = make_motion(level, args.frames, 30.0, rng)
    scene = static_scene(rng)
    lights = surgical_lights(rng, level.glare)
    cam = or_rig()[args.camera]
    s, f, ours_depth = ours(cam, scene, lights, level, motion, args.frames)
    print(f"numpy rasterizer: static {s:.2f} CPU s once per camera, {f * 1e3:.0f} CPU ms per "
          f"frame (colour + depth + object ids)")  # fmt: skip
    if not args.open3d:
        return
    s, fc, fb, o3d_depth = open3d(cam, scene, level, motion, args.frames)
    print(f"Open3D OffscreenRenderer: setup + first frame {s:.2f} s, {fc * 1e3:.0f} ms per frame "
          f"colour only, {fb * 1e3:.0f} ms colour + depth (no object ids)")  # fmt: skip
    diffs = []
    for (win, d), od in zip(ours_depth, o3d_depth, strict=True):
        if d is None:
            continue
        x0, y0, x1, y1 = win
        od = np.abs(od[y0:y1, x0:x1])
        m = np.isfinite(d) & (od > 0) & np.isfinite(od) & (d < 5)
        diffs.append(np.abs(d[m] - od[m]))
    if diffs:
        diff = np.concatenate(diffs)
        print(f"depth agreement on moving-object pixels: median {np.median(diff) * 1e3:.1f} mm "
              "(Open3D renders without lens distortion, so edges differ)")  # fmt: skip


if __name__ == "__main__":
    main()
