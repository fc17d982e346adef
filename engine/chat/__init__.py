"""Inference: one base model with adapters attached, any two sides (base model, adapters, checkpoints) in mixed
batches, both answers streamed at once, metrics."""
