"""Calibrating a camera rig inside mvhand: boards, intrinsics, extrinsics, people, world frame.

Modules:

- :mod:`~mvhand.calibrate.boards`: board definitions (checkerboard, ChArUco) read from TOML;
- :mod:`~mvhand.calibrate.detect`: finding a board in images and videos (with diagnoses of
  the usual mistakes: wrong dictionary, wrong size, inverted printing);
- :mod:`~mvhand.calibrate.intrinsics`: frame selection and per-camera intrinsics;
- :mod:`~mvhand.calibrate.bundle`: the numeric core (numpy/scipy only): pose averaging over
  the camera graph and bundle adjustment;
- :mod:`~mvhand.calibrate.extrinsics`: extrinsics from a board seen in synchronized videos;
- :mod:`~mvhand.calibrate.people`: extrinsics from body/hand keypoints;
- :mod:`~mvhand.calibrate.origin`: the world frame (origin, axes, up);
- :mod:`~mvhand.calibrate.check`: checking a calibration against board videos.

Array layout: board corners seen by camera c at synchronized frame f are
``corners_px[c, f, n]`` ``(C, F, N, 2)`` pixels, NaN where corner n was not seen; board
points are ``(N, 3)`` metres in the board's frame (z = 0 on the board).
"""
