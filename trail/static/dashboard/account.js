// The account page: the signed-in user's display name (POST /api/v1/user/name, Pirsch's
// endpoint) and password (PUT /api/v1/user/password, trail's own). A 400's `validation` shows
// next to the field it names; the header's name follows a saved change.
"use strict";
(function () {
  const { call, get, start } = window.trail;
  const slot = (id) => document.getElementById(id);
  // The API's field names -> the ids of the inputs that hold them.
  const INPUTS = { full_name: "full-name", current_password: "current-password", password: "new-password" };

  function clear(form, status) {
    form.querySelectorAll("[aria-invalid]").forEach((c) => c.removeAttribute("aria-invalid"));
    form.querySelectorAll(".field-error").forEach((p) => { p.hidden = true; p.textContent = ""; });
    status.textContent = "";
    status.className = "hint";
  }

  /** The API's answer in the form: each named field's problem beside it, the message below. */
  function fail(form, status, answer) {
    let first = null;
    for (const [name, problem] of Object.entries(answer.data.validation || {})) {
      const id = INPUTS[name];
      if (!id || !form.contains(slot(id))) continue;
      slot(id + "-error").textContent = problem;
      slot(id + "-error").hidden = false;
      slot(id).setAttribute("aria-invalid", "true");
      first = first || slot(id);
    }
    status.textContent = (answer.data.error || [])[0] || `Not saved (HTTP ${answer.status}).`;
    status.className = "error";
    if (first) first.focus();
  }

  function onSubmit(form, status, send) {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clear(form, status);
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        await send();
      } finally {
        button.disabled = false;
      }
    });
  }

  async function boot() {
    const session = await start();
    if (!session) return;
    const user = await get("/api/v1/user");
    slot("account-email").textContent = user.email || "(none)";
    slot("full-name").value = user.full_name || "";

    const nameForm = slot("name-form"), nameStatus = slot("name-status");
    onSubmit(nameForm, nameStatus, async () => {
      const answer = await call("POST", "/api/v1/user/name", { full_name: slot("full-name").value });
      if (!answer.ok) return fail(nameForm, nameStatus, answer);
      const saved = await get("/api/v1/user");
      slot("full-name").value = saved.full_name;
      slot("who").textContent = saved.full_name || saved.email;
      nameStatus.textContent = "Saved.";
    });

    const passwordForm = slot("password-form"), passwordStatus = slot("password-status");
    onSubmit(passwordForm, passwordStatus, async () => {
      const body = { current_password: slot("current-password").value, password: slot("new-password").value };
      const answer = await call("PUT", "/api/v1/user/password", body);
      if (!answer.ok) return fail(passwordForm, passwordStatus, answer);
      passwordForm.reset();
      const n = answer.data.revoked_sessions || 0;
      passwordStatus.textContent = `Password changed; ${n} other ${n === 1 ? "session" : "sessions"} signed out.`;
    });
    document.body.dataset.ready = "1";
  }
  document.addEventListener("DOMContentLoaded", boot);
})();
