"""Pipeline stages: narrow ``run_<stage>(inputs, cfg) -> Result`` functions."""
