"""The typed, versioned TOML profile."""

from engine.profile.io import (
    dumps_profile,
    load_profile,
    load_run_profile,
    loads_profile,
    located,
    profile_data,
    read_profile_text,
    save_profile,
    validate_data,
)
from engine.profile.overrides import apply_overrides, merged_tables, parse_override
from engine.profile.problems import Problem, ProfileError
from engine.profile.schema import SCHEMA_VERSION, ConceptSection, Profile, concept_label
from engine.profile.training_sections import LoraSection

__all__ = [
    "SCHEMA_VERSION",
    "ConceptSection",
    "LoraSection",
    "Problem",
    "Profile",
    "ProfileError",
    "apply_overrides",
    "concept_label",
    "dumps_profile",
    "load_profile",
    "load_run_profile",
    "loads_profile",
    "located",
    "merged_tables",
    "parse_override",
    "profile_data",
    "read_profile_text",
    "save_profile",
    "validate_data",
]
