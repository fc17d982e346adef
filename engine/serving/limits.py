"""Request bodies of a bounded size for the studio's servers (the OpenAI-compatible API here; the rater portal and
the demo page in `ui/server.py`): read whole before the app sees any of it, refused once over the limit."""
from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope


async def read_limited(scope: Scope, receive: Receive, limit: int) -> list[Message] | None:
    """The request's messages until its body ends or the client leaves; None as soon as the body is (or is declared
    to be) over `limit` bytes."""
    declared = Headers(scope=scope).get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    messages, size = [], 0
    while not messages or (messages[-1]["type"] == "http.request" and messages[-1].get("more_body", False)):
        messages.append(await receive())
        size += len(messages[-1].get("body", b""))
        if size > limit:
            return None
    return messages


def replaying(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` giving the already received `messages` first, then what `receive` gives (a client leaving)."""
    pending = list(messages)

    async def receiving() -> Message:
        """The next message of the request."""
        return pending.pop(0) if pending else await receive()

    return receiving
