"""The numeric core: numpy/scipy only, no file I/O, no models, no printing.

Array layout used everywhere in mvhand (C cameras, T frames, H hands, J = 21 joints):

- 2D keypoints ``(C, T, H, J, 2)`` float pixels, scores ``(C, T, H, J)`` in [0, 1].
- 3D keypoints ``(T, H, J, 3)`` float, in the calibration's units (metres unless stated).
- Hands: index 0 is the left hand, 1 the right hand (``HANDS``).
- Missing values are NaN (score 0 for a missing 2D joint), never 0 or -1.
"""

HANDS: tuple[str, str] = ("left", "right")
