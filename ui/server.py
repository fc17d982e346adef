"""One web server, two front doors: the organiser's studio at `/` (behind the organiser's login when one is given)
and the rater portal at `PORTAL_PATH` (the invitation is the identity), refusing requests whose Host header names
a foreign site, limiting uploads (none at the portal) and the size of the portal's requests, keeping the portal's
address out of Referer headers, deleting old uploads, and never opening a share link (gradio opens one only from
`Blocks.launch`, which is never called here).
"""
from __future__ import annotations

import errno
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable

import fastapi
import gradio as gr
import uvicorn
from gradio.route_utils import API_PREFIX, FnIndexInferError
from gradio.utils import get_cache_folder, get_upload_folder
from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine import LANGS, Studio, read_limited, replaying
from ui import build_app
from ui.i18n import t
from ui.login import Login
from ui.portal import ASSETS, PORTAL_PATH, build_portal

MB = 1024 * 1024
UPLOAD_CLEANUP = (3600, 86400)  # gradio's delete_cache (every, older than) in seconds: hourly, uploads over a day old
STUDIO_CONCURRENCY = 1  # one organiser request at a time, as the studio always ran
STUDIO_CSS = ASSETS / "studio.css"  # the studio page's layout fixes
PORTAL_CONCURRENCY = 8  # raters voting at once: each vote is one short database write
PORTAL_UPLOAD_LIMIT = 0  # bytes: the portal takes no files, so any upload to it is refused
PORTAL_FILE_ROUTES = ("upload", "process_recording")  # gradio's routes taking files: not found at the portal
PORTAL_BODY_LIMIT = 256 * 1024  # bytes: the most a portal request carries (a vote with its comment is far less)
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
ANY_ADDRESS = ("0.0.0.0", "::", "[::]", "")
HOST_FORM = re.compile(r"[a-z0-9_.-]+|\[[0-9a-f:.]+\]")  # a name, an IPv4 or a bracketed IPv6 address
GRACEFUL_SECONDS = 10  # on Ctrl-C or SIGTERM, requests under way get this long to finish


def host_name(name: str) -> str:
    """`name` as a Host header carries it: lower case, an IPv6 address in brackets, without a zone (`%eth0`)."""
    name = name.strip().lower()
    if ":" in name and not name.startswith("["):
        return f"[{name.split('%', 1)[0]}]"
    return name


def host_pattern(name: str) -> str:
    """A name given with `--allowed-host` (`studio.lan`, `10.0.0.5`, `*.example.org`) as an allow-list entry.
    Raises ValueError((message code, params)) for one that no Host header could match (empty, a port, a path)."""
    pattern = host_name(name)
    bare = pattern.removeprefix("*.")
    if not bare or "*" in bare or host_of(bare) != bare:
        raise ValueError("cli_allowed_host", {"name": name})
    return pattern


def host_of(header: str | None) -> str | None:
    """The host a Host header names (`host_name` form, the port left out); None when it is missing or malformed."""
    if not header or "@" in header:
        return None
    try:
        parts = urllib.parse.urlsplit(f"//{header}")
        parts.port  # noqa: B018 -- reading it checks that a port, when given, is a number
    except ValueError:
        return None
    if not parts.hostname or parts.netloc != header:
        return None
    host = host_name(parts.hostname)
    return host if HOST_FORM.fullmatch(host) else None


def own_addresses() -> set[str]:
    """This machine's name and addresses, as the local resolver and routing table know them (nothing is sent)."""
    name = socket.gethostname()
    found = {name}
    try:
        found.update(str(info[4][0]) for info in socket.getaddrinfo(name, None))
    except OSError:  # a name the resolver does not know: its addresses come from the routes below
        pass
    for family, probe in ((socket.AF_INET, ("192.0.2.1", 9)), (socket.AF_INET6, ("2001:db8::1", 9))):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect(probe)  # a datagram socket's connect only picks the route: no packet leaves
                found.add(sock.getsockname()[0])
        except OSError:  # no route of that family
            continue
    return {host_name(address) for address in found}


def allowed_hosts(bound: str, extra: Iterable[str] = (), public_url: str | None = None) -> list[str]:
    """The hosts a request may name: this computer's loopback names, the address served on (every name and address
    of this machine when that is all of them), the host of `public_url` and the `extra` names (`host_pattern`s)."""
    hosts = {*LOOPBACK_HOSTS, *(host_pattern(name) for name in extra)}
    hosts |= own_addresses() if bound.strip() in ANY_ADDRESS else {host_name(bound)}
    if public_url and urllib.parse.urlsplit(public_url).hostname:
        hosts.add(host_name(urllib.parse.urlsplit(public_url).hostname))
    return sorted(hosts)


def in_every_language(key: str, **params: object) -> str:
    """The UI message `key` in every language, one a line: a plain answer's reader's language is unknown."""
    return "\n".join(t(key, lang, **params) for lang in LANGS)


def host_refusal() -> str:
    """What a request naming a foreign host is answered, in every language (the browser's language is unknown)."""
    return in_every_language("serving_host_refused")


class HostAllowList(TrustedHostMiddleware):
    """Starlette's Host allow-list (same patterns: exact names and `*.domain`), answering a foreign or missing
    Host with a worded 400 in every language, and matching IPv6 hosts with or without a port."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a request naming an allowed host on; refuse any other."""
        if scope["type"] in ("http", "websocket") and not self.allows(Headers(scope=scope).get("host")):
            await PlainTextResponse(host_refusal(), status_code=400)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def allows(self, header: str | None) -> bool:
        """Whether the Host header `header` names an allowed host."""
        host = host_of(header)
        return self.allow_any or (host is not None and any(
            host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:]))
            for pattern in self.allowed_hosts))


def under_portal(path: str) -> bool:
    """Whether the request path `path` is the portal's (PORTAL_PATH or below it)."""
    return path == PORTAL_PATH or path.startswith(f"{PORTAL_PATH}/")


def without_referrer(send: Send) -> Send:
    """`send` adding `Referrer-Policy: no-referrer` to the response: the portal's address holds the rater's token,
    which links and images in the model-written answers would otherwise pass on to other sites."""

    async def sending(message: Message) -> None:
        """Send `message`, the response's headers with the policy added."""
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"referrer-policy", b"no-referrer")]}
        await send(message)

    return sending


class PortalGuard:
    """ASGI middleware for the portal's paths (those `guarded` says; the demo page guards all of its own): refuses
    a request body over `limit` bytes (by its Content-Length or as it arrives) with a worded 413 before the page
    reads any of it, and tells browsers to send no Referer from the guarded pages."""

    def __init__(self, app: ASGIApp, limit: int = PORTAL_BODY_LIMIT,
                 guarded: Callable[[str], bool] = under_portal) -> None:
        self.app, self.limit, self.guarded = app, limit, guarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a guarded request of an allowed size on with its body; refuse a larger one; pass any other on."""
        if scope["type"] != "http" or not self.guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        send = without_referrer(send)
        messages = await read_limited(scope, receive, self.limit)
        if messages is None:
            refusal = in_every_language("serving_request_too_large", max=self.limit // 1024)
            await PlainTextResponse(refusal, status_code=413)(scope, receive, send)
            return
        await self.app(scope, replaying(messages, receive), send)


def not_found() -> PlainTextResponse:
    """A plain 404."""
    return PlainTextResponse("Not Found", status_code=404)


def no_docs() -> dict:
    """FastAPI's options for no pages of its own (/docs, /redoc, /openapi.json): a new dict each time, as gradio
    adds its lifespan to the one it is given."""
    return {"docs_url": None, "redoc_url": None, "openapi_url": None}


def no_such_endpoint(request: fastapi.Request, error: Exception) -> PlainTextResponse:
    """The portal's answer to an api name or event number it does not have: a plain 404 (gradio would fail with
    a 500 and a traceback in the log). Any other KeyError stays the error it is."""
    if isinstance(error, KeyError) and not request.url.path.endswith("/queue/join"):
        raise error
    return not_found()


def without_file_routes(app: fastapi.FastAPI, path: str = "") -> None:
    """Answer gradio's routes taking files under `path` (a door's mount path) with a 404 (routes added before the
    door's mount answer first; gradio's size check lets an empty file through)."""
    for route in PORTAL_FILE_ROUTES:
        app.add_api_route(f"{path}{API_PREFIX}/{route}", not_found, methods=["POST"], include_in_schema=False)


def upload_folders() -> list[str]:
    """gradio's upload and cache folders, which a door that takes no files serves nothing from (`blocked_paths`)."""
    return [get_upload_folder(), str(get_cache_folder().resolve())]


def mount_doors(studio_door: gr.Blocks, portal_door: gr.Blocks, *, hosts: list[str], max_file_size: int,
                login: Login | None = None) -> fastapi.FastAPI:
    """A FastAPI app serving `portal_door` at PORTAL_PATH and `studio_door` at `/` (behind `login` when given),
    for the `hosts` only, taking uploads up to `max_file_size` bytes on the studio and none on the portal (its file
    routes are not found, as gradio's size check lets an empty file through), and portal requests up to
    PORTAL_BODY_LIMIT bytes."""
    app = fastapi.FastAPI(**no_docs())
    app.add_middleware(PortalGuard)
    app.add_middleware(HostAllowList, allowed_hosts=hosts)  # added last, it runs first
    without_file_routes(app, PORTAL_PATH)

    @app.get(PORTAL_PATH, include_in_schema=False)
    def portal_root(request: fastapi.Request) -> RedirectResponse:
        """The invitation link `/rate?invite=...` opens the portal's page (`/rate/`), keeping the query."""
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{PORTAL_PATH}/{query}", status_code=307)

    for door in (studio_door, portal_door):
        door.delete_cache = UPLOAD_CLEANUP  # read when mounted: gradio then deletes the door's old uploads hourly
    # the portal first: the studio at `/` would otherwise answer the portal's paths too
    gr.mount_gradio_app(app, portal_door.queue(default_concurrency_limit=PORTAL_CONCURRENCY), PORTAL_PATH,
                        max_file_size=PORTAL_UPLOAD_LIMIT, footer_links=[], run_history=False,
                        blocked_paths=upload_folders(),
                        app_kwargs={**no_docs(), "exception_handlers": {FnIndexInferError: no_such_endpoint,
                                                                      KeyError: no_such_endpoint}})
    gr.mount_gradio_app(app, studio_door.queue(default_concurrency_limit=STUDIO_CONCURRENCY), "/", auth=login,
                        max_file_size=max_file_size, app_kwargs=no_docs(), css_paths=[STUDIO_CSS])
    return app


def build_server(studio: Studio, lang: str = "en", *, login: Login | None = None, host: str = "127.0.0.1",
                 extra_hosts: Iterable[str] = (), max_file_size: int = 200 * MB,
                 public_url: str | None = None) -> fastapi.FastAPI:
    """The studio and its rater portal for `studio`, in `lang`, served on `host`: see `mount_doors`; `public_url`
    is the address invitation links start with (by default the one the organiser's browser used)."""
    return mount_doors(build_app(studio, lang=lang, public_url=public_url), build_portal(studio, lang),
                       hosts=allowed_hosts(host, extra_hosts, public_url), max_file_size=max_file_size, login=login)


def port_taken(host: str, port: int) -> bool:
    """Whether another program already listens on `host`:`port` (checked the way uvicorn will bind it)."""
    try:
        found = socket.getaddrinfo(host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _name, address = found[0]
    except OSError:  # a host that does not resolve: uvicorn says so itself
        return False
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


class DoorServer(uvicorn.Server):
    """uvicorn's server that, once asked to stop (Ctrl-C, SIGTERM, `should_exit`), also ends the doors' open
    streams (each browser tab's heartbeat), which would otherwise hold the stop for GRACEFUL_SECONDS."""

    async def on_tick(self, counter: int) -> bool:
        """uvicorn's tick; when stopping, tell every mounted gradio app to close its streams."""
        stopping = await super().on_tick(counter)
        if stopping:
            for route in self.config.app.routes:
                stop_event = getattr(getattr(route, "app", None), "stop_event", None)
                if stop_event is not None:
                    stop_event.set()
        return stopping


def quiet_config(app: fastapi.FastAPI, host: str, port: int) -> uvicorn.Config:
    """uvicorn's settings for `app` on `host`:`port`: warnings and errors only, GRACEFUL_SECONDS to finish."""
    return uvicorn.Config(app, host=host.strip("[]"), port=port, log_level="warning",
                          timeout_graceful_shutdown=GRACEFUL_SECONDS)


def serve(app: fastapi.FastAPI, host: str, port: int) -> None:
    """Serve `app` on `host`:`port` until Ctrl-C or SIGTERM; requests under way get GRACEFUL_SECONDS to finish."""
    try:
        DoorServer(quiet_config(app, host, port)).run()
    except KeyboardInterrupt:  # uvicorn raises Ctrl-C again once it has stopped: stopping was what was asked
        pass


class ServerThread:
    """`app` served by uvicorn in a background thread (for tests): `start` returns once it answers, `stop` ends it."""

    def __init__(self, app: fastapi.FastAPI, port: int, host: str = "127.0.0.1") -> None:
        self.server = DoorServer(quiet_config(app, host, port))
        self.thread = threading.Thread(target=self.server.run, name=f"server-{port}", daemon=True)

    def start(self, timeout: float = 60.0) -> ServerThread:
        """Start serving and wait until the server listens; RuntimeError when it stopped or took too long."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on port {self.server.config.port} did not start")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the server to finish (as Ctrl-C would) and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(timeout)
