"""The synthetic reference world: comparative regions whose cluster stages are known.

``archetypes`` holds every number, ``process`` the stage process, ``simulate`` the firm-by-firm
simulation of one region, ``calibration`` the comparison with real state-level cluster data and
``tables`` the Markdown rendering of the parameters used by docs/reference-world.md.
"""

from features.reference_world.archetypes import TARGET_REGION, YEARS

# Bump whenever a change to the code or the numbers changes the generated world.
GENERATOR_VERSION = "2.0.0"
SOURCE = "synthetic reference world"

__all__ = ["GENERATOR_VERSION", "SOURCE", "TARGET_REGION", "YEARS"]
