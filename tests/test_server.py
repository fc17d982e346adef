"""The one server with two front doors (ui/server.py), served for real over HTTP with two stand-in Blocks: the
portal at /rate and the studio at /, foreign Host headers refused at both, the organiser's login on the studio
only, the upload size limit (no uploads at the portal), the portal's request size limit and its no-referrer policy,
old uploads deleted, and never a share link."""
from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio.utils import get_upload_folder
from gradio_client import Client

from tests.conftest import free_port
from ui import server
from ui.login import Login
from ui.portal import PORTAL_PATH
from ui.server import ServerThread, allowed_hosts, host_of, host_pattern, mount_doors, port_taken

FOREIGN = ("evil.example", "evil.example:7860", "127.0.0.1.evil.example", "localhost.evil.example", "[::2]",
           "localhost:notaport", "localhost/path", "user@localhost")
DOORS = ("/", "/config", "/gradio_api/info", "/gradio_api/upload", "/rate", "/rate/", "/rate/config",
         "/rate/gradio_api/info", "/rate/gradio_api/queue/join", "/gradio_api/queue/join",
         "/gradio_api/file=/etc/passwd")


def stand_in(word: str, api_name: str) -> gr.Blocks:
    """A door with one endpoint answering `word` + its input."""
    with gr.Blocks(title=word) as door:
        text, answer = gr.Textbox(label=f"{word}-input"), gr.Textbox()
        gr.Button(word).click(lambda value: f"{word}:{value}", text, answer, api_name=api_name)
    return door


@pytest.fixture
def doors():
    """A function serving the two stand-in doors (keywords as `mount_doors`); returns the base URL."""
    running = []

    def start(hosts=None, max_file_size: int = 1024, login: Login | None = None) -> str:
        app = mount_doors(stand_in("studio", "echo"), stand_in("portal", "rate_begin"),
                          hosts=hosts or allowed_hosts("127.0.0.1"), max_file_size=max_file_size, login=login)
        port = free_port()
        running.append(ServerThread(app, port).start())
        return f"http://127.0.0.1:{port}"

    yield start
    for thread in running:
        thread.stop()


def test_the_portal_is_served_at_rate_and_the_studio_at_the_root(doors):
    base = doors()
    assert PORTAL_PATH == "/rate"
    assert "portal-input" in httpx.get(f"{base}/rate/config").text
    assert "studio-input" in httpx.get(f"{base}/config").text
    assert Client(f"{base}/rate/", verbose=False).predict("hi", api_name="/rate_begin") == "portal:hi"
    assert Client(f"{base}/", verbose=False).predict("hi", api_name="/echo") == "studio:hi"
    portal_api = httpx.get(f"{base}/rate/gradio_api/info").json()["named_endpoints"]
    studio_api = httpx.get(f"{base}/gradio_api/info").json()["named_endpoints"]
    assert list(portal_api) == ["/rate_begin"] and list(studio_api) == ["/echo"]  # each door holds its own only
    link = httpx.get(f"{base}/rate?invite=abc_123")  # the invitation link's form opens the portal's page
    assert link.status_code == 307 and link.headers["location"] == "/rate/?invite=abc_123"
    page = httpx.get(f"{base}/rate?invite=abc_123", follow_redirects=True)
    assert page.status_code == 200 and str(page.url).endswith("/rate/?invite=abc_123")
    assert httpx.get(f"{base}/docs").status_code == 404 and httpx.get(f"{base}/openapi.json").status_code == 404


def test_a_foreign_host_is_refused_at_both_doors_in_both_languages(doors):
    base = doors()
    for host in FOREIGN:
        for path in DOORS:
            answer = httpx.request("POST" if path.endswith(("join", "upload")) else "GET", base + path,
                                   headers={"Host": host})
            assert answer.status_code == 400, (host, path, answer.status_code)
            assert "does not answer to that address" in answer.text and "本服务器不响应这个地址" in answer.text


def test_this_computer_and_the_named_hosts_pass(doors):
    base = doors(hosts=allowed_hosts("127.0.0.1", ["studio.lan", "*.example.org"]))
    port = base.rsplit(":", 1)[1]
    for host in ("localhost", f"localhost:{port}", "127.0.0.1", f"[::1]:{port}", "STUDIO.lan", "rate.example.org"):
        for path in ("/config", "/rate/config", "/gradio_api/info", "/rate/gradio_api/info"):
            assert httpx.get(base + path, headers={"Host": host}).status_code == 200, (host, path)
    assert httpx.get(f"{base}/config", headers={"Host": "example.org.evil"}).status_code == 400


def test_the_allow_list_holds_the_bound_address_or_all_of_this_machine():
    assert allowed_hosts("127.0.0.1") == sorted(["localhost", "127.0.0.1", "[::1]"])
    assert set(allowed_hosts("10.1.2.3", ["Studio.LAN"])) == {"localhost", "127.0.0.1", "[::1]", "10.1.2.3",
                                                               "studio.lan"}
    assert "[fe80::1]" in allowed_hosts("fe80::1%eth0")
    everywhere = allowed_hosts("0.0.0.0")
    assert socket.gethostname().lower() in everywhere and "0.0.0.0" not in everywhere
    assert "raters.example.com" in allowed_hosts("0.0.0.0", public_url="https://raters.example.com:8443")
    assert host_of("[::1]:7860") == "[::1]" and host_of("Example.COM:80") == "example.com"
    assert host_of(None) is None and host_of("") is None and host_of("a b") is None


@pytest.mark.parametrize("name", ["", "  ", "studio.lan:7860", "http://studio.lan", "studio.lan/x", "*", "a*b.org",
                                  "*.*.org", "user@studio.lan"])
def test_a_named_host_no_browser_could_send_is_refused_by_name(name):
    with pytest.raises(ValueError) as caught:
        host_pattern(name)
    assert caught.value.args == ("cli_allowed_host", {"name": name})


def test_the_organiser_login_guards_the_studio_and_not_the_portal(doors):
    base = doors(login=Login("organiser", "s3cret"))
    for path in ("/config", "/gradio_api/info"):
        assert httpx.get(base + path).status_code == 401
    joined = httpx.post(f"{base}/gradio_api/queue/join", json={"data": ["x"], "fn_index": 0, "session_hash": "s1"})
    assert joined.status_code == 401
    assert httpx.get(f"{base}/rate/config").status_code == 200  # the invitation is the rater's identity
    with httpx.Client(base_url=base) as organiser:
        assert organiser.post("/login", data={"username": "organiser", "password": "s3cret"}).status_code == 200
        assert organiser.get("/config").status_code == 200 and organiser.get("/gradio_api/info").status_code == 200


def _upload(base: str, size: int, client: httpx.Client | None = None) -> httpx.Response:
    return (client or httpx).post(f"{base}/gradio_api/upload", files={"files": ("rows.jsonl", b"x" * size)})


def test_an_upload_over_the_limit_is_refused_and_the_portal_takes_none(doors):
    base = doors(max_file_size=1024)
    refused = _upload(base, 2048)
    assert refused.status_code == 413 and "maximum allowed size of 1024 bytes" in refused.text
    taken = _upload(base, 1000)
    assert taken.status_code == 200 and Path(taken.json()[0]).read_bytes() == b"x" * 1000
    assert _upload(f"{base}/rate", 1).status_code == 404  # the portal's file routes are not found


def test_the_portal_takes_no_file_not_even_an_empty_one(doors):
    base = doors()
    for route in ("upload", "process_recording"):
        name = f"empty-{uuid.uuid4().hex}.jsonl"
        answer = httpx.post(f"{base}/rate/gradio_api/{route}", files={"files": (name, b""), "video": (name, b"")})
        assert answer.status_code == 404 and answer.text == "Not Found", (route, answer.status_code, answer.text)
        assert not list(Path(get_upload_folder()).rglob(name))  # no file was written
    assert _upload(base, 0).status_code == 200  # the studio's own upload route is untouched


def _join(size: int) -> dict:
    """A queue/join body for the stand-ins' first endpoint carrying `size` characters."""
    return {"data": ["x" * size], "fn_index": 0, "session_hash": "s1"}


def test_a_portal_request_over_the_limit_is_refused_however_it_is_sent(doors):
    base = doors()
    big = json.dumps(_join(server.PORTAL_BODY_LIMIT)).encode()
    declared = httpx.post(f"{base}/rate/gradio_api/queue/join", content=big,
                          headers={"Content-Type": "application/json"})
    streamed = httpx.post(f"{base}/rate/gradio_api/queue/join", headers={"Content-Type": "application/json"},
                          content=(big[start:start + 4096] for start in range(0, len(big), 4096)))
    for answer in (declared, streamed):
        assert answer.status_code == 413 and "event_id" not in answer.text
        assert "larger than the raters' page accepts (at most 256 KB)" in answer.text
        assert "超出了评审页面接受的大小" in answer.text
    assert "content-length" not in streamed.request.headers  # it was sent in chunks, its size undeclared
    near = _join(server.PORTAL_BODY_LIMIT - 1024)
    assert httpx.post(f"{base}/rate/gradio_api/queue/join", json=near).status_code == 200
    assert httpx.post(f"{base}/gradio_api/queue/join", json=_join(2 * server.PORTAL_BODY_LIMIT)).status_code \
        == 200  # the studio's own requests are not limited so
    assert Client(f"{base}/rate/", verbose=False).predict("y" * 100_000, api_name="/rate_begin") == "portal:" + \
        "y" * 100_000


def test_the_portals_answers_tell_browsers_to_send_no_referrer(doors):
    base = doors()
    answers = [httpx.get(f"{base}/rate?invite=abc"), httpx.get(f"{base}/rate/?invite=abc"),
               httpx.get(f"{base}/rate/config"), httpx.get(f"{base}/rate/gradio_api/info"),
               httpx.post(f"{base}/rate/gradio_api/upload", files={"files": ("x", b"x")}),
               httpx.post(f"{base}/rate/gradio_api/queue/join", content=b"x" * (server.PORTAL_BODY_LIMIT + 1))]
    assert [answer.status_code for answer in answers] == [307, 200, 200, 200, 404, 413]
    for answer in answers:
        assert answer.headers.get_list("referrer-policy") == ["no-referrer"], answer.request.url
    assert "referrer-policy" not in httpx.get(f"{base}/config").headers  # the studio's pages hold no token


def test_old_uploads_are_deleted_by_the_mounted_doors(doors, monkeypatch):
    monkeypatch.setattr(server, "UPLOAD_CLEANUP", (1, 1))  # every second, files over a second old
    base = doors()
    uploaded = Path(_upload(base, 10).json()[0])
    deadline = time.monotonic() + 20
    while uploaded.exists() and time.monotonic() < deadline:
        time.sleep(0.25)
    assert not uploaded.exists()


def test_the_portal_cannot_serve_the_studios_uploads(doors):
    base = doors()
    uploaded = _upload(base, 10).json()[0]
    assert httpx.get(f"{base}/gradio_api/file={uploaded}").status_code == 200
    assert httpx.get(f"{base}/rate/gradio_api/file={uploaded}").status_code == 403


def test_gradio_share_in_the_environment_opens_no_tunnel(doors, monkeypatch):
    tunnels = []
    monkeypatch.setenv("GRADIO_SHARE", "true")
    monkeypatch.setattr(gr.networking, "setup_tunnel", lambda *args, **kwargs: tunnels.append(args) or "x")
    base = doors()
    assert httpx.get(f"{base}/config").status_code == 200 and httpx.get(f"{base}/rate/config").status_code == 200
    assert Client(f"{base}/rate/", verbose=False).predict("hi", api_name="/rate_begin") == "portal:hi"
    assert tunnels == []


def test_stopping_ends_the_open_streams_at_once():
    thread = ServerThread(mount_doors(stand_in("s", "echo"), stand_in("p", "rate_begin"), hosts=["127.0.0.1"],
                                      max_file_size=1), free_port()).start()
    base = f"http://127.0.0.1:{thread.server.config.port}"
    stream = threading.Thread(target=lambda: httpx.get(f"{base}/rate/gradio_api/heartbeat/tab1", timeout=60),
                              daemon=True)
    stream.start()
    time.sleep(1)  # a browser tab's heartbeat stream is open
    started = time.monotonic()
    thread.stop()
    assert not thread.thread.is_alive() and time.monotonic() - started < server.GRACEFUL_SECONDS / 2
    stream.join(timeout=5)
    assert not stream.is_alive()


def test_a_taken_port_is_known_before_serving_and_a_stopped_server_lets_go(doors):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert port_taken("127.0.0.1", listener.getsockname()[1])
    base = doors()
    port = int(base.rsplit(":", 1)[1])
    assert port_taken("127.0.0.1", port)
    thread = ServerThread(mount_doors(stand_in("s", "echo"), stand_in("p", "rate_begin"), hosts=["127.0.0.1"],
                                      max_file_size=1), free_port()).start()
    thread.stop()
    assert not thread.thread.is_alive() and not port_taken("127.0.0.1", thread.server.config.port)


def test_the_studio_page_carries_its_layout_fixes(serve, tmp_path):
    from engine.studio import Studio
    from tests.conftest import FakeJob

    url, _app = serve(Studio(tmp_path / "runs", job_factory=FakeJob))
    config = httpx.get(url + "config", timeout=30).json()
    assert "[id^=\"field-\"]:has(input[type=\"checkbox\"])" in config["css"]  # a checkbox field keeps its width
    issues = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "dataset-issues")
    assert issues["props"]["column_widths"] == ["12%", "8%", "16%", "64%"]
