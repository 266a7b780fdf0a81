"""Model families (SD1/SD2, SDXL) behind one small protocol, and loading a profile's model.

Start at family.py (the protocol), then sd.py and sdxl.py (one module per family); registry.py
says which family a diffusers folder is; loading.py turns a profile's model name into a folder.
"""
