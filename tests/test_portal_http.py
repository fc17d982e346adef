"""The key security test of the two doors, over real HTTP: a rater holding only an invitation token (no organiser
login) reaches none of the studio's endpoints, by name or by number, at either door; the portal offers exactly its
five endpoints; its file route reads nothing outside its own cache; and it takes no file, no oversized request, and
sends its address (with the token) to no other site as a Referer."""
from __future__ import annotations

import httpx
import pytest
from starlette.routing import Mount

from engine.studio import Studio
from tests.conftest import FakeJob
from ui.login import Login
from ui.portal import API_NAMES

REFUSED = {401, 403, 404, 422}


def door(app, path: str):
    """The gradio Blocks mounted at `path` ("" for the studio at `/`) of the served FastAPI app."""
    return next(route for route in app.routes if isinstance(route, Mount) and route.path == path).app.get_blocks()


@pytest.fixture
def served(tmp_path, serve):
    """An open study with its answers and one invited rater, served behind the organiser's login: (base URL
    without the trailing "/", the FastAPI app, the rater's token, the studio)."""
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    store = studio.studies
    study_id = store.create_study("Parcels", [{"prompt": f"Where is parcel #{i}?"} for i in range(3)], "runs/r1", {})
    for question in store.questions(study_id):
        store.store_answers(question["id"], f"base: {question['prompt']}", f"expert: {question['prompt']}")
    token = studio.invite_rater(study_id, "Dr. Li").token
    url, app = serve(studio, login=Login("organiser", "s3cret"))
    return url.rstrip("/"), app, token, studio


def test_the_raters_token_reaches_no_studio_endpoint_by_name(served):
    base, app, token, _studio = served
    names = sorted({fn.api_name for fn in door(app, "").fns.values() if fn.api_name})
    assert {"start_training", "check_dataset", "set_language"} <= set(names)  # the studio's own, to be refused
    rater = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, params={"invite": token})
    for name in names:
        for route in ("call", "run"):
            answers = [rater.post(f"/gradio_api/{route}/{name}", json={"data": [token]})]
            if name not in API_NAMES:
                answers.append(rater.post(f"/rate/gradio_api/{route}/{name}", json={"data": [token]}))
            for answer in answers:
                assert answer.status_code in REFUSED, (answer.request.url, answer.status_code, answer.text[:200])
                assert "event_id" not in answer.text  # no event was queued


def test_the_raters_token_reaches_no_studio_endpoint_by_number(served):
    base, app, token, _studio = served
    studio_fns, portal_fns = door(app, "").fns, door(app, "/rate").fns
    assert len(studio_fns) > len(portal_fns)
    for index in studio_fns:
        body = {"data": [token], "fn_index": index, "session_hash": f"rater{index}"}
        answer = httpx.post(f"{base}/gradio_api/queue/join", json=body)
        assert answer.status_code == 401, (index, answer.text[:200])
        if index not in portal_fns:  # the portal's own numbers are its five endpoints (next test)
            answer = httpx.post(f"{base}/rate/gradio_api/queue/join", json=body)
            assert answer.status_code == 404, (index, answer.text[:200])
    for index in (-1, len(portal_fns), 10_000):
        body = {"data": [token], "fn_index": index, "session_hash": "rater"}
        assert httpx.post(f"{base}/rate/gradio_api/queue/join", json=body).status_code == 404


def test_the_portal_offers_exactly_its_five_endpoints(served):
    base, app, _token, _studio = served
    named = httpx.get(f"{base}/rate/gradio_api/info").json()
    assert sorted(named["named_endpoints"]) == sorted(f"/{name}" for name in API_NAMES)
    assert not named.get("unnamed_endpoints")
    dependencies = httpx.get(f"{base}/rate/config").json()["dependencies"]
    with_python = sorted(d["api_name"] for d in dependencies if d.get("backend_fn"))
    assert with_python == sorted(API_NAMES)
    assert sorted(fn.api_name for fn in door(app, "/rate").fns.values() if fn.fn is not None) == sorted(API_NAMES)


def test_the_studio_itself_says_nothing_without_the_organisers_login(served):
    base, _app, token, _studio = served
    for path in ("/config", "/gradio_api/info", f"/gradio_api/file={__file__}"):
        assert httpx.get(base + path, params={"invite": token}).status_code == 401
    assert httpx.post(f"{base}/gradio_api/upload", files={"files": ("x.jsonl", b"{}")}).status_code == 401


def test_the_portals_file_route_reads_nothing_outside_its_cache(served, tmp_path):
    base, _app, _token, studio = served
    secret = tmp_path / "runs" / "notes.txt"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("organiser only", encoding="utf-8")
    with httpx.Client(base_url=base) as organiser:
        assert organiser.post("/login", data={"username": "organiser", "password": "s3cret"}).status_code == 200
        uploaded = organiser.post("/gradio_api/upload", files={"files": ("rows.jsonl", b"{}")}).json()[0]
        assert organiser.get(f"/gradio_api/file={uploaded}").status_code == 200  # the organiser's own door reads it
    paths = ["/etc/passwd", "%2Fetc%2Fpasswd", "../../../../../../etc/passwd", str(secret),
             str(studio.data_root / "studies.db"), uploaded, __file__]
    for path in paths:
        answer = httpx.get(f"{base}/rate/gradio_api/file={path}")
        assert answer.status_code in REFUSED and "organiser only" not in answer.text, (path, answer.status_code)


def test_the_raters_page_takes_no_file_nor_an_oversized_request_and_leaks_no_referrer(served):
    base, app, token, _studio = served
    page = httpx.get(f"{base}/rate?invite={token}", follow_redirects=True)
    assert page.status_code == 200 and page.headers["referrer-policy"] == "no-referrer"
    for route in ("upload", "process_recording"):
        answer = httpx.post(f"{base}/rate/gradio_api/{route}", files={"files": ("x.jsonl", b""), "video": ("v", b"")})
        assert answer.status_code == 404 and "/" not in answer.text, (route, answer.text[:200])  # no server path
    vote = next(index for index, fn in door(app, "/rate").fns.items() if fn.api_name == "rate_vote")
    body = {"data": [token, "x" * 300_000], "fn_index": vote, "session_hash": "rater"}
    answer = httpx.post(f"{base}/rate/gradio_api/queue/join", json=body)
    assert answer.status_code == 413 and "event_id" not in answer.text
