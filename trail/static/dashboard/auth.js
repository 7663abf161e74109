// trail's sign-in and set-password pages: forms go to the API as JSON, and the API's
// errors ({"validation": {field: problem}, "error": [message]}) are shown next to the fields.
"use strict";
(function () {
  async function call(method, url, body, csrf) {
    const headers = { "Content-Type": "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) init.body = JSON.stringify(body);
    let status = 0;
    let data = null;
    try {
      const r = await fetch(url, init);
      status = r.status;
      data = await r.json().catch(() => null);
    } catch (e) {
      data = { error: ["Cannot reach trail: check your connection and try again."] };
    }
    return { ok: status >= 200 && status < 300, status, data: data || {} };
  }

  function slot(id) {
    return document.getElementById(id);
  }

  function clearErrors(form) {
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    document.querySelectorAll(".error[role=alert], .field-error").forEach((el) => {
      el.hidden = true;
      el.textContent = "";
    });
  }

  function showErrors(form, answer) {
    let first = null;
    for (const [name, problem] of Object.entries(answer.data.validation || {})) {
      const input = form.elements.namedItem(name);
      const box = slot(name + "-error");
      if (!box) continue;
      box.textContent = problem;
      box.hidden = false;
      if (input) {
        input.setAttribute("aria-invalid", "true");
        first = first || input;
      }
    }
    const message = (answer.data.error || [])[0] || "Something went wrong (" + answer.status + ").";
    const box = slot("form-error");
    box.textContent = message;
    box.hidden = false;
    (first || box).focus();
  }

  function onSubmit(form, send) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const answer = await send(form);
        if (answer && !answer.ok) showErrors(form, answer);
      } finally {
        button.disabled = false;
      }
    });
  }

  const signin = slot("signin");
  if (signin) {
    onSubmit(signin, async (form) => {
      const answer = await call("POST", "/api/v1/auth/session", {
        email: form.elements.email.value,
        password: form.elements.password.value,
      });
      if (answer.ok) location.replace("/sites");
      return answer;
    });
  }

  const setPassword = slot("set-password");
  if (setPassword) {
    const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
    if (!token) {
      showErrors(setPassword, {
        status: 400,
        data: { error: ["This link is incomplete: open the whole link you were given."] },
      });
    }
    onSubmit(setPassword, async (form) => {
      const password = form.elements.password.value;
      if (password !== form.elements.confirm.value) {
        return { ok: false, status: 400, data: {
          validation: { confirm: "does not match the new password" },
          error: ["The two passwords differ."],
        } };
      }
      const email = form.elements.email.value.trim();
      const answer = await call("POST", "/api/v1/auth/password-link",
        { token, password, email: email || null });
      if (answer.ok) {
        history.replaceState(null, "", "/set-password");
        location.replace("/sites");
      }
      return answer;
    });
  }
})();
