"""Before training: the guides' advice and the whole-run memory and time estimate."""
