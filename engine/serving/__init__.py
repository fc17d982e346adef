"""Serving a trained adapter beyond the studio: an OpenAI-compatible HTTP API (`python app.py serve`)."""
