"""The first import of transformers from several threads at once (the page's first checks do it) loads every
tokenizer: the loader imports it under a lock."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RACE = """
import threading
from engine.config import BUNDLED_MODEL_ID
from engine.models import loader

folder = loader.resolve_model(BUNDLED_MODEL_ID)
errors = []

def load():
    try:
        loader.load_tokenizer(folder)
    except Exception as error:
        errors.append(repr(error))

threads = [threading.Thread(target=load) for _ in range(3)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(errors)
"""


def test_three_threads_loading_tokenizers_in_a_fresh_process_all_succeed():
    done = subprocess.run([sys.executable, "-c", RACE], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
