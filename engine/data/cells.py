"""What one cell of an edited dataset holds: missing, empty or nested values, and its text for search,
duplicate checks, stripping and the grid."""
from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd


def is_nested(value: Any) -> bool:
    """Whether the cell holds a list, dict or tuple (a ShareGPT conversation, say)."""
    return isinstance(value, (list, dict, tuple))


def is_missing(value: Any) -> bool:
    """Whether the cell holds nothing (None, or the NaN pandas puts in a missing cell)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def clean(value: Any) -> Any:
    """A cell as written out: no None/NaN (empty string instead)."""
    return "" if is_missing(value) else value


def cell_text(value: Any) -> str:
    """The cell as one string (nested values as JSON), for searching."""
    if is_missing(value):
        return ""
    if isinstance(value, str):
        return value
    if is_nested(value):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def grid_value(value: Any) -> Any:
    """The cell as the grid shows it: lists and dicts as JSON text, anything else as it is."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value


def dedup_key(value: Any) -> Any:
    """A hashable stand-in for a cell: equal only for cells written out identically."""
    value = clean(value)
    return value if type(value) is str else (type(value).__name__, cell_text(value))


def is_empty(value: Any) -> bool:
    """Whether the cell holds no text: missing, blank, or an empty list or dict."""
    if is_missing(value):
        return True
    if isinstance(value, str):
        return not value.strip()
    if is_nested(value):
        return len(value) == 0
    return False


def stripped(value: Any) -> Any:
    """`value` with leading/trailing whitespace removed from every string in it (new objects, never in place)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return [stripped(v) for v in value]
    if isinstance(value, tuple):
        return tuple(stripped(v) for v in value)
    if isinstance(value, dict):
        return {k: stripped(v) for k, v in value.items()}
    return value


def object_column(values: list[Any], index: Any = None) -> pd.Series:
    """A column that keeps Python values as they are (object dtype: lists stay lists)."""
    return pd.Series(values, dtype=object, index=index)
