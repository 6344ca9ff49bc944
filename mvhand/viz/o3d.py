"""Open3D glue: the lazy import with a clear message, array-to-Open3D conversion, and the
headless renderer.

Why the legacy ``open3d.visualization.Visualizer`` renders headless and not the Filament
``OffscreenRenderer``: measured on this project's CPU machines (open3d-cpu 0.20, Mesa 22
llvmpipe, 1280x720, two hands + grid + 12 frusta), the legacy visualizer falls back to EGL and
rendered about 22 frames/s with every joint's pixel exactly where the camera model projects it,
while ``OffscreenRenderer`` (software Vulkan) managed under 4 frames/s with meshes only and hung
in its first frame as soon as a ``LineSet`` (the grid, the frusta) was in the scene. The
interactive viewer (:mod:`mvhand.viz.viewer`) uses Open3D's GUI on a real display, where the
Filament renderer runs on the GPU.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

import numpy as np

from mvhand.core.camera import Camera
from mvhand.errors import MissingDependencyError
from mvhand.viz.geometry import BACKGROUND_RGB, LineSet, TriMesh

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install the optional extra: pip install 'mvhand[viz]' (or pip install open3d-cpu); on "
    "Debian/Ubuntu the import also needs the system library libusb-1.0-0 and headless rendering "
    "needs libegl1, libvulkan1 and mesa-vulkan-drivers (apt-get install libusb-1.0-0 libegl1 "
    "libvulkan1 mesa-vulkan-drivers)"
)


def require_open3d() -> Any:
    """Import and return ``open3d``; MissingDependencyError saying what to install if it fails.

    On a headless machine without a session (no ``XDG_RUNTIME_DIR``) Open3D's renderer prints
    "XDG_RUNTIME_DIR is invalid" on every start; a private temporary folder is set instead.
    """
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="mvhand-xdg-")  # mode 0700
    try:
        import open3d
    except ImportError as exc:  # the package, or a system library it loads, is missing
        raise MissingDependencyError(f"3D views need Open3D ({exc}); {INSTALL_HINT}") from None
    except OSError as exc:
        raise MissingDependencyError(f"Open3D failed to load ({exc}); {INSTALL_HINT}") from None
    open3d.utility.set_verbosity_level(open3d.utility.VerbosityLevel.Error)
    return open3d


def to_o3d_mesh(o3d: Any, mesh: TriMesh) -> Any:
    """An ``open3d.geometry.TriangleMesh`` with vertex colours."""
    verts = o3d.utility.Vector3dVector(np.asarray(mesh.vertices, float))
    out = o3d.geometry.TriangleMesh(verts, o3d.utility.Vector3iVector(
        np.asarray(mesh.triangles, np.int32)))
    out.vertex_colors = o3d.utility.Vector3dVector(np.asarray(mesh.colors, float))
    return out


def to_o3d_lines(o3d: Any, lines: LineSet) -> Any:
    """An ``open3d.geometry.LineSet`` with per-segment colours."""
    out = o3d.geometry.LineSet(o3d.utility.Vector3dVector(np.asarray(lines.points, float)),
                               o3d.utility.Vector2iVector(np.asarray(lines.segments, np.int32)))
    out.colors = o3d.utility.Vector3dVector(np.asarray(lines.colors, float))
    return out


def extrinsic_4x4(cam: Camera) -> np.ndarray:
    """World-to-camera ``[R t; 0 1]`` (4, 4) of ``cam``."""
    E = np.eye(4)
    E[:3, :3] = cam.R_cam_world
    E[:3, 3] = cam.t_cam_world
    return E


class HeadlessRenderer:
    """Render coloured meshes and lines offscreen into RGB arrays (no display needed).

    Colours are drawn unlit, so a joint's pixels have exactly its colour. Static geometry is
    added once; the per-frame meshes are replaced by :meth:`set_meshes`.

    Args:
        size_px: (width, height) of the images.

    Raises:
        MissingDependencyError: Open3D is missing or cannot create an offscreen context.
    """

    def __init__(self, size_px: tuple[int, int]) -> None:
        self.o3d = require_open3d()
        self.size_px = (int(size_px[0]), int(size_px[1]))
        self._vis = self.o3d.visualization.Visualizer()
        if not self._vis.create_window(width=self.size_px[0], height=self.size_px[1],
                                       visible=False):  # fmt: skip
            raise MissingDependencyError(
                "Open3D could not open an offscreen OpenGL context (no display and no EGL); "
                + INSTALL_HINT)  # fmt: skip
        opt = self._vis.get_render_option()
        opt.background_color = np.asarray(BACKGROUND_RGB, float)
        opt.light_on = False
        opt.mesh_show_back_face = True
        self._dynamic: list[Any] = []
        self._camera: Camera | None = None

    def add_static(self, lines: list[LineSet], bounds: np.ndarray | None = None) -> None:
        """Add lines that stay for every frame; ``bounds`` ``(2, 3)`` widens the clipping range
        to everything that will be shown."""
        for ls in lines:
            self._vis.add_geometry(to_o3d_lines(self.o3d, ls), reset_bounding_box=True)
        if bounds is not None:  # points without segments: counted in the bounds, never drawn
            pts = np.asarray(bounds, float).reshape(-1, 3)
            marker = self.o3d.geometry.LineSet(self.o3d.utility.Vector3dVector(pts),
                                               self.o3d.utility.Vector2iVector(
                                                   np.zeros((0, 2), np.int32)))  # fmt: skip
            self._vis.add_geometry(marker, reset_bounding_box=True)

    def set_meshes(self, meshes: list[TriMesh]) -> None:
        """Replace the per-frame meshes."""
        for g in self._dynamic:
            self._vis.remove_geometry(g, reset_bounding_box=False)
        self._dynamic = [to_o3d_mesh(self.o3d, m) for m in meshes if len(m.triangles)]
        for g in self._dynamic:
            self._vis.add_geometry(g, reset_bounding_box=False)

    def set_camera(self, cam: Camera) -> None:
        """Look through ``cam`` (pinhole; its size must be the renderer's)."""
        if tuple(cam.size_px) != self.size_px:
            raise ValueError(f"camera size {cam.size_px} is not the renderer's {self.size_px}")
        params = self.o3d.camera.PinholeCameraParameters()
        w, h = self.size_px
        params.intrinsic = self.o3d.camera.PinholeCameraIntrinsic(w, h, np.asarray(cam.K, float))
        params.extrinsic = extrinsic_4x4(cam)
        self._camera = cam
        self._apply_camera(params)

    def _apply_camera(self, params: Any) -> None:
        ok = self._vis.get_view_control().convert_from_pinhole_camera_parameters(
            params, allow_arbitrary=True)
        if not ok:
            log.warning("Open3D refused the view camera; the image may be framed differently")

    def render(self) -> np.ndarray:
        """The current image ``(height, width, 3)`` uint8 RGB."""
        if self._camera is not None:  # adding geometry may reset the view: set it again
            self.set_camera(self._camera)
        buf = self._vis.capture_screen_float_buffer(do_render=True)
        return (np.clip(np.asarray(buf), 0, 1) * 255 + 0.5).astype(np.uint8)

    def close(self) -> None:
        """Release the offscreen context."""
        self._vis.destroy_window()

    def __enter__(self) -> HeadlessRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
