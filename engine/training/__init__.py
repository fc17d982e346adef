"""Training runs: factories from TrainConfig to TRL/PEFT configs, the job, its callback and events,
the runner, adapters and checkpoints, and the diagnosis of a loss curve."""
