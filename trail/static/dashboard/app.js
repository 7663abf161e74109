// What the sites page and a site's dashboard share: calls to trail's API with the session cookie
// (and its CSRF token on writes), the header, DOM building, dates in a time zone, and numbers in
// the browser's locale. Pages read it as window.trail.
"use strict";
(function () {
  let csrf = "";

  async function call(method, url, body) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) init.body = JSON.stringify(body);
    let r;
    try {
      r = await fetch(url, init);
    } catch (e) {
      return { ok: false, status: 0, data: { error: ["Cannot reach trail."] } };
    }
    if (r.status === 401) location.replace("/signin");
    const data = await r.json().catch(() => null);
    return { ok: r.ok, status: r.status, data: data ?? {} };
  }

  /** The answer's data, or an Error carrying the API's message. */
  async function get(url) {
    const answer = await call("GET", url);
    if (!answer.ok) throw new Error((answer.data.error || [])[0] || "HTTP " + answer.status);
    return answer.data;
  }

  /** Signs the page in: the CSRF token for writes, the header's name (the display name, else the
   * email; a link to the account page) and sign-out button. */
  async function start() {
    const session = await call("GET", "/api/v1/auth/session");
    if (!session.ok) return null;
    csrf = session.data.csrf_token || "";
    const who = document.getElementById("who");
    const user = session.data.user || {};
    if (who) who.textContent = user.full_name || user.email || "";
    document.getElementById("sign-out")?.addEventListener("click", async () => {
      await call("DELETE", "/api/v1/auth/session");
      location.replace("/signin");
    });
    return session.data;
  }

  /** el("li", {className: "x", onclick: f}, child, "text", ...) */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key in node && !key.includes("-")) node[key] = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
    return node;
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    node.append(...children);
    return node;
  }

  // Dates are "YYYY-MM-DD" strings, computed as UTC days so no local offset moves them.
  function today(timezone) {
    return new Intl.DateTimeFormat("en-CA", { timeZone: timezone }).format(new Date());
  }
  function addDays(day, n) {
    const d = new Date(day + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }
  function daysBetween(from, to) {
    return Math.round((Date.parse(to) - Date.parse(from)) / 86400000);
  }

  const numbers = new Intl.NumberFormat();
  const percents = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });
  const decimals = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
  function duration(seconds) {
    const s = Math.round(seconds || 0);
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60);
    return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
  }
  const format = {
    number: (n) => numbers.format(n || 0),
    percent: (n) => percents.format(n || 0),
    decimal: (n) => decimals.format(n || 0),
    duration,
  };

  /** A sparkline as an inline SVG of `values` (no axes), for lists. */
  function sparkline(values, label) {
    const w = 120, h = 28, max = Math.max(1, ...values);
    const step = values.length > 1 ? w / (values.length - 1) : w;
    const points = values.map((v, i) => `${(i * step).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`);
    return svg("svg", { class: "spark", viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": label },
      svg("polyline", { points: points.join(" ") }));
  }

  // -- light and dark ----------------------------------------------------------------------------
  // The page follows the system's colour scheme until the toggle picks the other one; that choice
  // is kept in localStorage ("trail-theme"), and picking the system's scheme again forgets it.
  const THEME_KEY = "trail-theme";
  const system = matchMedia("(prefers-color-scheme: dark)");
  let choice = null; // "light", "dark" or null: the system's
  try { choice = localStorage.getItem(THEME_KEY); } catch (e) { /* storage off */ }
  const dark = () => (choice || (system.matches ? "dark" : "light")) === "dark";

  function applyTheme() {
    if (choice === "dark" || choice === "light") document.documentElement.dataset.theme = choice;
    else delete document.documentElement.dataset.theme;
    document.getElementById("theme")?.setAttribute("aria-pressed", String(dark()));
    document.dispatchEvent(new Event("trail:theme"));
  }

  function toggleTheme() {
    const next = dark() ? "light" : "dark";
    choice = next === (system.matches ? "dark" : "light") ? null : next;
    try {
      if (choice) localStorage.setItem(THEME_KEY, choice);
      else localStorage.removeItem(THEME_KEY);
    } catch (e) { /* storage off: the choice lasts for this page */ }
    applyTheme();
  }

  function themeToggle() {
    const bar = document.querySelector(".bar");
    if (!bar || document.getElementById("theme")) return;
    bar.insertBefore(el("button", { type: "button", id: "theme", className: "quiet",
      "aria-pressed": String(dark()), onclick: toggleTheme }, "Dark mode"), document.getElementById("sign-out"));
  }

  applyTheme();
  system.addEventListener("change", applyTheme);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", themeToggle);
  else themeToggle();

  window.trail = { call, get, start, el, svg, sparkline, today, addDays, daysBetween, format };
})();
