// The site dashboard's CSV export (GET /api/v1/statistics: a zip of CSV files for the current
// window and filters) and saved views (/api/v1/view: the filters, range and comparison, with a
// custom comparison's window in `compare_from` and `compare_to`, under a name; list, apply,
// delete), listed when the saved views are first opened. A shared dashboard (share.js) exports
// with its access code and has no saved views.
"use strict";
(function () {
  const { call, get, el, shared } = window.trail;
  const dash = window.trail.dash;
  const slot = (id) => document.getElementById(id);

  // The export's sections. A section name (os, country, ...) is a flag there, never a filter, so
  // a filter on one of those fields does not travel with the export.
  const SECTIONS = ["visitors", "pages", "session_duration", "growth", "languages", "referrer",
    "os", "browser", "country", "region", "city", "platform", "screen", "utm", "conversion_goals",
    "events", "tags", "hostname"];
  // Filters a view can hold (Pirsch's view fields); tag_<key> and meta_<key> go in key/value lists.
  const VIEW_FIELDS = ["path", "entry_path", "exit_path", "language", "country", "city", "referrer",
    "referrer_name", "os", "browser", "platform", "screen_class", "utm_source", "utm_medium",
    "utm_campaign", "utm_content", "utm_term", "event"];
  const ROLLING = { "7d": 7, "30d": 30 };

  function exportLink(s, p) {
    const q = dash.query(p, s);
    for (const name of SECTIONS) q.set(name, "true");
    if (shared?.access) q.set("access", shared.access); // a shared dashboard's access link
    const a = slot("export");
    a.href = "/api/v1/statistics?" + q;
    a.download = `${dash.site.hostname}-${p.from}-${p.to}.zip`;
  }

  // -- saved views -----------------------------------------------------------------------------

  /** The view's body for the current state; `left` gets the filters a view cannot hold. */
  function viewBody(name, s, p, left) {
    // A view without a comparison has none (null), as Pirsch's views.
    const body = { domain_id: dash.site.id, name, compare: s.compare === "off" ? null : s.compare };
    if (s.compare === "custom") Object.assign(body, { compare_from: p.prevFrom, compare_to: p.prevTo });
    if (ROLLING[s.range]) body.period = ROLLING[s.range];
    else { body.from = p.from; body.to = p.to; }
    for (const [key, value] of s.filters) {
      const pair = key.match(/^(tag|meta)_(.+)$/);
      if (VIEW_FIELDS.includes(key)) (body[key] ||= []).push(value);
      else if (pair) {
        const [k, v] = pair[1] === "tag" ? ["tag_key", "tag_value"] : ["event_meta_key", "event_meta_value"];
        (body[k] ||= []).push(pair[2]);
        (body[v] ||= []).push(value);
      } else left.add(dash.filterName(key));
    }
    return body;
  }

  /** The dashboard state a saved view stands for. */
  function viewState(v) {
    const filters = [];
    for (const key of VIEW_FIELDS) for (const value of v[key] || []) filters.push([key, value]);
    (v.tag_key || []).forEach((k, i) => filters.push(["tag_" + k, (v.tag_value || [])[i] ?? ""]));
    (v.event_meta_key || []).forEach((k, i) => filters.push(["meta_" + k, (v.event_meta_value || [])[i] ?? ""]));
    const change = { filters, compare: v.compare === "year" ? "year" : v.compare ? "previous" : "off" };
    if (v.compare === "custom" && v.compare_from && v.compare_to) {
      Object.assign(change, { compare: "custom", compareFrom: v.compare_from, compareTo: v.compare_to });
    }
    const range = Object.keys(ROLLING).find((r) => ROLLING[r] === v.period);
    if (range) change.range = range;
    else if (v.from && v.to) Object.assign(change, { range: "custom", from: v.from, to: v.to });
    return change;
  }

  function say(text, bad) {
    const box = slot("view-status");
    box.textContent = text;
    box.className = bad ? "error" : "hint";
  }

  async function listViews() {
    const list = slot("views");
    try {
      const views = await get("/api/v1/view?" + new URLSearchParams({ domain_id: dash.site.id }));
      list.replaceChildren(...views.map((v) => el("li", { "data-view": v.id },
        el("button", { type: "button", className: "quiet", "aria-label": "Apply view " + v.name,
          onclick: () => { dash.navigate(viewState(v)); say(`Applied “${v.name}”.`); } }, v.name),
        el("button", { type: "button", className: "quiet", "aria-label": "Delete view " + v.name,
          onclick: () => deleteView(v) }, "Delete"))));
      if (!views.length) list.replaceChildren(el("li", { className: "empty" }, "No saved views."));
    } catch (e) {
      list.replaceChildren(el("li", { className: "error" }, "Could not load the views: " + e.message));
      throw e;
    }
  }

  async function deleteView(v) {
    const answer = await call("DELETE", "/api/v1/view?" + new URLSearchParams({ id: v.id }));
    if (!answer.ok) return say((answer.data.error || [])[0] || "Could not delete the view.", true);
    say(`Deleted “${v.name}”.`);
    await listViews().catch(() => {});
    slot("view-name").focus();
  }

  async function saveView(e) {
    e.preventDefault();
    const name = slot("view-name").value.trim();
    if (!name) {
      slot("view-name").setAttribute("aria-invalid", "true");
      return say("Name the view.", true);
    }
    slot("view-name").removeAttribute("aria-invalid");
    const s = dash.state();
    const left = new Set();
    const answer = await call("POST", "/api/v1/view", viewBody(name, s, dash.period(s), left));
    if (!answer.ok) return say((answer.data.error || [])[0] || "Could not save the view.", true);
    slot("view-name").value = "";
    say(`Saved “${name}”.` + (left.size ? ` A view cannot hold these filters: ${[...left].join(", ")}.` : ""));
    await listViews().catch(() => {});
  }

  document.addEventListener("trail:site", () => {
    dash.loaders.push(async (s, p) => exportLink(s, p));
    if (shared) { // saved views belong to members; a shared dashboard is read-only
      document.querySelector(".saved-views").hidden = true;
      return;
    }
    slot("view-form").addEventListener("submit", saveView);
    // The list is asked for when the saved views are first opened, not beside the statistics.
    const details = document.querySelector(".saved-views");
    let listed = false;
    details.addEventListener("toggle", () => {
      if (details.open && !listed) {
        listed = true;
        listViews().catch(() => { listed = false; });
      }
    });
  });
})();
