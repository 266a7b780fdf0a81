"""A checkpoint's weights of one model part read back into that part: its LoRA, or its full weights.

Resume's load hook and both exports read them here, so a damaged, unreadable or mismatched checkpoint is said alike.
"""

from __future__ import annotations

import errno
import shlex
from pathlib import Path
from typing import Any

from engine.errors import os_error_in
from engine.runs.checkpoints import CheckpointError, CheckpointMismatchError


def restore_part(model: Any, name: str, checkpoint: Path, shown: Path | None = None) -> None:
    """Load a checkpoint's weights of one part (``unet``, ``text_encoder``…) into ``model``: its LoRA
    when the model has one, else its full weights. Errors name ``shown`` where given: the checkpoint that
    ``checkpoint``, an export's pin of it, links to (the pin is gone by the time they are read)."""
    from peft import set_peft_model_state_dict
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from engine.models.parts import pretrained_part

    lora = bool(getattr(model, "peft_config", None))
    source = checkpoint / "lora" / f"{name}.safetensors" if lora else checkpoint / name
    other_steps = "use another kept step (`dbtui export RUN --step N`, `dbtui resume RUN --from CHECKPOINT`)"
    said = shown or checkpoint
    if not source.exists():
        raise CheckpointError(f"checkpoint {said} is incomplete: {source.relative_to(checkpoint)} is missing; {other_steps}")
    try:
        if lora:
            result = set_peft_model_state_dict(model, load_file(source))
        else:
            model.load_state_dict(pretrained_part(type(model), source).state_dict())
    except RuntimeError as error:  # torch's load_state_dict: a LoRA of another rank, another model's weights
        if "size mismatch" not in str(error) and "loading state_dict" not in str(error):
            raise  # out of memory, and the like: not the checkpoint's
        raise CheckpointMismatchError(f"checkpoint {said} does not match the profile's settings: its {name} weights do not fit "
                              "the model they make (another training.lora rank or targets, another base model): put back in "
                              "the profile the settings it was trained with") from None
    except (OSError, ValueError, SafetensorError) as error:
        machine = os_error_in(error)
        if machine is not None and machine.errno in (errno.EACCES, errno.EPERM):
            raise CheckpointError(f"checkpoint {said}: this user may not read its {name} weights; run it as the user "
                                  f"who trained it, or make them readable (`chmod -R a+r {shlex.quote(str(said))}`)") from None
        # The file named is the pin's, gone by the time the message is read: the checkpoint's own is named instead.
        read = str(error).replace(str(checkpoint), str(said))
        raise CheckpointError(f"checkpoint {said} is damaged: its {name} weights cannot be read ({read}); {other_steps}") from None
    if lora and getattr(result, "unexpected_keys", None):
        raise CheckpointMismatchError(f"checkpoint {said} does not match this profile's LoRA settings")
