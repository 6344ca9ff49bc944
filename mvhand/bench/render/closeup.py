"""A close-up of one open hand (the mesh's rest pose) over the table: for tests and for
checking a 2D model on a rendered hand."""

from __future__ import annotations

import numpy as np

from mvhand.bench.render.camera_render import render_frame, render_static
from mvhand.bench.render.geometry import Material, make_mesh
from mvhand.bench.render.scene import HAND_ID, SKIN, static_scene, surgical_lights
from mvhand.bench.render.skin import load_hand
from mvhand.core.camera import Camera
from mvhand.core.synthetic import look_at


def render_open_hand(side: str, sign: float = 1.0, size_px: tuple[int, int] = (480, 640),
                     focal_px: float = 600.0, distance_m: float = 0.45
                     ) -> tuple[np.ndarray, Camera, np.ndarray]:  # fmt: skip
    """The open ``side`` hand seen from ``distance_m`` in front of its palm (``sign`` 1) or
    its back (-1), fingers up in the image.

    Returns:
        ``(image_rgb, camera, joints)``: the ``(h, w, 3)`` uint8 image, its camera, and the
        ``(21, 3)`` truth joints (metres, world).
    """
    hand = load_hand(side)
    rest21 = hand.joints21(hand.rest)
    offset = np.array([-0.07, 0.14, 1.06]) - rest21[0]
    joints = rest21 + offset
    mesh = make_mesh(hand.mesh.vertices + offset, hand.mesh.normals, hand.mesh.faces,
                     Material(SKIN["light"], 0.08, 15.0), HAND_ID)  # fmt: skip
    normal = np.cross(joints[5] - joints[0], joints[17] - joints[0])
    normal /= np.linalg.norm(normal)
    centre = joints[[0, 5, 9, 13, 17]].mean(0)
    up = joints[9] - joints[0]
    cam = look_at("closeup", centre + sign * distance_m * normal, centre, size_px, focal_px,
                  up=up / np.linalg.norm(up))  # fmt: skip
    rng = np.random.default_rng(0)
    lights = surgical_lights(rng, 1.0)
    static = render_static(cam, static_scene(rng), lights, 1.0)
    image, _, _ = render_frame(cam, static, mesh, lights, 1.0, rng)
    return image, cam, joints
