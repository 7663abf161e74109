// The site dashboard's panels: breakdowns with tabs (pages, sources, locations with the world
// map of site-map.js, devices, languages, events with their metadata), hours x weekdays, goals,
// funnels, tags and the sessions list, 20 at a time, with one session's journey in a dialog.
// Each panel is a loader registered with window.trail.dash: it reads its report and shows its
// rows, "no data" or its own error with a retry button.
"use strict";
(function () {
  const { get, el, format } = window.trail;
  const dash = window.trail.dash;
  const slot = (id) => document.getElementById(id);

  const regionNames = new Intl.DisplayNames(undefined, { type: "region" });
  const languageNames = new Intl.DisplayNames(undefined, { type: "language" });
  const country = (code) => {
    try { return regionNames.of(code.toUpperCase()) || code; } catch (e) { return code; }
  };
  const language = (code) => {
    try { return languageNames.of(code) || code; } catch (e) { return code; }
  };
  const direct = (v) => v || "Direct / none";
  const unknown = (v) => v || "Unknown";

  // A tab: the report, the row's key and label, the filter a click adds, the number shown;
  // extra: params (more of the report's query), detail(row) (a figure after the number), also
  // (row -> the other filters a click sets, a version's browser), name(row) (the row's text).
  const tab = (id, label, report, key, filter, extra) =>
    ({ id, label, report, key, filter, value: "visitors", text: unknown, ...extra });
  const version = (name, v) => name ? `${name} ${v || "(unknown version)"}` : "Unknown";
  const PANELS = [
    { id: "pages", title: "Pages", tabs: [
      tab("top", "Top pages", "page", "path", "path", { params: { include_avg_time_on_page: "true" },
        detail: (r) => format.duration(r.average_time_spent_seconds) + " on the page" }),
      tab("entry", "Entry pages", "page/entry", "path", "entry_path", { value: "entries", unit: "entries" }),
      tab("exit", "Exit pages", "page/exit", "path", "exit_path", { value: "exits", unit: "exits" }),
    ] },
    { id: "sources", title: "Sources", tabs: [
      tab("referrers", "Referrers", "referrer", "referrer_name", "referrer_name", { text: direct }),
      tab("channels", "Channels", "channel", "channel", "channel"),
      ...["source", "medium", "campaign", "content", "term"].map((p) =>
        tab(p, "UTM " + p, "utm/" + p, "utm_" + p, "utm_" + p)),
    ] },
    { id: "locations", title: "Locations", tabs: [
      tab("countries", "Countries", "country", "country_code", "country", { text: (v) => v ? country(v) : "Unknown", map: true }),
      tab("regions", "Regions", "region", "region", "region"),
      tab("cities", "Cities", "city", "city", "city"),
    ] },
    { id: "devices", title: "Devices", tabs: [
      tab("platforms", "Platforms", "platform", "platform", "platform"),
      tab("browsers", "Browsers", "browser", "browser", "browser"),
      tab("browser-versions", "Browser versions", "browser/version", "browser_version", "browser_version",
        { name: (r) => version(r.browser, r.browser_version), also: (r) => [["browser", r.browser]] }),
      tab("os", "Operating systems", "os", "os", "os"),
      tab("os-versions", "OS versions", "os/version", "os_version", "os_version",
        { name: (r) => version(r.os, r.os_version), also: (r) => [["os", r.os]] }),
      tab("screens", "Screens", "screen", "screen_class", "screen_class"),
    ] },
    { id: "languages", title: "Languages", tabs: [
      tab("languages", "Languages", "language", "language", "language", { text: (v) => v ? language(v) : "Unknown" }),
    ] },
    { id: "events", title: "Events", tabs: [
      tab("events", "Events", "events", "name", "event", { value: "count", unit: "times" }),
    ] },
  ];
  dash.tabbed.push(...PANELS);

  // -- shared views ----------------------------------------------------------------------------

  /** Rows with a bar each; `action(row)` makes a row a button. A row's accessible name is its
   * visible text and number followed by `more(row, clickable)`, read by screen readers only
   * (the unit and what a click does), so the name starts with what the row shows. */
  function barRows(rows, { value, text, action, more, pressed, detail }) {
    if (!rows.length) return el("p", { className: "empty" }, "No data for this period.");
    const max = Math.max(1, ...rows.map(value));
    return el("ol", { className: "rows" }, rows.map((r) => {
      const bar = el("span", { className: "fill" });
      bar.style.width = (100 * value(r) / max).toFixed(1) + "%";
      const click = action && action(r);
      const inner = [bar, el("span", { className: "name", title: text(r) }, text(r)),
        el("span", { className: "sr-only" }, ": "), dash.num(value(r), format.number(value(r))),
        el("span", { className: "sr-only" }, " " + more(r, !!click)),
        detail ? el("span", { className: "detail" }, el("span", { className: "sr-only" }, ", "), detail(r)) : null];
      return el("li", {}, click ? el("button", { type: "button", className: "row",
        "aria-pressed": pressed ? String(pressed(r)) : undefined, onclick: click }, inner)
        : el("span", { className: "row" }, inner));
    }));
  }

  function failed(body, e, retry) {
    body.replaceChildren(el("p", { className: "error" }, "Could not load: " + e.message + " "),
      el("button", { type: "button", onclick: retry }, "Retry"));
  }

  /** Runs `fill(gen)` for a panel body: busy while it loads, its own error when it fails. */
  async function settle(id, gen, fill) {
    const body = slot("panel-" + id);
    body.setAttribute("aria-busy", "true");
    try {
      await fill();
    } catch (e) {
      if (gen === dash.generation) failed(body, e, () => settle(id, dash.generation, fill).catch(() => {}));
      throw e;
    } finally {
      body.removeAttribute("aria-busy");
    }
  }

  function section(id, title, { wide, controls } = {}) {
    return el("section", { className: "card panel" + (wide ? " wide" : ""), "aria-labelledby": "title-" + id },
      el("h2", { id: "title-" + id }, title), controls || null,
      el("div", { id: "panel-" + id, className: "panel-body" }));
  }

  // -- breakdowns ------------------------------------------------------------------------------

  function platformRows(answer) {
    return ["desktop", "mobile", "unknown"].map((k) => ({
      platform: k, visitors: answer["platform_" + k] || 0,
    })).filter((r) => r.visitors > 0).sort((a, b) => b.visitors - a.visitors);
  }

  function loadBreakdown(panel, s, p, gen) {
    const t = panel.tabs.find((x) => x.id === s.tabs[panel.id]) || panel.tabs[0];
    document.querySelectorAll(`#tabs-${panel.id} button`).forEach((b) =>
      b.setAttribute("aria-pressed", String(b.dataset.tab === t.id)));
    return settle(panel.id, gen, async () => {
      // The map shows every country, the list the first 10.
      const limit = t.map ? "300" : "10";
      const asked = dash.get(dash.url(t.report, p, s, t.report === "platform" ? {} : { limit, ...t.params }));
      // The map's shapes are fetched and decoded while the report is asked, not after.
      if (t.map) window.trail.worldMap?.shapes().catch(() => {});
      const answer = await asked;
      if (gen !== dash.generation) return;
      const all = t.report === "platform" ? platformRows(answer) : answer;
      const rows = all.slice(0, 10);
      const active = s.filters.some(([k]) => k === t.filter);
      const key = (r) => String(r[t.key] ?? "");
      const view = barRows(rows, {
        value: (r) => r[t.value] || 0, text: (r) => t.name ? t.name(r) : t.text(key(r)), detail: t.detail,
        action: (r) => key(r) !== "" && !active && (() => filterBy([[t.filter, key(r)], ...(t.also ? t.also(r) : [])], s)),
        more: (r, click) => (t.unit || "visitors") + (click ? ". Filter by it" : ""),
      });
      view.querySelectorAll?.(".row").forEach((row, i) => row.setAttribute("data-key", key(rows[i])));
      const map = t.map && window.trail.worldMap
        ? await window.trail.worldMap(all, (code) => !active && (() => dash.addFilter(t.filter, code))) : null;
      if (t.report === "events") await eventMeta(view, rows, s, p, gen);
      if (gen !== dash.generation) return;
      const credit = panel.id === "locations" && document.querySelector('meta[name="trail-geoip"]')
        ? [el("p", { className: "hint attribution" }, "IP geolocation by ",
          el("a", { href: "https://db-ip.com", rel: "noopener" }, "DB-IP"), " (",
          el("a", { href: "https://creativecommons.org/licenses/by/4.0/", rel: "license noopener" }, "CC BY 4.0"), ")")]
        : [];
      slot("panel-" + panel.id).replaceChildren(...(map ? [map, view] : [view]), ...credit);
    });
  }

  /** Sets the "is" filters `pairs`, replacing the view's filters on their parameters. */
  function filterBy(pairs, s) {
    const keys = new Set(pairs.map(([k]) => k));
    dash.navigate({ filters: [...s.filters.filter(([k]) => !keys.has(k)), ...pairs] });
  }

  // -- event metadata --------------------------------------------------------------------------
  // An event with metadata has a "Metadata" button that shows its keys and each key's values
  // (/statistics/event/meta); a value filters the dashboard by the event and meta_<key>=value.
  // Which events are open outlasts a render (a filter, another range).

  const openEvents = new Set();

  async function eventMeta(view, rows, s, p, gen) {
    const items = view.querySelectorAll?.(":scope > li") || [];
    const opened = [];
    rows.forEach((r, i) => {
      if (!(r.meta_keys || []).length) return;
      const li = items[i];
      const box = el("div", { className: "event-meta", id: "event-meta-" + i, hidden: true });
      const toggle = el("button", { type: "button", className: "quiet meta-toggle", "aria-expanded": "false",
        "aria-controls": box.id, "data-event": r.name }, "Metadata", el("span", { className: "sr-only" }, " of " + r.name));
      const show = async (open) => {
        toggle.setAttribute("aria-expanded", String(open));
        box.hidden = !open;
        if (open) openEvents.add(r.name); else openEvents.delete(r.name);
        if (open) await fillMeta(box, r, s, p, gen);
      };
      toggle.addEventListener("click", () => show(box.hidden).catch(() => {}));
      view.classList.add("with-meta");
      li.append(toggle, box);
      if (openEvents.has(r.name)) opened.push(show(true));
    });
    await Promise.all(opened);
  }

  async function fillMeta(box, r, s, p, gen) {
    box.setAttribute("aria-busy", "true");
    try {
      const lists = await Promise.all(r.meta_keys.map((k) =>
        dash.get(dash.url("event/meta", p, s, { event: r.name, event_meta_key: k, limit: "10" }))));
      if (gen !== dash.generation) return;
      box.replaceChildren(...r.meta_keys.flatMap((k, i) => {
        const key = "meta_" + k;
        const active = s.filters.some(([f]) => f === key);
        const values = barRows(lists[i], {
          value: (m) => m.count, text: (m) => unknown(m.meta_value),
          action: (m) => m.meta_value && !active && (() => dash.navigate({
            filters: [...s.filters.filter(([f]) => f !== "event" && f !== key), ["event", r.name], [key, m.meta_value]] })),
          more: (m, click) => "times" + (click ? ". Filter by it" : ""),
        });
        values.querySelectorAll?.(".row").forEach((row, j) => row.setAttribute("data-meta", `${k}=${lists[i][j].meta_value}`));
        return [el("h3", {}, k), values];
      }));
    } catch (e) {
      if (gen !== dash.generation) return;
      box.replaceChildren(el("p", { className: "error" }, "Could not load the metadata: " + e.message));
    } finally {
      box.removeAttribute("aria-busy");
    }
  }

  async function loadWeekdays(s, p, gen) {
    return settle("times", gen, async () => {
      const rows = await dash.get(dash.url("weekdays", p, s));
      if (gen !== dash.generation) return;
      const cells = new Map(rows.map((r) => [r.weekday * 24 + r.hour, r.visitors]));
      const max = Math.max(1, ...cells.values());
      const days = [...Array(7)].map((_, i) => new Intl.DateTimeFormat(undefined, { weekday: "short", timeZone: "UTC" })
        .format(new Date(Date.UTC(2024, 0, 1 + i)))); // 2024-01-01 was a Monday, the API's weekday 0
      // Every column has its hour as a header; only every sixth is shown.
      const head = el("tr", {}, el("th", { scope: "col" }, el("span", { className: "sr-only" }, "Weekday")), [...Array(24)].map((_, h) =>
        el("th", { scope: "col" }, h % 6 ? el("span", { className: "sr-only" }, String(h)) : String(h))));
      const lines = days.map((d, w) => el("tr", {}, el("th", { scope: "row" }, d),
        [...Array(24)].map((_, h) => {
          const v = cells.get(w * 24 + h) || 0;
          const cell = el("td", { title: `${d} ${h}:00: ${format.number(v)} visitors` },
            el("span", { className: "sr-only" }, format.number(v)));
          cell.style.setProperty("--v", (v / max).toFixed(3));
          return cell;
        })));
      slot("panel-times").replaceChildren(el("table", { className: "heat" },
        el("caption", { className: "sr-only" }, "Visitors by weekday and hour"), head, lines));
    });
  }

  // -- goals, funnels, tags --------------------------------------------------------------------

  function loadGoals(s, p, gen) {
    return settle("goals", gen, async () => {
      if (!dash.goals.length) {
        slot("panel-goals").replaceChildren(el("p", { className: "empty" }, "No conversion goals defined."));
        return;
      }
      // Every goal under the view's filters, without the selected goal's own conditions.
      const rows = await dash.get(dash.url("goals", p, { ...s, goal: "" }, { limit: "100" }));
      if (gen !== dash.generation) return;
      const view = barRows(rows, {
        value: (r) => r.stats.visitors,
        text: (r) => `${r.page_goal.name} · ${format.percent(r.stats.cr)}`,
        action: (r) => () => dash.navigate({ goal: s.goal === r.page_goal.id ? "" : r.page_goal.id,
          metric: s.metric === "cr" ? "visitors" : s.metric }),
        pressed: (r) => s.goal === r.page_goal.id,
        more: (r) => "visitors. " + (s.goal === r.page_goal.id ? "Clear the goal" : "Select the goal"),
      });
      view.querySelectorAll?.(".row").forEach((row, i) => row.setAttribute("data-goal", rows[i].page_goal.id));
      slot("panel-goals").replaceChildren(view);
    });
  }

  function loadFunnel(s, p, gen) {
    const chooser = slot("funnel-choice");
    return settle("funnels", gen, async () => {
      const funnel = dash.funnels.find((f) => f.id === s.funnel) || dash.funnels[0];
      chooser.hidden = dash.funnels.length < 2;
      if (!funnel) {
        slot("panel-funnels").replaceChildren(el("p", { className: "empty" }, "No funnels defined."));
        return;
      }
      slot("funnel").value = funnel.id;
      const q = new URLSearchParams({ id: dash.site.id, from: p.from, to: p.to, tz: dash.site.timezone, funnel_id: funnel.id });
      const answer = await dash.get("/api/v1/statistics/funnel?" + q);
      if (gen !== dash.generation) return;
      const steps = answer.definition.steps || [];
      slot("panel-funnels").replaceChildren(el("ol", { className: "funnel", "aria-label": funnel.name },
        answer.data.map((d, i) => {
          const bar = el("span", { className: "fill" });
          bar.style.width = (100 * d.relative_visitors).toFixed(1) + "%";
          return el("li", { className: "step", "data-step": String(d.step) },
            el("div", { className: "row" }, bar,
              el("span", { className: "name" }, `${d.step}. ${(steps[i] || {}).name || "Step " + d.step}`),
              dash.num(d.visitors, format.number(d.visitors))),
            el("p", { className: "hint" }, `${format.percent(d.relative_visitors)} of step 1` +
              (i ? ` · ${format.number(d.dropped)} dropped (${format.percent(d.drop_off)})` : "")));
        })));
    });
  }

  function loadTags(s, p, gen) {
    const back = slot("tags-back");
    back.hidden = !s.tags;
    return settle("tags", gen, async () => {
      if (!s.tags) {
        const rows = await dash.get(dash.url("tags", p, s, { limit: "10" }));
        if (gen !== dash.generation) return;
        slot("panel-tags").replaceChildren(barRows(rows, {
          value: (r) => r.visitors, text: (r) => r.key,
          action: (r) => () => dash.navigate({ tags: r.key }),
          more: () => "visitors. Show its values",
        }));
        return;
      }
      const rows = await dash.get(dash.url("tag/details", p, s, { tag: s.tags, limit: "10" }));
      if (gen !== dash.generation) return;
      const key = "tag_" + s.tags;
      const active = s.filters.some(([k]) => k === key);
      slot("panel-tags").replaceChildren(el("p", { className: "hint" }, "Values of the tag " + s.tags), barRows(rows, {
        value: (r) => r.visitors, text: (r) => unknown(r.value),
        action: (r) => r.value && !active && (() => dash.addFilter(key, r.value)),
        more: (r, click) => "visitors" + (click ? ". Filter by it" : ""),
      }));
    });
  }

  // -- sessions and their journeys -------------------------------------------------------------

  let times = null;
  const time = (iso) => times.format(new Date(iso));
  let opener = null;

  const SESSIONS_PAGE = 20;

  /** The sessions of `offset` on (a page of them, and whether more follow: one more is asked). */
  async function sessionPage(s, p, offset) {
    const rows = await dash.get(dash.url("session/list", p, s, { offset: String(offset), limit: String(SESSIONS_PAGE + 1) }));
    return [rows.slice(0, SESSIONS_PAGE), rows.length > SESSIONS_PAGE];
  }

  function sessionItem(r, p) {
    const where = [r.country_code ? country(r.country_code) : "", r.browser, r.os].filter(Boolean).join(" · ");
    const pages = `${format.number(r.page_views)} ${r.page_views === 1 ? "page" : "pages"}`;
    const path = r.entry_path === r.exit_path ? r.entry_path : `${r.entry_path} → ${r.exit_path}`;
    return el("li", {}, el("button", {
      type: "button", className: "session", "data-session": `${r.visitor_id}:${r.session_id}`,
      "aria-haspopup": "dialog",
      onclick: (e) => openJourney(r, p, e.currentTarget),
    }, el("span", { className: "when" }, time(r.start)), el("span", { className: "name" }, path),
    el("span", { className: "meta" }, [pages, format.duration(r.duration_seconds), direct(r.referrer_name), where].join(" · "))));
  }

  function loadSessions(s, p, gen) {
    times = new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "short", timeZone: dash.site.timezone });
    return settle("sessions", gen, async () => {
      const [rows, more] = await sessionPage(s, p, 0);
      if (gen !== dash.generation) return;
      if (!rows.length) {
        slot("panel-sessions").replaceChildren(el("p", { className: "empty" }, "No sessions in this period."));
        return;
      }
      // "More sessions" adds the next 20 (offset and limit of session/list) and moves the focus
      // to the first of them.
      const list = el("ol", { className: "sessions" }, rows.map((r) => sessionItem(r, p)));
      const status = el("p", { className: "hint", role: "status" });
      const button = el("button", { type: "button", id: "more-sessions", className: "quiet", hidden: !more }, "More sessions");
      const count = () => { status.textContent = `${format.number(list.children.length)} sessions shown`; };
      button.addEventListener("click", async () => {
        button.disabled = true;
        list.setAttribute("aria-busy", "true");
        try {
          const [next, further] = await sessionPage(s, p, list.children.length);
          if (gen !== dash.generation) return;
          const items = next.map((r) => sessionItem(r, p));
          list.append(...items);
          button.hidden = !further;
          count();
          items[0]?.querySelector("button").focus();
        } catch (e) {
          status.textContent = "Could not load more sessions: " + e.message;
        } finally {
          button.disabled = false;
          list.removeAttribute("aria-busy");
        }
      });
      count();
      slot("panel-sessions").replaceChildren(list, el("div", { className: "more" }, button, status));
    });
  }

  async function openJourney(r, p, from) {
    opener = from;
    const dialog = slot("journey");
    const body = slot("journey-body");
    slot("journey-title").textContent = "Session started " + time(r.start);
    body.replaceChildren(el("p", { className: "hint" }, "Loading…"));
    body.setAttribute("aria-busy", "true");
    dialog.showModal();
    const q = new URLSearchParams({ id: dash.site.id, from: p.from, to: p.to, tz: dash.site.timezone,
      visitor_id: r.visitor_id, session_id: String(r.session_id) });
    try {
      const steps = await get("/api/v1/statistics/session/details?" + q);
      body.replaceChildren(el("ol", { className: "journey" }, steps.map((step) => {
        const v = step.page_view, e = step.event;
        if (v) {
          return el("li", { className: "view", "data-path": v.path }, el("span", { className: "when" }, time(v.time)),
            el("span", {}, "Viewed ", el("code", {}, v.path), v.title ? ` (${v.title})` : ""),
            v.duration_seconds ? el("span", { className: "meta" }, format.duration(v.duration_seconds) + " on page") : null);
        }
        const meta = (e.meta_keys || []).map((k, i) => `${k}: ${e.meta_values[i]}`).join(", ");
        return el("li", { className: "event", "data-event": e.name }, el("span", { className: "when" }, time(e.time)),
          el("span", {}, "Event ", el("strong", {}, e.name), " on ", el("code", {}, e.path)),
          meta ? el("span", { className: "meta" }, meta) : null);
      })));
    } catch (e) {
      body.replaceChildren(el("p", { className: "error" }, "Could not load the session: " + e.message));
    } finally {
      body.removeAttribute("aria-busy");
    }
  }

  // -- building the panels ---------------------------------------------------------------------

  function build() {
    const box = slot("panels");
    for (const panel of PANELS) {
      const tabs = panel.tabs.length > 1 ? el("div", { className: "tabs", id: "tabs-" + panel.id, role: "group", "aria-label": panel.title + " tabs" },
        panel.tabs.map((t) => el("button", { type: "button", "data-tab": t.id,
          onclick: () => dash.navigate({ tabs: { ...dash.state().tabs, [panel.id]: t.id } }) }, t.label))) : null;
      box.append(section(panel.id, panel.title, { controls: tabs }));
      dash.loaders.push((s, p, gen) => loadBreakdown(panel, s, p, gen));
    }
    box.append(section("goals", "Goals"));
    const select = el("select", { id: "funnel", onchange: () => dash.navigate({ funnel: slot("funnel").value }) },
      dash.funnels.map((f) => el("option", { value: f.id }, f.name)));
    box.append(section("funnels", "Funnels", { controls: el("div", { id: "funnel-choice", className: "controls" },
      el("label", { htmlFor: "funnel" }, "Funnel"), select) }));
    box.append(section("tags", "Tags", { controls: el("button", { type: "button", id: "tags-back", className: "quiet",
      onclick: () => dash.navigate({ tags: "" }) }, "← All tags") }));
    box.append(section("times", "Hours and weekdays", { wide: true }));
    box.append(section("sessions", "Sessions", { wide: true }));
    dash.loaders.push(loadGoals, loadFunnel, loadTags, loadWeekdays, loadSessions);
    const dialog = slot("journey");
    slot("journey-close").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => opener && opener.isConnected && opener.focus());
  }
  document.addEventListener("trail:site", build);
})();
