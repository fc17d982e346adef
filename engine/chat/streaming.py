"""Streaming the answers of one generation batch, row by row, as tokens arrive, never showing a split character.

`generate` hands `RowsStreamer.put` the prompt first (skipped), then one token per row at each step. Each row's
new tokens are decoded together with the row's earlier ones (as the final answer is decoded), so a character
whose bytes span several tokens appears only once its last token is there: a text that would end in the
replacement character "\ufffd" is held back until the next token completes it.
"""
from __future__ import annotations

import queue
from typing import Iterator

from engine.models.loader import import_transformers

BaseStreamer = import_transformers("generation.streamers", "BaseStreamer")  # under the loader's first-import lock

REPLACEMENT = "\ufffd"  # what decoding gives for the bytes of a character whose last token has not come yet


def whole_answer(text: str) -> str:
    """A finished answer as shown: stripped, without the bytes of a character the token limit cut off at its end
    (they decode as REPLACEMENT, and no later token will complete them)."""
    return text.strip().rstrip(REPLACEMENT).rstrip()


class RowsStreamer(BaseStreamer):
    """Collects the generated tokens of every row of a batch; iterating gives the tuple of the rows' texts so far
    (stripped, as the whole answers are) each time one of them grows, and the whole texts last."""

    def __init__(self, tokenizer, rows: int, timeout: float | None = None) -> None:
        self.tokenizer = tokenizer
        self.ids: list[list[int]] = [[] for _ in range(rows)]
        self.shown: list[str] = [""] * rows
        self.timeout = timeout
        self._prompt_seen = False
        self._queue: queue.Queue = queue.Queue()

    def put(self, value) -> None:
        """Take the prompt (skipped) or the next token of every row, and publish the rows' texts when one grew."""
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        tokens = value.reshape(len(self.ids), -1).tolist()
        for row, new in zip(self.ids, tokens):
            row.extend(int(token) for token in new)
        if self._refresh(final=False):
            self._queue.put(tuple(self.shown))

    def end(self) -> None:
        """Publish the rows' whole texts (nothing held back any more) and mark the end of the stream."""
        self._refresh(final=True)
        self._queue.put(tuple(self.shown))
        self._queue.put(None)

    def fail(self) -> None:
        """Mark the end of the stream without more text (the generation raised; the caller reports why)."""
        self._queue.put(None)

    def _refresh(self, final: bool) -> bool:
        """Decode every row again; keep a row's previous text while its new one ends in a split character (unless
        `final`). Returns whether a row's shown text changed."""
        changed = False
        for index, ids in enumerate(self.ids):
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            if not final and text.endswith(REPLACEMENT):
                continue
            text = whole_answer(text)
            if text != self.shown[index]:
                self.shown[index], changed = text, True
        return changed

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        """The rows' texts each time one grew, until the generation ends (or `timeout` seconds pass between two)."""
        while True:
            texts = self._queue.get(timeout=self.timeout)
            if texts is None:
                return
            yield texts
