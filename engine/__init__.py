"""The fine-tuning engine: a plain Python library (no gradio) that the UI, the CLI and scripts drive.

Start from `engine.studio.Studio`. Heavy libraries (torch, transformers, trl, peft) are imported
lazily inside the functions that need them, so importing the engine is fast.
"""
