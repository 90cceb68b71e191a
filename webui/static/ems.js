// EMS status page: refresh the live parts and send override buttons through the JSON API.
// Without this script the page still works: the buttons are plain forms.
"use strict";

(function () {
  const root = document.getElementById("status");
  if (!root) return;
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const slowMs = Number(root.dataset.pollMs) || 10000;
  const fastMs = Number(root.dataset.fastMs) || 2000;
  // After a button press: poll fast until the card shows the new mode, at most this long.
  const fastForMs = 30000;
  let fastUntil = 0;
  let timer = null;
  let busy = false;

  function schedule() {
    clearTimeout(timer);
    if (document.hidden) return;
    const pending = root.querySelector('[data-pending="1"]') !== null;
    const fast = pending || Date.now() < fastUntil;
    timer = setTimeout(refresh, fast ? fastMs : slowMs);
  }

  function syncButtons() {
    root.querySelectorAll("article.card").forEach(function (card) {
      const live = card.querySelector(".live");
      if (!live) return;
      card.querySelectorAll(".modes button").forEach(function (b) {
        b.setAttribute("aria-pressed", String(b.value === live.dataset.mode));
      });
      const form = card.querySelector("form.controls");
      if (form && form.dataset.expect === live.dataset.mode && live.dataset.pending === "0") {
        delete form.dataset.expect;
        form.querySelector(".msg").textContent = "Applied.";
      }
    });
  }

  function showLost(lost) {
    const conn = root.querySelector(".conn");
    if (conn) conn.hidden = !lost;
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const r = await fetch(root.dataset.partial, { credentials: "same-origin", cache: "no-store" });
      if (r.status === 401 || r.redirected) {
        window.location.reload();
        return;
      }
      if (!r.ok) throw new Error("HTTP " + r.status);
      const doc = new DOMParser().parseFromString(await r.text(), "text/html");
      doc.querySelectorAll("[data-live]").forEach(function (fresh) {
        const old = document.getElementById(fresh.id);
        if (old) old.replaceWith(fresh);
      });
      // A wallbox's forms follow what was set, unless the owner is filling them in.
      doc.querySelectorAll("[data-live-forms]").forEach(function (fresh) {
        const old = document.getElementById(fresh.id);
        if (!old || old.dataset.dirty === "1" || old.contains(document.activeElement)) return;
        old.replaceWith(fresh);
      });
      syncButtons();
      showLost(false);
    } catch (e) {
      showLost(true);
    } finally {
      busy = false;
      schedule();
    }
  }

  async function send(form, mode) {
    const msg = form.querySelector(".msg");
    const buttons = form.querySelectorAll("button");
    const duration = form.querySelector('select[name="duration"]').value;
    buttons.forEach(function (b) { b.disabled = true; });
    msg.classList.remove("bad");
    msg.textContent = "Sending…";
    try {
      const r = await fetch(form.dataset.api, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token },
        body: JSON.stringify({ mode: mode, duration: duration }),
      });
      let body = {};
      try { body = await r.json(); } catch (e) { /* not JSON: use the status */ }
      if (r.status === 401) {
        window.location.reload();
        return;
      }
      if (!r.ok) {
        msg.classList.add("bad");
        msg.textContent = body.error || "Refused (HTTP " + r.status + ")";
        return;
      }
      msg.textContent = mode === "auto"
        ? "Back to Auto; the controller is ticking…"
        : "Stored; the controller is ticking…";
      form.dataset.expect = mode;
      fastUntil = Date.now() + fastForMs;
      refresh();
    } catch (e) {
      msg.classList.add("bad");
      msg.textContent = "No answer from EMS: " + e.message;
    } finally {
      buttons.forEach(function (b) { b.disabled = false; });
    }
  }

  root.querySelectorAll("form.controls").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      const button = ev.submitter;
      if (!button || !button.value) return;
      ev.preventDefault();
      send(form, button.value);
    });
  });

  root.addEventListener("input", function (ev) {
    const forms = ev.target.closest("[data-live-forms]");
    if (forms) forms.dataset.dirty = "1";
  });

  // Back from a form (a message at the top): the controller ticks on it in a moment, so
  // poll fast for a while to show the result.
  if (document.querySelector(".flash")) fastUntil = Date.now() + fastForMs;

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refresh();
  });
  schedule();
})();
