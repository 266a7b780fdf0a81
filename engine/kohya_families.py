"""The base model families a kohya LoRA file's metadata tells apart, as engine/convert/detect.py names them.

A module of its own, importing nothing: `dbtui convert lora-to-kohya --family` offers them when the parser is
built, before engine.convert (about 0.2 s to import) is needed, and the converter checks against the same tuple.
"""

KOHYA_FAMILIES = ("sd1", "sd1-v", "sd2", "sd2-v", "sdxl", "sdxl-v")
