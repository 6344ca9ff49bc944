"""The one table of numeric tolerances used by the tests (and why each is what it is)."""

#: Projection must agree with OpenCV to floating-point precision (px).
PROJECTION_VS_OPENCV_PX = 1e-6
#: Undistortion round trip in normalized coordinates.
UNDISTORT_ROUNDTRIP = 1e-9
#: Noiseless triangulation recovers the truth (metres).
EXACT_RECOVERY_M = 1e-6
