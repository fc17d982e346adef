"""Taking a run out of the studio: the standalone training script (merge, GGUF and serving land here)."""
