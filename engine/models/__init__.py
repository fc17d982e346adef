"""Base models: where they come from (bundled, local folder, GGUF, hub), conversion and cache, shapes."""
