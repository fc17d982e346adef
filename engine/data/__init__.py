"""Datasets: reading files and detecting formats, column mapping, row and dataset checks, splits and
mixing, the row editor, and what the model sees of a row."""
