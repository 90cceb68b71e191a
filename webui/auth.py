"""Login and logout: one password (a werkzeug hash in webui.password_hash), a name for the history.

Without a password hash every page is open (the UI then should listen on localhost only). With
one, every page and API call needs a session; the API answers 401 instead of redirecting.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
from collections import deque
from datetime import timedelta
from urllib.parse import urlsplit

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
    """A session of the current password that was not logged out."""
    if not isinstance(session.get("user"), str):
        return False
    ctx = ui()
    if not ctx.login_required:
        return True
    if session.get("pw") != _password_tag(ctx.config.webui.password_hash or ""):
        return False
    sid = session.get("sid")
    return isinstance(sid, str) and not revoked.contains(sid)


class RevokedSessions:
    """Session ids ended by a logout, until their cookie would have expired anyway.

    Kept in memory and in the store's key-value table, so a logout also holds after a restart.
    """

    KEY = "webui.revoked_sessions"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded_from: object = None
        self._ids: dict[str, float] = {}

    def _load(self) -> None:
        store = ui().store
        if self._loaded_from is store:
            return
        self._ids = {}
        raw = store.kv_get(self.KEY)
        if raw:
            try:
                self._ids = {str(k): float(v) for k, v in json.loads(raw).items()}
            except (ValueError, TypeError, AttributeError):
                log.warning("the list of logged-out sessions is unreadable; starting afresh")
        self._loaded_from = store

    def contains(self, sid: str) -> bool:
        with self._lock:
            self._load()
            return sid in self._ids

    def add(self, sid: str, until_epoch: float) -> None:
        now = clock.now().timestamp()
        with self._lock:
            self._load()
            self._ids = {k: v for k, v in self._ids.items() if v > now}
            self._ids[sid] = until_epoch
            ui().store.kv_put(self.KEY, json.dumps(self._ids), clock.now())


revoked = RevokedSessions()


def require_login() -> ResponseReturnValue | None:
    """before_request: with a password set, only a logged-in session gets past."""
    if not ui().login_required or request.endpoint in PUBLIC_ENDPOINTS or logged_in():
        return None
    if request.path.startswith("/api/"):
        return jsonify(error="login required: log in at /login first"), 401
    target = request.full_path if request.method == "GET" else "/"
    return redirect(url_for("auth.login", next=target.rstrip("?")))


def _safe_next(raw: str | None) -> str:
    """Only a path on this site; anything else (//host, http://..., control characters that a
    browser drops, such as "/\t/evil.example") goes to the status page."""
    home = url_for("status.index")
    if not raw or any(ord(c) < 33 or ord(c) == 127 for c in raw) or "\\" in raw:
        return home
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or not raw.startswith("/") or raw.startswith("//"):
        return home
    return raw


def _password_tag(hash_: str) -> str:
    """A short fingerprint of the password hash: a session made before a change is void."""
    return hashlib.sha256(hash_.encode()).hexdigest()[:16]


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
    session["sid"] = secrets.token_urlsafe(16)
    session["pw"] = _password_tag(hash_)
    log.info("web UI login by %s from %s", name, client)
    return redirect(nxt)


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    name = session.get("user")
    sid = session.get("sid")
    if isinstance(sid, str):
        # A copy of the cookie must not outlive the logout.
        until = clock.now() + timedelta(days=ui().config.webui.session_days)
        revoked.add(sid, until.timestamp())
    session.clear()
    if name:
        session["last_name"] = name
        log.info("web UI logout by %s", name)
    flash("Logged out.")
    if ui().login_required:
        return redirect(url_for("auth.login"))
    return redirect(url_for("status.index"))
