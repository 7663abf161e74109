// The sites page: every domain the user can see (GET /api/v1/domain) with visitors today and a
// 30-day sparkline, and a form that adds a site and shows how to send it hits (snippet.js).
"use strict";
(function () {
  const { call, get, start, el, sparkline, today, addDays, format } = window.trail;
  const slot = (id) => document.getElementById(id);

  function statsUrl(report, site, from, to) {
    const q = new URLSearchParams({ id: site.id, from, to, tz: site.timezone });
    return `/api/v1/statistics/${report}?${q}`;
  }

  function siteItem(site) {
    const day = today(site.timezone);
    const count = el("span", { className: "today" }, "…");
    const spark = el("span", { className: "spark-box" });
    const item = el("li", {},
      el("a", { href: "/sites/" + encodeURIComponent(site.id) }, site.display_name || site.hostname),
      el("span", { className: "today-box" }, count, " visitors today"), spark);
    get(statsUrl("total", site, day, day)).then((t) => {
      count.textContent = format.number(t.visitors);
      count.dataset.value = t.visitors;
    }, () => { count.textContent = "–"; });
    get(statsUrl("visitor", site, addDays(day, -29), day)).then((rows) => {
      const values = rows.map((r) => r.visitors);
      spark.append(sparkline(values, `Visitors over 30 days, ${format.number(Math.max(0, ...values))} at most`));
    }, () => {});
    return item;
  }

  async function listSites() {
    const list = slot("sites");
    let sites = [];
    try {
      sites = await get("/api/v1/domain");
    } catch (e) {
      const box = slot("form-error");
      box.textContent = e.message;
      box.hidden = false;
    }
    list.replaceChildren(...sites.map(siteItem));
    if (!sites.length) list.append(el("li", {}, "No sites yet."));
  }

  function fillTimezones() {
    const select = slot("timezone");
    const own = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    const zones = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [own];
    if (!zones.includes("UTC")) zones.unshift("UTC");
    select.append(...zones.map((z) => el("option", { value: z, selected: z === own }, z)));
  }

  function showErrors(answer) {
    const problems = answer.data.validation || {};
    for (const [name, problem] of Object.entries(problems)) {
      const box = slot(name + "-error");
      if (!box) continue;
      box.textContent = problem;
      box.hidden = false;
      slot(name)?.setAttribute("aria-invalid", "true");
    }
    const box = slot("add-error");
    box.textContent = (answer.data.error || [])[0] || "Something went wrong (" + answer.status + ").";
    box.hidden = false;
    (document.querySelector("[aria-invalid=true]") || box).focus();
  }

  /** POST /api/v1/domain; the subdomain (unique on the server) comes from the hostname. */
  async function createSite(hostname, timezone) {
    const base = hostname.toLowerCase().replace(/^www\./, "").replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "").slice(0, 50) || "site";
    let answer;
    for (let attempt = 0; attempt < 3; attempt++) {
      const subdomain = attempt ? base + "-" + Math.random().toString(36).slice(2, 8) : base;
      answer = await call("POST", "/api/v1/domain", { hostname, timezone, subdomain });
      if (answer.ok || !(answer.data.validation || {}).subdomain) break;
    }
    return answer;
  }

  function showSnippet(site) {
    window.trail.snippets.render(slot("snippet-body"), site, "snippet", 4);
    slot("snippet-open").href = "/sites/" + encodeURIComponent(site.id);
    slot("snippet").hidden = false;
    waitForFirstHit(site);
  }

  /** Polls today's total until the site has a page view, then turns the status green. */
  function waitForFirstHit(site) {
    const status = slot("first-hit");
    const poll = async () => {
      const day = today(site.timezone);
      const total = await get(statsUrl("total", site, addDays(day, -1), day)).catch(() => null);
      if (total && (total.views > 0 || total.visitors > 0)) {
        status.textContent = "The first hit arrived: your site is sending data.";
        status.className = "arrived";
        listSites();
        return;
      }
      setTimeout(poll, 3000);
    };
    poll();
  }

  function onAdd(form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      form.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
      form.querySelectorAll(".field-error, .error").forEach((n) => { n.hidden = true; });
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const answer = await createSite(form.elements.hostname.value.trim(), form.elements.timezone.value);
        if (!answer.ok) return showErrors(answer);
        form.reset();
        showSnippet(answer.data);
        listSites();
      } finally {
        button.disabled = false;
      }
    });
  }

  (async () => {
    if (!(await start())) return;
    fillTimezones();
    onAdd(slot("add-site"));
    await listSites();
  })();
})();
