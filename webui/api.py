"""The JSON API (docs/api.md): status, history, session, and setting a load's override.

State-changing calls need the session cookie and its CSRF token in the `X-CSRFToken` header;
`GET /api/session` hands out the token. Errors are `{"error": "..."}` with a 4xx status.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf

from emsctl.model import Mode
from emsctl.store.db import StoreError
from webui.auth import current_user, logged_in
from webui.context import ui
from webui.overrides import OverrideRejected, apply_override
from webui.panels import stored_overrides
from webui.query import BadQuery, history_query

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")


def error(message: str, status: int) -> tuple[Response, int]:
    return jsonify(error=message), status


@bp.get("/status")
def status() -> ResponseReturnValue:
    ctx = ui()
    now = ctx.controller.now()
    stored = stored_overrides(ctx, now)
    overrides: dict[str, Any] | None = None
    if stored is not None:
        overrides = {
            load.value: {
                "mode": o.mode.value,
                "created_by": o.created_by,
                "created_at": o.created_at.isoformat(),
                "expires_at": None if o.expires_at is None else o.expires_at.isoformat(),
            }
            for load, o in stored.items()
            if o.active(now) and o.mode is not Mode.AUTO
        }
    report = ctx.controller.latest()
    if report is None:
        return jsonify(
            error="no status yet: the controller has not finished its first tick",
            stored_overrides=overrides,
        ), 503
    body = report.to_json()
    body["stored_overrides"] = overrides
    body["now"] = now.isoformat()
    return jsonify(body)


@bp.get("/history")
def history() -> ResponseReturnValue:
    ctx = ui()
    try:
        q = history_query(request.args, ctx.tz, ctx.loads, default_limit=100)
    except BadQuery as exc:
        return error(str(exc), 400)
    rows = ctx.store.history(
        load=q.load, since=q.since, until=q.until, limit=q.limit + 1, offset=q.offset
    )
    more = len(rows) > q.limit
    return jsonify(
        items=[r.as_dict() for r in rows[: q.limit]],
        limit=q.limit,
        offset=q.offset,
        next_offset=q.offset + q.limit if more else None,
    )


@bp.get("/session")
def session_info() -> ResponseReturnValue:
    ctx = ui()
    return jsonify(
        login_required=ctx.login_required,
        user=current_user() if logged_in() else None,
        csrf_token=generate_csrf(),
    )


@bp.post("/loads/<load>/override")
def set_override(load: str) -> ResponseReturnValue:
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        # silent=True covers malformed JSON only; [[[[... 20,000 deep overflows the decoder.
        return error("body: JSON nested too deeply: expected a flat JSON object", 400)
    if not isinstance(body, dict):
        return error(
            'expected a JSON object like {"mode": "force_on", "duration": "1h"} '
            "with Content-Type: application/json",
            400,
        )
    unknown = set(body) - {"mode", "duration"}
    if unknown:
        return error(f"unknown field(s) {', '.join(sorted(unknown))}: expected mode, duration", 400)
    try:
        res = apply_override(ui(), load, body.get("mode"), body.get("duration"), current_user())
    except OverrideRejected as exc:
        return error(str(exc), 400)
    except StoreError as exc:
        return error(f"not stored: {exc}", 503)
    return jsonify(res.as_dict())
