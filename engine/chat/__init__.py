"""Inference: one base model with adapters attached, mixed base/adapter batches, streaming, metrics."""
