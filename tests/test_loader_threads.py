"""The first import of transformers from several threads at once (the page's first checks do it) loads every
tokenizer: the loader imports it under a lock, the streaming module goes through it, and the web app warms it once
on a background thread."""
import subprocess
import sys
import time
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


STREAMING_WAITS = """
import sys, threading, time
from engine.models import loader

with loader._FIRST_IMPORT:  # another thread is importing transformers for the first time
    importing = threading.Thread(target=lambda: __import__("engine.chat.streaming"))
    importing.start()
    importing.join(1.0)
    print("waited" if importing.is_alive() and "transformers" not in sys.modules else "raced")
importing.join()
from engine.chat.streaming import RowsStreamer
print(RowsStreamer.__mro__[1].__module__)
"""


def test_the_streaming_module_imports_transformers_through_the_loaders_lock():
    done = subprocess.run([sys.executable, "-c", STREAMING_WAITS], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["waited", "transformers.generation.streamers"]


def test_serving_the_web_app_imports_transformers_once_on_a_background_thread(monkeypatch):
    import threading
    from argparse import Namespace

    import app
    import ui.server
    from engine.models import loader

    imported = []
    monkeypatch.setattr(loader, "import_transformers", lambda: imported.append(threading.current_thread().name))
    monkeypatch.setattr(ui.server, "port_taken", lambda host, port: False)
    monkeypatch.setattr(ui.server, "build_server", lambda *args, **kwargs: "the app")
    monkeypatch.setattr(ui.server, "serve", lambda server, host, port: time.sleep(0.5))
    monkeypatch.setattr(app, "web_studio", lambda runs_dir, allowed: None)
    args = Namespace(host="127.0.0.1", port=7860, runs_dir="runs", allow_dir=[], lang="en")
    assert app.serve_web(args, None, {"public_url": None}) == 0
    assert imported == ["import-transformers"]
