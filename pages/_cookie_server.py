"""The HttpOnly session cookie, set by the server (two HTTP routes of the ``st.App`` at the end of dashboard.py).

A Streamlit script talks to the browser over a WebSocket and cannot add a ``Set-Cookie`` header to any
response. ``streamlit run dashboard.py`` therefore starts the dashboard as an ``st.App`` (Streamlit's ASGI app) with
two small routes, and the handover goes like this:

1. After a password sign-in the script asks ``handoff`` for a one-time code (random, valid
   ``HANDOFF_SECONDS``, used once) for the session's token, and the page posts the code to
   ``PATH``.
2. The route redeems the code and answers with ``Set-Cookie: …; HttpOnly; SameSite=Strict`` (and
   ``Secure`` under HTTPS). The token itself never reaches the page's JavaScript.
3. After a sign-out the page posts to ``PATH + "/end"``, which answers with an expired cookie (the
   session record is already revoked in the store; this only tidies the browser).

Both routes require the header ``X-Dashboard-Session: 1``: a cross-site form cannot send it, and a
cross-site ``fetch`` with it needs a CORS preflight that is never granted.

The codes live in this process's memory: the page that posts a code is served by the same server
(sticky sessions, see docs/deploy.md). When the dashboard runs without these routes (AppTest),
``installed`` stays False and pages/_browser.py falls back to a cookie written by JavaScript
(SameSite=Strict, Secure under HTTPS, not HttpOnly).
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

COOKIE = "gov_dashboard_session"
PATH = "/_dashboard/session"
HEADER = "X-Dashboard-Session"
HANDOFF_SECONDS = 60.0
MAX_PENDING = 10_000  # codes waiting at once; older ones are dropped first

installed = False  # set by dashboard.py's st.App when the routes are part of the running server

_pending: dict[str, tuple[str, int, bool, float]] = {}
_lock = threading.Lock()


def handoff(token: str, max_age: int, secure: bool, now: float | None = None) -> str:
    """A one-time code that ``redeem`` turns into (token, max_age, secure) within ``HANDOFF_SECONDS``."""
    now = time.monotonic() if now is None else now
    code = secrets.token_urlsafe(24)
    with _lock:
        for stale in [c for c, item in _pending.items() if item[3] <= now]:
            del _pending[stale]
        while len(_pending) >= MAX_PENDING:
            del _pending[next(iter(_pending))]
        _pending[code] = (token, int(max_age), bool(secure), now + HANDOFF_SECONDS)
    return code


def redeem(code: str, now: float | None = None) -> tuple[str, int, bool] | None:
    """The cookie a code stands for, once; None for an unknown, used or expired code."""
    now = time.monotonic() if now is None else now
    with _lock:
        item = _pending.pop(code, None)
    if item is None or item[3] <= now:
        return None
    return item[0], item[1], item[2]


def set_cookie_header(token: str, max_age: int, secure: bool) -> str:
    return (f"{COOKIE}={token}; Path=/; Max-Age={max(0, int(max_age))}; HttpOnly; SameSite=Strict"
            + ("; Secure" if secure else ""))


def _https(request: Any) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


async def _set(request: Any) -> Any:
    from starlette.responses import Response

    if request.headers.get(HEADER) != "1":
        return Response(status_code=403)
    code = (await request.body())[:100].decode("ascii", "replace").strip()
    cookie = redeem(code)
    if cookie is None:
        return Response(status_code=403)
    token, max_age, secure = cookie
    response = Response(status_code=204)
    response.headers["Set-Cookie"] = set_cookie_header(token, max_age, secure or _https(request))
    response.headers["Cache-Control"] = "no-store"
    return response


async def _end(request: Any) -> Any:
    from starlette.responses import Response

    if request.headers.get(HEADER) != "1":
        return Response(status_code=403)
    response = Response(status_code=204)
    response.headers["Set-Cookie"] = set_cookie_header("", 0, _https(request))
    response.headers["Cache-Control"] = "no-store"
    return response


def routes(base_path: str = "") -> list[Any]:
    """The two routes for ``st.App(..., routes=…)`` (``base_path``: Streamlit's server.baseUrlPath)."""
    from starlette.routing import Route

    prefix = "/" + base_path.strip("/") if base_path.strip("/") else ""
    return [Route(prefix + PATH, _set, methods=["POST"]), Route(prefix + PATH + "/end", _end, methods=["POST"])]
