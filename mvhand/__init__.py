"""mvhand: multi-view 3D hand pose for surgical recordings.

Importing this package is cheap: heavy libraries (OpenCV, mediapipe, torch, open3d) are
imported lazily by the modules that need them.
"""

__version__ = "0.1.0"
