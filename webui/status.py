"""The status page: the house's figures and one card per load with its override buttons.

`/partials/status` renders only the live parts; the page's script swaps them in on every poll,
so the page and its refresh share one template. The buttons are plain forms that also work
without JavaScript.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from emsctl.store.db import StoreError
from webui.auth import current_user
from webui.context import ui
from webui.overrides import DEFAULT_DURATION, DURATIONS, OverrideRejected, apply_override
from webui.panels import Page, build_page, stored_overrides

bp = Blueprint("status", __name__)


def _page() -> Page:
    ctx = ui()
    now = ctx.controller.now()
    return build_page(ctx, ctx.controller.latest(), now, stored_overrides(ctx, now))


@bp.get("/")
def index() -> ResponseReturnValue:
    return render_template(
        "status.html", page=_page(), durations=DURATIONS, default_duration=DEFAULT_DURATION
    )


@bp.get("/partials/status")
def live() -> ResponseReturnValue:
    return render_template("_live.html", page=_page())


@bp.post("/loads/<load>/override")
def override_form(load: str) -> ResponseReturnValue:
    """The no-script path of the buttons: store, then back to the page with a message."""
    try:
        res = apply_override(
            ui(), load, request.form.get("mode"), request.form.get("duration"), current_user()
        )
    except OverrideRejected as exc:
        return render_template("error.html", title="Not accepted", message=str(exc)), 400
    except StoreError as exc:
        return render_template("error.html", title="Not stored", message=str(exc)), 503
    flash(f"{res.load.value}: {res.mode.value.replace('_', ' ')} sent to the controller.")
    return redirect(url_for("status.index"))
