"""Small helpers many parts of the engine use: JSON records beside files (json_file.py), hub downloads
(hub_snapshot.py), waiting on a child process (child_process.py), deferring a rarely used library (deferred_import.py),
ending a process without a last walk of its objects (process_exit.py), a .safetensors file's header without its
tensors (safetensors_header.py)."""
