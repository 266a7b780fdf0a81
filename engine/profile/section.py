"""What every profile section shares: frozen, unknown keys refused, docstrings as help; and the bounds several
sections' numbers keep to."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

# numpy's generator, which accelerate's set_seed seeds as well as torch's, takes seeds below 2**32.
MAX_SEED = 2**32 - 1
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
# Far beyond any fine-tune (a million steps is weeks on one GPU): a run's length beyond it is a typo. An interval
# may be written larger to mean "never" (every_n_steps = 99999999), up to what TOML's 64-bit integers hold.
MAX_STEPS = 10_000_000
MAX_INTERVAL = 2**63 - 1


class Section(BaseModel):
    """Base of every profile section: frozen, unknown keys rejected, docstrings as help.

    TOML allows ``nan`` and ``inf``; no setting of ours means either, so floats must be finite.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_true_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic takes TOML's true as the number 1 (max_train_steps = true would train one step).
        if isinstance(value, bool) and _is_number(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"is {str(value).lower()}, but this setting is a number")
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any, info: ValidationInfo) -> Any:
        # TOML has no null: "" leaves an optional setting empty ("empty means …" in its help), in a file or with
        # --set 'KEY=""', the one way a command line can take back a value the profile sets.
        annotation = cls.model_fields[info.field_name].annotation
        optional = get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)
        return None if value == "" and optional else value


def _is_number(annotation: Any) -> bool:
    """An int or float field, optional or not."""
    kinds = set(get_args(annotation)) - {type(None)} if get_origin(annotation) in (Union, types.UnionType) else {annotation}
    return bool(kinds) and kinds <= {int, float}
