"""Charging by target on the page and in the API: the routes that set each wallbox's mode, its
target for this session and its weekly schedule, and copy the learned habits into the
schedule (webui.car_input checks the values, webui.car_panel draws the card).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from emsctl.store.db import StoreError
from webui.auth import current_user
from webui.car_input import CarRejected, copy_learned, set_mode, set_target, set_weekly
from webui.context import ui

bp = Blueprint("cars", __name__)


# -- routes ---------------------------------------------------------------------------------


def _form_result(fn: Any) -> ResponseReturnValue:
    try:
        message = fn()
    except CarRejected as exc:
        return render_template("error.html", title="Not accepted", message=str(exc)), 400
    except StoreError as exc:
        return render_template("error.html", title="Not stored", message=str(exc)), 503
    flash(message + " (the controller applies it at its next tick)")
    return redirect(url_for("status.index"))


@bp.post("/cars/<load>/mode")
def mode_form(load: str) -> ResponseReturnValue:
    return _form_result(lambda: set_mode(ui(), load, request.form.get("mode"), current_user()))


@bp.post("/cars/<load>/target")
def target_form(load: str) -> ResponseReturnValue:
    return _form_result(lambda: set_target(ui(), load, dict(request.form), current_user()))


@bp.post("/cars/<load>/weekly")
def weekly_form(load: str) -> ResponseReturnValue:
    return _form_result(lambda: set_weekly(ui(), load, dict(request.form), current_user()))


@bp.post("/cars/<load>/weekly/learned")
def learned_form(load: str) -> ResponseReturnValue:
    return _form_result(lambda: copy_learned(ui(), load, dict(request.form), current_user()))


def _json_body(allowed: set[str]) -> dict[str, Any]:
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        raise CarRejected("body: JSON nested too deeply: expected a flat JSON object") from None
    if not isinstance(body, dict):
        raise CarRejected("expected a JSON object with Content-Type: application/json")
    unknown = set(body) - allowed
    if unknown:
        raise CarRejected(
            f"unknown field(s) {', '.join(sorted(unknown))}: expected {', '.join(sorted(allowed))}"
        )
    return body


def _api_result(fn: Any) -> ResponseReturnValue:
    try:
        message = fn()
    except CarRejected as exc:
        return jsonify(error=str(exc)), 400
    except StoreError as exc:
        return jsonify(error=f"not stored: {exc}"), 503
    return jsonify(ok=True, message=message)


@bp.post("/api/cars/<load>/mode")
def mode_api(load: str) -> ResponseReturnValue:
    return _api_result(
        lambda: set_mode(ui(), load, _json_body({"mode"}).get("mode"), current_user())
    )


@bp.post("/api/cars/<load>/target")
def target_api(load: str) -> ResponseReturnValue:
    return _api_result(
        lambda: set_target(
            ui(), load, _json_body({"by", "kwh", "percent", "clear"}), current_user()
        )
    )


@bp.post("/api/cars/<load>/weekly")
def weekly_api(load: str) -> ResponseReturnValue:
    return _api_result(
        lambda: set_weekly(
            ui(), load, _json_body({"weekday", "at", "kwh", "percent", "clear"}), current_user()
        )
    )


@bp.post("/api/cars/<load>/weekly/learned")
def learned_api(load: str) -> ResponseReturnValue:
    return _api_result(lambda: copy_learned(ui(), load, _json_body({"at"}), current_user()))
