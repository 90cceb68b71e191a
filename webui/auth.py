"""Login and logout: one password (a werkzeug hash in webui.password_hash), a name for the history.

Without a password hash every page is open (the UI then should listen on localhost only). With
one, every page and API call needs a session; the API answers 401 instead of redirecting.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import secrets
import threading
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.security import check_password_hash

from emsctl import clock
from webui.context import ui

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

#: Endpoints reachable without a login.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "api.session_info", "static"})
NAME_MAX = 32
#: Who changes an override when nobody is logged in (no password set).
ANONYMOUS = "ui"

#: Wrong passwords a client may enter before it has to wait; each further one doubles the
#: wait, from BASE_DELAY_S up to MAX_DELAY_S. A client's count is forgotten FORGET_S after its
#: last failure.
MAX_FAILURES = 5
BASE_DELAY_S = 30.0
MAX_DELAY_S = 900.0
FORGET_S = 3600.0
#: All browsers without a device cookie together (there is one password to guess, and an
#: attacker may have many addresses): this many failures, then the same back-off.
MAX_FAILURES_UNKNOWN = 20
UNKNOWN = "unknown browsers"
#: Clients remembered at most (an attacker with many addresses must not grow the table).
MAX_CLIENTS = 10_000
#: A browser that logged in before carries this cookie (signed, only sent to /login): its
#: failures are counted for it alone, so a stranger behind the same address (the reverse
#: proxy's) cannot lock the owner's phone out.
DEVICE_COOKIE = "ems_device"
DEVICE_DAYS = 365


class LoginThrottle:
    """Failed logins per client key: `free` failures, then an exponential back-off.

    A refused attempt is not checked, so it does not count either.
    """

    def __init__(self) -> None:
        # client -> (failures, monotonic time of the last one); oldest failure first
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def delay_s(failures: int, free: int = MAX_FAILURES) -> float:
        """How long a client with `failures` failures waits after the last one."""
        if failures < free:
            return 0.0
        return min(MAX_DELAY_S, BASE_DELAY_S * 2.0 ** min(failures - free, 32))

    def wait_s(self, client: str, free: int = MAX_FAILURES) -> float:
        """Seconds until this client may try again (0: now)."""
        now = clock.monotonic()
        with self._lock:
            entry = self._failures.get(client)
            if entry is None:
                return 0.0
            n, last = entry
            if now - last > FORGET_S:
                del self._failures[client]
                return 0.0
            return max(0.0, self.delay_s(n, free) - (now - last))

    def failed(self, client: str) -> None:
        now = clock.monotonic()
        with self._lock:
            n, last = self._failures.pop(client, (0, now))
            if now - last > FORGET_S:
                n = 0
            self._failures[client] = (n + 1, now)  # re-inserted last: the order holds
            if len(self._failures) > MAX_CLIENTS:
                self._prune(now)

    def _prune(self, now: float) -> None:
        for key, (_, last) in list(self._failures.items()):
            if now - last > FORGET_S:
                del self._failures[key]
        # Still too many: forget the oldest addresses (never the count of all of them).
        for key in list(self._failures):
            if len(self._failures) <= MAX_CLIENTS:
                break
            if key != UNKNOWN:
                del self._failures[key]

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


throttle = LoginThrottle()


def _device_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt="ems-login-device")


def client_keys() -> list[tuple[str, int]]:
    """Whom the throttle counts this login attempt against, each with its free failures.

    A browser with a valid device cookie counts alone. Any other counts by its address (an
    IPv6 address by its /64: one host has them all) and among all unknown browsers.
    """
    raw = request.cookies.get(DEVICE_COOKIE)
    if raw:
        try:
            device = _device_signer().loads(raw, max_age=DEVICE_DAYS * 86400)
        except BadData:
            device = None
        if isinstance(device, str) and device:
            return [(f"device:{device}", MAX_FAILURES)]
    addr = request.remote_addr or "?"
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        pass
    else:
        if ip.version == 6 and ip.ipv4_mapped is None:
            addr = str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return [(f"addr:{addr}", MAX_FAILURES), (UNKNOWN, MAX_FAILURES_UNKNOWN)]


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
    if session.get("pw") != _password_tag(ctx.webui.password_hash or ""):
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
        #: The store whose list is in `_ids` (None: not read yet, or no list stored yet).
        self._loaded_from: object = None
        self._store: object = None
        self._ids: dict[str, float] = {}

    def _load(self) -> None:
        store = ui().store
        if self._store is not store:
            self._store, self._loaded_from, self._ids = store, None, {}
        if self._loaded_from is store:
            return
        # The store answers None both for "no list yet" and for a failed read: read again next
        # time rather than take a database hiccup for "nobody ever logged out".
        raw = store.kv_get(self.KEY)
        if raw is None:
            return
        try:
            self._ids.update({str(k): float(v) for k, v in json.loads(raw).items()})
        except (ValueError, TypeError, AttributeError):
            log.warning("the list of logged-out sessions is unreadable; starting afresh")
        self._loaded_from = store

    def forget(self) -> None:
        """Drop what is held in memory, as a restart does; the store's list stays."""
        with self._lock:
            self._store, self._loaded_from, self._ids = None, None, {}

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
            if not ui().store.kv_put(self.KEY, json.dumps(self._ids), clock.now()):
                log.warning("logout not stored: it holds until EMS restarts")


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
    """A short fingerprint of the password hash: a session made before a change is void.

    Keyed with the secret key: the session cookie is readable by whoever holds it, and must
    not carry anything computed from the hash alone.
    """
    key = current_app.secret_key or ""
    key_bytes = key.encode() if isinstance(key, str) else key
    digest = hmac.new(key_bytes, b"ems-password-tag\0" + hash_.encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    ctx = ui()
    nxt = _safe_next(request.values.get("next"))
    if not ctx.login_required:
        return redirect(nxt)
    if request.method == "GET":
        return render_template("login.html", next=nxt, name=session.get("last_name", ""))
    client = request.remote_addr or "?"
    keys = client_keys()
    wait = max(throttle.wait_s(key, free) for key, free in keys)
    if wait > 0:
        retry = math.ceil(wait)
        msg = f"Too many failed attempts. Try again in {retry} s."
        page = render_template("login.html", next=nxt, error=msg, name="")
        return page, 429, {"Retry-After": str(retry)}
    name = (request.form.get("name") or "").strip()[:NAME_MAX] or "owner"
    password = request.form.get("password") or ""
    hash_ = ctx.webui.password_hash or ""
    if not password or not check_password_hash(hash_, password):
        for key, _ in keys:
            throttle.failed(key)
        log.warning("failed web UI login from %s", client)
        return render_template("login.html", next=nxt, error="Wrong password.", name=name), 401
    # The count of all unknown browsers is left to run out: one login must not reset it.
    throttle.succeeded(keys[0][0])
    # A fresh session on login: nothing from before (CSRF token included) carries over.
    session.clear()
    session.permanent = True
    session["user"] = name
    session["last_name"] = name
    session["sid"] = secrets.token_urlsafe(16)
    session["pw"] = _password_tag(hash_)
    log.info("web UI login by %s from %s", name, client)
    resp = redirect(nxt)
    # This browser now has its own throttle count (see DEVICE_COOKIE); it survives a logout.
    resp.set_cookie(
        DEVICE_COOKIE,
        _device_signer().dumps(secrets.token_urlsafe(16)),
        max_age=DEVICE_DAYS * 86400,
        path=url_for("auth.login"),
        secure=ctx.webui.secure_cookies,
        httponly=True,
        samesite="Lax",
    )
    return resp


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    name = session.get("user")
    sid = session.get("sid")
    if isinstance(sid, str):
        # A copy of the cookie must not outlive the logout.
        until = clock.now() + timedelta(days=ui().webui.session_days)
        revoked.add(sid, until.timestamp())
    session.clear()
    if name:
        session["last_name"] = name
        log.info("web UI logout by %s", name)
    flash("Logged out.")
    if ui().login_required:
        return redirect(url_for("auth.login"))
    return redirect(url_for("status.index"))
