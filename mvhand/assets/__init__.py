"""Data files shipped inside the package (see each folder's licence)."""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
