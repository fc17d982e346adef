"""Chat's two answers on the bundled model, measured side by side in one run: the time until BOTH answers are
complete when they stream together from one mixed batch (`stream_compare`) against streaming one side after the
other (`stream_answer` for the baseline, then for the candidate), on the same prompts and settings (greedy).
Goal: together <= 0.6x the time of one after the other. The greedy texts must be the same both ways.
A short adapter is trained first (two steps), so the numbers need no earlier run.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from bench.compare_bench import short_run
from engine.chat.inference import ChatModel, GenParams
from engine.presets import SAMPLE_DATASET

PROMPTS = int(os.environ.get("BENCH_PROMPTS", "4"))
NEW_TOKENS = 48


def last(stream):
    """The last item a stream yields (the whole answer or pair), after reading all of it."""
    items = list(stream)
    return items[-1] if items else None


def one_after_the_other(chat: ChatModel, run_dir: Path, messages: list[dict], params: GenParams) -> tuple:
    """Both sides' answers, streaming the baseline's to its end, then the candidate's."""
    return last(chat.stream_answer(run_dir, messages, params, "base")), \
        last(chat.stream_answer(run_dir, messages, params, "adapter"))


def both_at_once(chat: ChatModel, run_dir: Path, messages: list[dict], params: GenParams) -> tuple:
    """Both sides' answers, streamed together from one mixed batch."""
    return tuple(last(chat.stream_compare(run_dir, messages, params)))


def timed(work, *args) -> tuple[float, object]:
    """(seconds, result) of calling `work(*args)`."""
    started = time.perf_counter()
    result = work(*args)
    return time.perf_counter() - started, result


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    rows = [json.loads(line) for line in SAMPLE_DATASET.read_text(encoding="utf-8").splitlines()][:PROMPTS]
    params = GenParams(max_new_tokens=NEW_TOKENS)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = short_run(Path(tmp))
        chat = ChatModel()
        chat.compare(run_dir, [{"role": "user", "content": "hi"}], GenParams(max_new_tokens=4))  # load, warm up
        apart = together = 0.0
        for row in rows:
            messages = [{"role": "user", "content": row["instruction"]}]
            seconds, pair = timed(one_after_the_other, chat, run_dir, messages, params)
            apart += seconds
            seconds, both = timed(both_at_once, chat, run_dir, messages, params)
            together += seconds
            assert both == pair, (both, pair)  # greedy: the same answers either way
        print(f"[chat] {PROMPTS} prompts, {NEW_TOKENS} new tokens, time until both answers are complete: one side "
              f"after the other {apart:.1f} s, both at once (one mixed batch) {together:.1f} s: "
              f"{together / apart:.2f}x (goal <= 0.6x)")


if __name__ == "__main__":
    main()
