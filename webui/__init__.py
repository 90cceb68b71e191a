"""The owner's web UI: Flask application factory (status, history, plan, JSON API, login).

`create_app(config, store, controller_handle)` builds the app; `webui.serve.serve()` runs it
with waitress inside the daemon. The UI reads the controller's last report and the store, and
writes only overrides (docs/webui.md, docs/api.md).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import secrets
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from emsctl import __version__
from emsctl.config import Config
from emsctl.status import ControllerHandle
from webui import format as fmt
from webui.context import UiContext, UiStore
from webui.secret import load_or_create

log = logging.getLogger(__name__)

__all__ = ["create_app"]

#: Pages only load what this server serves: no CDN, no inline script, no framing.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def state_dir(config: Config, store: UiStore) -> Path | None:
    """Where the secret key lives: the directory of the database (None for an in-memory one)."""
    path = store.path or config.store.path
    if path == ":memory:" or not path:
        return None
    return Path(path).resolve().parent


def allowed_host_names(config: Config) -> frozenset[str]:
    """Names the UI answers to besides IP addresses: localhost, this machine's names (and
    <name>.local for mDNS), webui.bind when it is a name, and webui.allowed_hosts."""
    names = {"localhost", socket.gethostname(), socket.getfqdn(), config.webui.bind}
    names |= {f"{n}.local" for n in list(names) if "." not in n}
    names |= set(config.webui.allowed_hosts)
    return frozenset(n.lower().rstrip(".") for n in names if n)


def host_allowed(header: str, allowed: frozenset[str]) -> bool:
    """Whether a Host header names an IP address or an allowed name (any port)."""
    host = header.strip().lower()
    if host.startswith("["):  # [v6]:port
        host = host[1 : host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host.rstrip(".") in allowed
    return True


def _finite(obj: Any) -> Any:
    """`obj` with every infinite or NaN float replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


class StrictJSONProvider(DefaultJSONProvider):
    """JSON as the standard has it: Python would write a glitched measurement as NaN or
    Infinity, which browsers and most JSON parsers refuse; it is written as null (no value)."""

    sort_keys = False  # keep the documented field order

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return super().dumps(_finite(obj), **kwargs)


def create_app(
    config: Config,
    store: UiStore,
    controller_handle: ControllerHandle,
    *,
    secret_key: str | None = None,
) -> Flask:
    """The web UI for one running daemon.

    The session key comes from `webui.secret_key_file` (relative to the database's
    directory), created with mode 0600 when missing; `secret_key` overrides it.
    """
    app = Flask(__name__)
    wcfg = config.webui
    if secret_key is None:
        key_path = Path(wcfg.secret_key_file)
        base = state_dir(config, store)
        if not key_path.is_absolute() and base is not None:
            key_path = base / key_path
        if key_path.is_absolute():
            secret_key = load_or_create(key_path)
        else:
            log.info("in-memory database: the web UI uses a session key for this run only")
            secret_key = secrets.token_hex(32)
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_NAME="ems_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=wcfg.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(days=wcfg.session_days),
        # The page stays open for hours on a phone; the token lives as long as the session.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_HEADERS=["X-CSRFToken"],
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.json = StrictJSONProvider(app)
    app.extensions["ems"] = UiContext(webui=config.webui, store=store, controller=controller_handle)

    from webui import api, auth, cars, history, plan, status

    allowed = allowed_host_names(config)

    @app.before_request
    def _host_check() -> ResponseReturnValue | None:
        # DNS rebinding: a page on the attacker's domain, pointed at this address, sends its
        # own name as Host. IP addresses and this machine's names are what the owner types.
        if host_allowed(request.headers.get("Host", ""), allowed):
            return None
        log.warning("refused a request for host %r (webui.allowed_hosts)", request.host)
        msg = "unknown host name: add it to webui.allowed_hosts to use it"
        if request.path.startswith("/api/"):
            return jsonify(error=msg), 400
        return Response(msg + "\n", status=400, mimetype="text/plain")

    # Login is checked before CSRF: a request without a session hears "log in", not "token".
    app.before_request(auth.require_login)
    CSRFProtect(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(status.bp)
    app.register_blueprint(history.bp)
    app.register_blueprint(plan.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(cars.bp)

    @app.context_processor
    def _globals() -> dict[str, Any]:
        ctx: UiContext = app.extensions["ems"]
        return {
            "login_required": ctx.login_required,
            "user": auth.current_user() if auth.logged_in() else None,
            "fmt": fmt,
            "version": __version__,
        }

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        if request.endpoint != "static":
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> tuple[Response | str, int]:
        log.warning("refused %s %s: %s", request.method, request.path, exc.description)
        msg = f"refused: {exc.description} Reload the page and try again."
        if request.path.startswith("/api/"):
            return jsonify(error=msg), 400
        return render_template("error.html", title="Refused", message=msg), 400

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[Response | str, int]:
        code = exc.code or 500
        if request.path.startswith("/api/"):
            return jsonify(error=f"{exc.name}: {exc.description}"), code
        return render_template("error.html", title=exc.name, message=exc.description), code

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> tuple[Response | str, int]:
        log.exception("web UI error on %s %s", request.method, request.path)
        msg = "internal error (details are in the EMS log)"
        if request.path.startswith("/api/"):
            return jsonify(error=msg), 500
        return render_template("error.html", title="Error", message=msg), 500

    return app
