// A shared dashboard (/share/<domain id> of a public site, /share/<domain id>/<access code>):
// the server serves the site dashboard page with the site, the link's code and the domain's theme
// in <meta name="trail-share"> and this script between app.js and the dashboard's scripts. Nobody
// signs in: the domain comes from the page, every statistics read carries the access code (the
// API's `access` parameter), and anything else (writes, saved views, other sites) is refused
// here without a request, so the page stays read-only and shows one site. The theme's colours
// become the page's custom properties for the scheme shown (light or dark, as app.js picks it),
// and the logo follows the scheme when the theme has one for each.
"use strict";
(function () {
  const shared = JSON.parse(document.querySelector('meta[name="trail-share"]').content);
  const t = window.trail;
  const fetchJson = t.call;
  const readable = /^\/api\/v1\/(statistics(\/|\?)|goal\?|funnel\?)/;
  const refused = { ok: false, status: 403, data: { error: ["This shared dashboard is read-only."] } };
  const withAccess = (url) => !shared.access ? url
    : url + (url.includes("?") ? "&" : "?") + "access=" + encodeURIComponent(shared.access);

  async function call(method, url, body) {
    if (method === "GET" && url.startsWith("/api/v1/domain?")) {
      const id = new URLSearchParams(url.split("?")[1]).get("id");
      return { ok: true, status: 200, data: id === shared.site.id ? [shared.site] : [] };
    }
    if (method !== "GET" || !readable.test(url)) return refused;
    return fetchJson(method, withAccess(url), body);
  }
  async function get(url) {
    const answer = await call("GET", url);
    if (!answer.ok) throw new Error((answer.data.error || [])[0] || "HTTP " + answer.status);
    return answer.data;
  }
  Object.assign(t, { call, get, start: async () => ({ shared: true }), shared });

  // -- the domain's theme ------------------------------------------------------------------------
  const theme = shared.theme || { light: {}, dark: {} };
  const root = document.documentElement;
  const system = matchMedia("(prefers-color-scheme: dark)");
  const dark = () => root.dataset.theme === "dark" || (root.dataset.theme !== "light" && system.matches);
  function applyTheme() {
    const shown = dark() ? theme.dark : theme.light;
    for (const prop of new Set([...Object.keys(theme.light), ...Object.keys(theme.dark)])) {
      if (shown[prop]) root.style.setProperty(prop, shown[prop]);
      else root.style.removeProperty(prop);
    }
    const logo = document.getElementById("share-logo");
    const src = dark() ? theme.logo_dark || theme.logo_light : theme.logo_light || theme.logo_dark;
    if (logo && src && logo.getAttribute("src") !== src) logo.src = src;
  }
  applyTheme();
  // app.js announces every change of scheme (the toggle, the system's) before the chart redraws.
  document.addEventListener("trail:theme", applyTheme);

  // No way to the site's settings from a shared dashboard.
  const ready = () => { document.getElementById("settings-link")?.remove(); applyTheme(); };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
