"""Login and logout: one password (a werkzeug hash in webui.password_hash), a name for the history.

Without a password hash every page is open (the UI then should listen on localhost only). With
one, every page and API call needs a session; the API answers 401 instead of redirecting.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from flask import (
    Blueprint,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.security import check_password_hash

from emsctl import clock
from webui.context import ui

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

#: Endpoints reachable without a login.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "api.session_info", "static"})
#: Failed logins allowed within WINDOW_S before further attempts are refused for a while.
MAX_FAILURES = 5
WINDOW_S = 300.0
NAME_MAX = 32
#: Who changes an override when nobody is logged in (no password set).
ANONYMOUS = "ui"


class LoginThrottle:
    """Counts failed logins per client address; refuses after MAX_FAILURES in WINDOW_S."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        q = self._failures.setdefault(client, deque())
        while q and now - q[0] > WINDOW_S:
            q.popleft()
        return q

    def wait_s(self, client: str) -> float:
        """Seconds until this client may try again (0: now)."""
        now = clock.monotonic()
        with self._lock:
            q = self._recent(client, now)
            if len(q) < MAX_FAILURES:
                return 0.0
            return max(0.0, WINDOW_S - (now - q[0]))

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client, clock.monotonic()).append(clock.monotonic())

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


throttle = LoginThrottle()


def current_user() -> str:
    """The name the history records for this request's actions."""
    user = session.get("user")
    return user if isinstance(user, str) and user else ANONYMOUS


def logged_in() -> bool:
    return isinstance(session.get("user"), str)


def require_login() -> ResponseReturnValue | None:
    """before_request: with a password set, only a logged-in session gets past."""
    if not ui().login_required or request.endpoint in PUBLIC_ENDPOINTS or logged_in():
        return None
    if request.path.startswith("/api/"):
        return jsonify(error="login required: log in at /login first"), 401
    target = request.full_path if request.method == "GET" else "/"
    return redirect(url_for("auth.login", next=target.rstrip("?")))


def _safe_next(raw: str | None) -> str:
    """Only a path on this site; anything else (//host, http://...) goes to the status page."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return url_for("status.index")
    return raw


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    ctx = ui()
    nxt = _safe_next(request.values.get("next"))
    if not ctx.login_required:
        return redirect(nxt)
    if request.method == "GET":
        return render_template("login.html", next=nxt, name=session.get("last_name", ""))
    client = request.remote_addr or "?"
    wait = throttle.wait_s(client)
    if wait > 0:
        msg = f"Too many failed attempts. Try again in {int(wait) + 1} s."
        return render_template("login.html", next=nxt, error=msg, name=""), 429
    name = (request.form.get("name") or "").strip()[:NAME_MAX] or "owner"
    password = request.form.get("password") or ""
    hash_ = ctx.config.webui.password_hash or ""
    if not password or not check_password_hash(hash_, password):
        throttle.failed(client)
        log.warning("failed web UI login from %s", client)
        return render_template("login.html", next=nxt, error="Wrong password.", name=name), 401
    throttle.succeeded(client)
    # A fresh session on login: nothing from before (CSRF token included) carries over.
    session.clear()
    session.permanent = True
    session["user"] = name
    session["last_name"] = name
    log.info("web UI login by %s from %s", name, client)
    return redirect(nxt)


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    name = session.get("user")
    session.clear()
    if name:
        session["last_name"] = name
        log.info("web UI logout by %s", name)
    flash("Logged out.")
    if ui().login_required:
        return redirect(url_for("auth.login"))
    return redirect(url_for("status.index"))
