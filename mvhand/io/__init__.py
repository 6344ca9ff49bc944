"""File formats and I/O around the numeric core."""
