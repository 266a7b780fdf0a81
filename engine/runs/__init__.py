"""Run folders: a trainer process writes one; any number of viewers watch and control it."""
