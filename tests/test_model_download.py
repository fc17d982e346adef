"""Model downloads with a fake `snapshot_download` (no network here): progress, resume, patterns, sources, errors;
and the real client refusing offline with the worded message."""
from __future__ import annotations

import sys
import threading
import types
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest

from engine import EngineError, Studio, render_error
from engine.models import catalogue, download, loader
from engine.system import oslocks

FILES = {"config.json": 100, "tokenizer.json": 400, "model-00001-of-00002.safetensors": 3000,
         "model-00002-of-00002.safetensors": 2500, "model.safetensors.index.json": 0}
INDEX = '{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}'


class FakeHub:
    """Stands in for huggingface_hub.snapshot_download: a dry run lists FILES (those already in `local_dir` not to
    download), a real run writes the missing ones in 100-byte chunks through `tqdm_class`'s byte bar, the way the
    client does; `stop_after` bytes into a run it fails like a dropped connection."""

    def __init__(self, files: dict[str, int] = FILES, stop_after: int | None = None) -> None:
        self.files, self.stop_after, self.calls = files, stop_after, []

    def __call__(self, repo_id, *, local_dir, dry_run=False, tqdm_class=None, **options):
        self.calls.append({"repo_id": repo_id, "dry_run": dry_run, **options})
        folder = Path(local_dir)
        if dry_run:
            return [SimpleNamespace(filename=name, file_size=size, will_download=not (folder / name).is_file())
                    for name, size in self.files.items()]
        files_bar = tqdm_class(total=len(self.files), desc="Fetching files")  # counts files, not bytes
        byte_bar = tqdm_class(total=0, initial=0, unit="B", unit_scale=True, desc="Downloading")
        written = 0
        for name, size in self.files.items():
            if (folder / name).is_file():
                continue
            for _chunk in range(0, size, 100):
                if self.stop_after is not None and written >= self.stop_after:
                    raise ConnectionError("Connection reset by peer")
                byte_bar.update(min(100, size - _chunk))
                written += min(100, size - _chunk)
            (folder / name).write_text(INDEX if name.endswith("index.json") else "x" * size, encoding="utf-8")
            files_bar.update(1)
        return str(folder)


@pytest.fixture
def studio_cache(tmp_path, monkeypatch):
    """An empty studio cache, the hub reachable and reports not throttled."""
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "studio"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setattr(download, "reachable", lambda url, timeout=3.0: True)
    monkeypatch.setattr(download, "REPORT_EVERY", 0.0)
    return tmp_path


def fake_hub(monkeypatch, hub: FakeHub) -> FakeHub:
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub)
    return hub


def code_of(call) -> EngineError:
    with pytest.raises(EngineError) as raised:
        call()
    return raised.value


def test_a_download_reports_bytes_and_fetches_only_safetensors_and_tokenizer_files(studio_cache, monkeypatch):
    hub = fake_hub(monkeypatch, FakeHub())
    reports = []
    folder = download.download_model("Qwen/Qwen2.5-7B-Instruct", progress=lambda done, total: reports.append(
        (done, total)))
    assert folder == catalogue.download_folder("Qwen/Qwen2.5-7B-Instruct") and catalogue.is_complete(folder)
    assert not list(catalogue.downloads_root().glob(".partial-*"))  # the staging folder became the model
    total = sum(FILES.values())
    assert reports[-1] == (total, total) and len(reports) > 10
    assert [done for done, _total in reports] == sorted(done for done, _total in reports)
    assert {t for _d, t in reports} == {total}
    for call in hub.calls:
        assert call["endpoint"] == "https://huggingface.co"
        assert "*.safetensors" in call["allow_patterns"] and "tokenizer*" in call["allow_patterns"]
        assert not any(p.endswith((".bin", ".pt", ".py")) for p in call["allow_patterns"])
        assert {"*.bin", "*.pt", "*.py"} <= set(call["ignore_patterns"])
    assert [call["dry_run"] for call in hub.calls] == [True, False]


def test_an_interrupted_download_is_not_a_model_and_continues_where_it_stopped(studio_cache, monkeypatch):
    fake_hub(monkeypatch, FakeHub(stop_after=1200))
    error = code_of(lambda: download.download_model("Qwen/Qwen3-8B"))
    assert error.code == "model_download_failed" and error.hint == "hint_download_again"
    assert "Connection reset" in error.params["detail"]
    final = catalogue.download_folder("Qwen/Qwen3-8B")
    assert not final.exists() and "Qwen/Qwen3-8B" not in catalogue.on_disk()  # a half download is no model
    hub = fake_hub(monkeypatch, FakeHub())
    reports = []
    folder = download.download_model("Qwen/Qwen3-8B", progress=lambda done, total: reports.append((done, total)))
    assert folder == final and catalogue.on_disk()["Qwen/Qwen3-8B"] == str(final)
    assert reports[0][0] >= FILES["config.json"] + FILES["tokenizer.json"]  # the files kept count from the start
    assert hub.calls[0]["repo_id"] == "Qwen/Qwen3-8B"


def test_a_model_already_downloaded_needs_no_network(studio_cache, monkeypatch):
    fake_hub(monkeypatch, FakeHub())
    first = download.download_model("Qwen/Qwen3-8B")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: pytest.fail("fetched again"))
    monkeypatch.setattr(download, "reachable", lambda *a, **k: pytest.fail("went online"))
    assert download.download_model(" Qwen/Qwen3-8B ") == first


def test_offline_the_loader_takes_the_pickers_complete_download(studio_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = catalogue.download_folder("Qwen/Qwen3-8B")
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}", encoding="utf-8")
    assert code_of(lambda: loader.resolve_model("Qwen/Qwen3-8B")).code == "model_offline"  # not complete yet
    (folder / "model.safetensors").write_bytes(b"x")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: pytest.fail("asked the hub"))
    assert loader.resolve_model(" Qwen/Qwen3-8B ") == folder


def test_a_rename_another_program_blocks_is_worded(studio_cache, monkeypatch):
    fake_hub(monkeypatch, FakeHub())

    def held(*_args):
        raise PermissionError(13, "Access is denied")

    monkeypatch.setattr(download.os, "replace", held)
    error = code_of(lambda: download.download_model("Qwen/Qwen3-8B"))
    assert error.code == "model_download_failed" and error.hint == "hint_download_again"
    assert "PermissionError" in error.params["detail"] and "Access is denied" in error.params["detail"]
    assert not catalogue.download_folder("Qwen/Qwen3-8B").exists()


def test_a_second_download_of_one_model_waits_for_the_first_and_takes_its_result(studio_cache, monkeypatch):
    hub = fake_hub(monkeypatch, FakeHub())
    monkeypatch.setattr(download, "LOCK_WAIT_S", 0.01)
    final = catalogue.download_folder("Qwen/Qwen3-8B")
    catalogue.downloads_root().mkdir(parents=True)
    first = oslocks.open_lock_file(catalogue.downloads_root() / f".lock-{final.name}")
    assert oslocks.take(first)  # a first download holds the model's lock
    result = {}
    second = threading.Thread(target=lambda: result.update(folder=download.download_model("Qwen/Qwen3-8B")))
    second.start()
    second.join(0.3)
    assert second.is_alive() and not hub.calls and not list(catalogue.downloads_root().glob(".partial-*"))
    final.mkdir()
    (final / "config.json").write_text("{}", encoding="utf-8")
    (final / "model.safetensors").write_bytes(b"x")
    oslocks.close_lock_file(first)  # the first download is done
    second.join(5)
    assert result["folder"] == final and not hub.calls  # nothing fetched twice


def test_a_mirror_gets_its_endpoint_passed_explicitly(studio_cache, monkeypatch):
    hub = fake_hub(monkeypatch, FakeHub())
    download.download_model("Qwen/Qwen3-8B", "mirror", "https://hf-mirror.com/")
    assert {call["endpoint"] for call in hub.calls} == {"https://hf-mirror.com"}
    assert "HF_ENDPOINT" not in download.os.environ  # the environment was left alone
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example.org")
    assert download.source_endpoint("mirror", "") == "https://mirror.example.org"
    assert download.source_endpoint("mirror", "  ") == "https://mirror.example.org"
    monkeypatch.delenv("HF_ENDPOINT")
    assert download.source_endpoint("mirror") == download.DEFAULT_MIRROR


@pytest.mark.parametrize(("source", "endpoint", "code"), [
    ("mirror", "ftp://hf-mirror.com", "model_endpoint_invalid"), ("mirror", "hf-mirror", "model_endpoint_invalid"),
    ("torrent", "", "model_source_unknown")])
def test_a_bad_source_is_named(studio_cache, source, endpoint, code):
    error = code_of(lambda: download.download_model("Qwen/Qwen3-8B", source, endpoint))
    assert error.code == code
    assert error.params.get("endpoint", error.params.get("source")) in render_error(error, "zh")


@pytest.mark.parametrize("name", ["", "Qwen", "../../etc/x", "a/b/c", "/abs/path", "owner/..", "bundled"])
def test_only_hub_ids_are_downloaded(studio_cache, name):
    assert code_of(lambda: download.download_model(name)).code == "model_download_id"


def test_offline_the_message_names_the_local_options(studio_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: pytest.fail("tried the network"))
    hub = code_of(lambda: download.download_model("Qwen/Qwen3-8B"))
    assert (hub.code, hub.hint) == ("model_offline", "hint_local_model")
    assert "bundled model" in render_error(hub, "en") and "内置模型" in render_error(hub, "zh")
    mirror = code_of(lambda: download.download_model("Qwen/Qwen3-8B", "mirror", "https://hf-mirror.com"))
    assert mirror.code == "model_source_unreachable" and "https://hf-mirror.com" in render_error(mirror, "zh")


def test_an_unreachable_source_is_named(studio_cache, monkeypatch):
    monkeypatch.setattr(download, "reachable", lambda url, timeout=3.0: False)
    error = code_of(lambda: download.download_model("Qwen/Qwen3-8B", "mirror", "https://mirror.example.org"))
    assert error.code == "model_source_unreachable" and error.params["endpoint"] == "https://mirror.example.org"


def test_gated_and_unknown_models_and_missing_safetensors_are_worded(studio_cache, monkeypatch):
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    def failing(kind):
        def fetch(*_args, **_kwargs):
            error = kind.__new__(kind)
            Exception.__init__(error, "401 Client Error")
            raise error
        return fetch

    monkeypatch.setattr(huggingface_hub, "snapshot_download", failing(GatedRepoError))
    gated = code_of(lambda: download.download_model("meta-llama/Llama-3.1-8B-Instruct"))
    assert (gated.code, gated.hint) == ("model_gated", "hint_hub_login") and "huggingface-cli login" in \
        render_error(gated, "zh")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", failing(RepositoryNotFoundError))
    assert code_of(lambda: download.download_model("nobody/nothing")).code == "model_not_on_source"
    fake_hub(monkeypatch, FakeHub({"config.json": 10, "pytorch_model.json": 5}))
    error = code_of(lambda: download.download_model("old/pickled-model"))
    assert error.code == "model_no_safetensors" and not catalogue.download_folder("old/pickled-model").exists()


def test_a_download_the_disk_has_no_room_for_is_refused_before_it_starts(studio_cache, monkeypatch):
    hub = fake_hub(monkeypatch, FakeHub())
    monkeypatch.setattr(download.shutil, "disk_usage", lambda _path: SimpleNamespace(free=1000))
    error = code_of(lambda: download.download_model("Qwen/Qwen3-8B"))
    assert error.code == "model_download_no_space" and error.hint == "hint_download_space"
    assert [call["dry_run"] for call in hub.calls] == [True]


def test_modelscope_missing_is_worded_before_going_online(studio_cache, monkeypatch):
    if download.importlib.util.find_spec("modelscope") is not None:
        pytest.skip("modelscope is installed here")
    monkeypatch.setattr(download, "reachable", lambda *a, **k: pytest.fail("went online"))
    error = code_of(lambda: download.download_model("Qwen/Qwen3-8B", "modelscope"))
    assert (error.code, error.hint) == ("modelscope_missing", "hint_install_modelscope")
    assert "pip install modelscope" in render_error(error, "en") and "魔搭" in render_error(error, "zh")


def test_modelscope_downloads_with_its_own_id_and_reports_progress(studio_cache, monkeypatch):
    calls = []

    def snapshot_download(model_id, local_dir, allow_patterns, ignore_patterns, progress_callbacks):
        calls.append((model_id, allow_patterns, ignore_patterns))
        for name, size in {"config.json": 50, "model.safetensors": 800}.items():
            callback = progress_callbacks[0](name, size)
            for _chunk in range(0, size, 100):
                callback.update(min(100, size - _chunk))
            callback.end()
            Path(local_dir, name).write_text("x", encoding="utf-8")
        return local_dir

    monkeypatch.setitem(sys.modules, "modelscope", types.SimpleNamespace(snapshot_download=snapshot_download))
    monkeypatch.setattr(download.importlib.util, "find_spec", lambda name: object())
    reports = []
    folder = download.download_model("meta-llama/Llama-3.1-8B-Instruct", "modelscope",
                                     progress=lambda done, total: reports.append((done, total)))
    assert calls[0][0] == "LLM-Research/Meta-Llama-3.1-8B-Instruct" and "*.safetensors" in calls[0][1]
    assert folder == catalogue.download_folder("meta-llama/Llama-3.1-8B-Instruct") and catalogue.is_complete(folder)
    assert reports[-1] == (850, 850)


def test_the_real_client_offline_gives_the_worded_message(tmp_path, monkeypatch):
    """No fake: the studio's verb with HF_HUB_OFFLINE=1, as on this machine (no network)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "studio"))
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    error = code_of(lambda: studio.download_model("Qwen/Qwen2.5-0.5B-Instruct", "hub"))
    assert error.code == "model_offline"
    assert render_error(error, "en").startswith("The model 'Qwen/Qwen2.5-0.5B-Instruct' must be downloaded")
    assert "内置模型" in render_error(error, "zh")
    assert not list((tmp_path / "studio").rglob("*.safetensors"))


def test_the_silent_bar_works_with_the_hub_clients_own_progress_helpers(monkeypatch):
    """`snapshot_download` drives `tqdm_class` through these helpers (huggingface_hub 2.x); the meter follows the
    largest byte count and ignores the files bar."""
    import importlib

    from huggingface_hub.utils import _xet_progress_reporting as xet

    hub_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")  # the module, not its tqdm class
    monkeypatch.setattr(download, "REPORT_EVERY", 0.0)

    reports = []
    meter = download._Meter(lambda done, total: reports.append((done, total)), total=1000, done=100)
    bar_class = download._bar_class(meter, already=100)
    disk = hub_tqdm._create_progress_bar(cls=bar_class, log_level=20, name="huggingface_hub.snapshot_download",
                                         desc="Reconstructing", total=0, initial=0, unit="B", unit_scale=True,
                                         bar_format=xet.XET_BYTES_BAR_FORMAT)
    transfer = hub_tqdm._create_progress_bar(cls=bar_class, log_level=20, name="transfer", desc="Downloading bytes",
                                             total=0, initial=0, unit="B", unit_scale=True)
    hub_tqdm.hf_thread_map(lambda size: disk.update(size), [200, 300, 400], max_workers=2, tqdm_class=bar_class,
                           desc="Fetching 3 files")
    xet._update_transfer_bar(transfer, 500)
    xet._finish_transfer_bar(transfer)
    xet._set_aggregate_rate_postfix(disk)
    disk.set_description("Reconstruction complete")
    assert reports[-1] == (1000, 1000) and meter.done == 1000
    assert all(total == 1000 for _done, total in reports)
