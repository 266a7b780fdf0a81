"""Load a diffusers folder as a user's script would, and dump its text encoders and tokenizers' ids.

Run as ``python older_readers_probe.py FOLDER OUT_FILE [FOLDER OUT_FILE ...]`` by any Python whose diffusers and
transformers are under test (the tests run it in the oldest declared stack's venv too): one process for every folder,
since its imports take most of its time. OUT_FILE gets each text encoder's weights (``text_model.`` dropped:
transformers 5 has no such module) and each tokenizer's ids for PROMPT; the tokenizer classes go into its metadata. A
folder that fails to load gets OUT_FILE.error, its traceback, in place of OUT_FILE, and the others are still read.
``--lora BASE_DIR LORA_DIR OUT_FILE`` after the folders runs lora_probe.py's probe in the same process, the same way.
Only the installed libraries are used: no dbtui import.
"""

from __future__ import annotations

import sys

PROMPT = "A photo of sks dog, wearing a HAT! 123 naïve café"


def main(folder: str, out_file: str) -> None:
    import torch
    from diffusers import DiffusionPipeline
    from safetensors.torch import save_file

    pipe = DiffusionPipeline.from_pretrained(folder)
    tensors, metadata = {}, {}
    for name in ("text_encoder", "text_encoder_2"):
        if getattr(pipe, name, None) is not None:
            for key, value in getattr(pipe, name).state_dict().items():
                tensors[f"{name}.{key.removeprefix('text_model.')}"] = value.detach().clone()
    for name in ("tokenizer", "tokenizer_2"):
        tokenizer = getattr(pipe, name, None)
        if tokenizer is not None:
            ids = tokenizer(PROMPT, padding="max_length", max_length=32, truncation=True).input_ids
            tensors[f"{name}.ids"] = torch.tensor(ids)
            metadata[name] = type(tokenizer).__name__
    save_file(tensors, out_file, metadata=metadata)


if __name__ == "__main__":
    import traceback

    import lora_probe  # beside this file: tests/stack_probes.py runs both probes in one process per stack

    pairs = sys.argv[1:]
    lora = []
    if "--lora" in pairs:  # --lora BASE_DIR LORA_DIR OUT_FILE: lora_probe.py's, after the folders
        lora = pairs[pairs.index("--lora") + 1:]
        pairs = pairs[:pairs.index("--lora")]
    probes = [(main, (folder, out_file)) for folder, out_file in zip(pairs[::2], pairs[1::2], strict=True)]
    probes += [(lora_probe.main, tuple(lora))] if lora else []
    for probe, args in probes:
        try:
            probe(*args)
        except Exception:
            with open(f"{args[-1]}.error", "w", encoding="utf-8") as error:
                error.write(traceback.format_exc())
