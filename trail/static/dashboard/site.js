// A site's dashboard: top stats, the main chart and the panels, each read from
// /api/v1/statistics/* with the same filter language as any API client. The URL holds the whole
// state (range, filters, metric, panel tabs); every change pushes a new URL and reloads what
// depends on it. Panels load in parallel and each shows its own data or error. When everything
// has settled the page sets performance.mark("ready") and <body data-loaded="n">.
"use strict";
(function () {
  const { get, start, el, today, addDays, daysBetween, format } = window.trail;
  const slot = (id) => document.getElementById(id);
  const siteId = decodeURIComponent(location.pathname.split("/")[2] || "");

  const RANGES = [
    ["today", "Today"], ["yesterday", "Yesterday"], ["7d", "Last 7 days"],
    ["30d", "Last 30 days"], ["month", "This month"], ["lastmonth", "Last month"],
    ["year", "This year"], ["custom", "Custom"],
  ];
  // Filter parameters of the API that a dashboard URL may carry, with their names on chips.
  const FILTERS = {
    path: "Page", entry_path: "Entry page", exit_path: "Exit page", hostname: "Hostname",
    referrer: "Referrer", referrer_name: "Referrer", channel: "Channel",
    utm_source: "UTM source", utm_medium: "UTM medium", utm_campaign: "UTM campaign",
    utm_content: "UTM content", utm_term: "UTM term", country: "Country", region: "Region",
    city: "City", language: "Language", os: "OS", os_version: "OS version",
    browser: "Browser", browser_version: "Browser version", platform: "Platform",
    screen_class: "Screen", event: "Event",
  };
  const OPERATORS = { "!": "is not", "~": "contains", "^": "does not contain" };
  const METRICS = [
    ["visitors", "Visitors", format.number], ["views", "Views", format.number],
    ["sessions", "Sessions", format.number], ["bounce_rate", "Bounce rate", format.percent],
    ["duration", "Session duration", format.duration],
    ["views_per_visit", "Views per visit", format.decimal],
  ];
  const regionNames = new Intl.DisplayNames(undefined, { type: "region" });
  const languageNames = new Intl.DisplayNames(undefined, { type: "language" });
  const named = (names) => (code) => {
    try { return names.of(code.toUpperCase()) || code; } catch (e) { return code; }
  };
  const country = named(regionNames);
  const language = (code) => {
    try { return languageNames.of(code) || code; } catch (e) { return code; }
  };
  const direct = (v) => v || "Direct / none";
  const unknown = (v) => v || "Unknown";

  // A tab: the report, the row's key and label, the filter a click adds, the number shown.
  const tab = (id, label, report, key, filter, extra) =>
    ({ id, label, report, key, filter, value: "visitors", text: unknown, ...extra });
  const PANELS = [
    { id: "pages", title: "Pages", tabs: [
      tab("top", "Top pages", "page", "path", "path"),
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
      tab("countries", "Countries", "country", "country_code", "country", { text: (v) => v ? country(v) : "Unknown" }),
      tab("regions", "Regions", "region", "region", "region"),
      tab("cities", "Cities", "city", "city", "city"),
    ] },
    { id: "devices", title: "Devices", tabs: [
      tab("platforms", "Platforms", "platform", "platform", "platform"),
      tab("browsers", "Browsers", "browser", "browser", "browser"),
      tab("os", "Operating systems", "os", "os", "os"),
      tab("screens", "Screens", "screen", "screen_class", "screen_class"),
    ] },
    { id: "languages", title: "Languages", tabs: [
      tab("languages", "Languages", "language", "language", "language", { text: (v) => v ? language(v) : "Unknown" }),
    ] },
    { id: "events", title: "Events", tabs: [
      tab("events", "Events", "events", "name", "event", { value: "count", unit: "times" }),
    ] },
  ];

  let site = null;
  let generation = 0;
  let chart = null;

  // -- state <-> URL ---------------------------------------------------------------------------

  function state() {
    const q = new URLSearchParams(location.search);
    const filters = [...q].filter(([k]) => k in FILTERS);
    const tabs = Object.fromEntries(PANELS.map((p) => [p.id, q.get(p.id) || p.tabs[0].id]));
    return {
      range: RANGES.some(([r]) => r === q.get("range")) ? q.get("range") : "30d",
      from: q.get("from") || "", to: q.get("to") || "",
      metric: METRICS.some(([m]) => m === q.get("metric")) ? q.get("metric") : "visitors",
      filters, tabs,
    };
  }

  function navigate(change) {
    const s = { ...state(), ...change };
    const q = new URLSearchParams();
    if (s.range !== "30d") q.set("range", s.range);
    if (s.range === "custom") { q.set("from", s.from); q.set("to", s.to); }
    if (s.metric !== "visitors") q.set("metric", s.metric);
    for (const p of PANELS) if (s.tabs[p.id] !== p.tabs[0].id) q.set(p.id, s.tabs[p.id]);
    for (const [k, v] of s.filters) q.append(k, v);
    const search = q.toString();
    history.pushState(null, "", location.pathname + (search ? "?" + search : ""));
    render();
  }

  /** The window of a preset in the site's time zone, and the one just before it. */
  function period(s) {
    const now = today(site.timezone);
    const month = now.slice(0, 8) + "01";
    const windows = {
      today: [now, now], yesterday: [addDays(now, -1), addDays(now, -1)],
      "7d": [addDays(now, -6), now], "30d": [addDays(now, -29), now],
      month: [month, now], lastmonth: [addDays(month, -1).slice(0, 8) + "01", addDays(month, -1)],
      year: [now.slice(0, 5) + "01-01", now],
    };
    let [from, to] = windows[s.range] || [s.from, s.to];
    if (!/^\d{4}-\d{2}-\d{2}$/.test(from) || !/^\d{4}-\d{2}-\d{2}$/.test(to) || from > to) {
      [from, to] = windows["30d"];
    }
    const days = daysBetween(from, to) + 1;
    return { from, to, prevFrom: addDays(from, -days), prevTo: addDays(from, -1) };
  }

  function url(report, p, filters, extra) {
    const q = new URLSearchParams({ id: site.id, from: p.from, to: p.to, tz: site.timezone, ...extra });
    for (const [k, v] of filters) q.append(k, v);
    return `/api/v1/statistics/${report}?${q}`;
  }

  // -- controls --------------------------------------------------------------------------------

  function setupControls() {
    const range = slot("range");
    range.append(...RANGES.map(([v, label]) => el("option", { value: v }, label)));
    range.addEventListener("change", () => {
      const s = state();
      const p = period(s);
      navigate({ range: range.value, from: p.from, to: p.to });
    });
    for (const id of ["from", "to"]) {
      slot(id).addEventListener("change", () => {
        const from = slot("from").value, to = slot("to").value;
        if (from && to && from <= to) navigate({ range: "custom", from, to });
      });
    }
    window.addEventListener("popstate", render);
  }

  function showControls(s, p) {
    slot("range").value = s.range;
    slot("custom").hidden = s.range !== "custom";
    slot("from").value = p.from;
    slot("to").value = p.to;
    const dates = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeZone: "UTC" });
    const day = (d) => dates.format(new Date(d + "T00:00:00Z"));
    slot("period").textContent = `${p.from === p.to ? day(p.from) : day(p.from) + " – " + day(p.to)}` +
      ` (${site.timezone}), compared with ${day(p.prevFrom)} – ${day(p.prevTo)}`;
    const chips = s.filters.map(([k, v], i) => {
      const op = OPERATORS[v[0]];
      const value = op ? v.slice(1) : v;
      const text = `${FILTERS[k]} ${op || "is"} ${value}`;
      return el("li", { className: "chip" }, el("span", {}, text),
        el("button", { type: "button", "aria-label": "Remove filter: " + text,
          onclick: () => navigate({ filters: s.filters.filter((_, j) => j !== i) }) }, "×"));
    });
    slot("filters").replaceChildren(...chips);
  }

  function addFilter(key, value) {
    const s = state();
    const filters = s.filters.filter(([k]) => k !== key);
    navigate({ filters: [...filters, [key, value]] });
  }

  // -- top stats and chart ---------------------------------------------------------------------

  function num(value, text) {
    return el("span", { className: "num", "data-value": String(value) }, text);
  }

  /** Session duration over a window: the days' averages weighted by their sessions. */
  function meanDuration(durations, series) {
    const sessions = new Map(series.map((r) => [r.day, r.sessions]));
    let sum = 0, weight = 0;
    for (const d of durations) {
      const w = sessions.get(d.day) || 0;
      sum += d.average_time_spent_seconds * w;
      weight += w;
    }
    return weight ? sum / weight : 0;
  }

  function summary(total, durations, series) {
    return {
      visitors: total.visitors, views: total.views, sessions: total.sessions,
      bounce_rate: total.bounce_rate, duration: meanDuration(durations, series),
      views_per_visit: total.sessions ? total.views / total.sessions : 0,
    };
  }

  async function loadTop(s, p, gen) {
    const box = slot("top-stats");
    box.setAttribute("aria-busy", "true");
    const prev = { from: p.prevFrom, to: p.prevTo };
    const [now, before, series, durations, prevSeries, prevDurations] = await Promise.all([
      get(url("total", p, s.filters)), get(url("total", prev, s.filters)),
      get(url("visitor", p, s.filters)), get(url("duration/session", p, s.filters)),
      get(url("visitor", prev, s.filters)), get(url("duration/session", prev, s.filters)),
    ]).catch((e) => { if (gen === generation) failTop(e); throw e; });
    if (gen !== generation) return;
    const cur = summary(now, durations, series);
    const old = summary(before, prevDurations, prevSeries);
    box.replaceChildren(...METRICS.map(([key, label, fmt]) => {
      const change = old[key] ? (cur[key] - old[key]) / old[key] : null;
      const better = key === "bounce_rate" ? change < 0 : change > 0;
      return el("li", {}, el("button", {
        type: "button", className: "stat", id: "stat-" + key, "aria-pressed": String(s.metric === key),
        onclick: () => navigate({ metric: key }),
      }, el("span", { className: "label" }, label), num(cur[key], fmt(cur[key])),
      el("span", { className: "change " + (change === null || change === 0 ? "" : better ? "up" : "down") },
        change === null ? "–" : (change > 0 ? "+" : "") + format.percent(change))));
    }));
    box.removeAttribute("aria-busy");
    await drawChart(s, p, series, durations, gen);
  }

  function failTop(e) {
    slot("top-stats").replaceChildren(el("li", { className: "error" }, "Top statistics failed: " + e.message));
    slot("top-stats").removeAttribute("aria-busy");
  }

  async function drawChart(s, p, series, durations, gen) {
    const [, label] = METRICS.find(([m]) => m === s.metric);
    const single = p.from === p.to;
    let xs, ys;
    if (single) {
      const hours = await get(url("hours", p, s.filters));
      if (gen !== generation) return;
      xs = hours.map((h) => h.hour);
      ys = hours.map((h) => s.metric === "views_per_visit" ? (h.sessions ? h.views / h.sessions : 0)
        : s.metric === "duration" ? null : h[s.metric]);
    } else {
      const byDay = new Map(durations.map((d) => [d.day, d.average_time_spent_seconds]));
      xs = series.map((r) => Date.parse(r.day) / 1000);
      ys = series.map((r) => s.metric === "duration" ? byDay.get(r.day) ?? 0
        : s.metric === "views_per_visit" ? (r.sessions ? r.views / r.sessions : 0) : r[s.metric]);
    }
    const box = slot("chart");
    box.setAttribute("aria-label", `${label} ${single ? "by hour" : "by day"}`);
    slot("chart-title").textContent = label;
    if (chart) chart.destroy();
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue("--fg").trim(), line = css.getPropertyValue("--line").trim();
    const accent = css.getPropertyValue("--accent").trim();
    const axis = { stroke: fg, grid: { stroke: line, width: 1 }, ticks: { stroke: line } };
    const fmt = METRICS.find(([m]) => m === s.metric)[2];
    chart = new window.uPlot({
      width: Math.max(280, box.clientWidth), height: 240, legend: { show: false },
      tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: { x: { time: !single }, y: { range: (u, lo, hi) => [0, Math.max(hi, 1) * 1.1] } },
      axes: [{ ...axis, values: single ? (u, v) => v.map((h) => h + ":00") : undefined },
        { ...axis, size: 60, values: (u, v) => v.map(fmt) }],
      series: [{}, { label, stroke: accent, width: 2, fill: accent + "22", points: { show: xs.length < 60 } }],
    }, [xs, ys], box);
  }

  // -- panels ----------------------------------------------------------------------------------

  function platformRows(answer) {
    return ["desktop", "mobile", "unknown"].map((k) => ({
      platform: k, visitors: answer["platform_" + k] || 0,
    })).filter((r) => r.visitors > 0).sort((a, b) => b.visitors - a.visitors);
  }

  function rowsView(t, rows, active) {
    if (!rows.length) return el("p", { className: "empty" }, "No data for this period.");
    const max = Math.max(1, ...rows.map((r) => r[t.value] || 0));
    return el("ol", { className: "rows" }, rows.map((r) => {
      const key = r[t.key] ?? "";
      const value = r[t.value] || 0;
      const bar = el("span", { className: "fill" });
      bar.style.width = (100 * value / max).toFixed(1) + "%";
      const inner = [bar, el("span", { className: "name", title: String(key) }, t.text(key)),
        num(value, format.number(value))];
      const filterable = key !== "" && !active;
      return el("li", {}, filterable ? el("button", {
        type: "button", className: "row", "data-key": String(key),
        "aria-label": `${t.text(key)}: ${format.number(value)} ${t.unit || "visitors"}. Filter by it`,
        onclick: () => addFilter(t.filter, String(key)),
      }, inner) : el("span", { className: "row" }, inner));
    }));
  }

  async function loadPanel(panel, s, p, gen) {
    const body = slot("panel-" + panel.id);
    const t = panel.tabs.find((x) => x.id === s.tabs[panel.id]) || panel.tabs[0];
    body.setAttribute("aria-busy", "true");
    try {
      const answer = await get(url(t.report, p, s.filters, t.report === "platform" ? {} : { limit: "10" }));
      if (gen !== generation) return;
      const rows = t.report === "platform" ? platformRows(answer) : answer;
      const active = s.filters.some(([k]) => k === t.filter);
      body.replaceChildren(rowsView(t, rows, active));
    } catch (e) {
      if (gen === generation) {
        body.replaceChildren(el("p", { className: "error" }, "Could not load: " + e.message + " "),
          el("button", { type: "button", onclick: () => loadPanel(panel, state(), p, generation) }, "Retry"));
      }
      throw e;
    } finally {
      body.removeAttribute("aria-busy");
    }
  }

  async function loadWeekdays(s, p, gen) {
    const body = slot("panel-times");
    const rows = await get(url("weekdays", p, s.filters));
    if (gen !== generation) return;
    const cells = new Map(rows.map((r) => [r.weekday * 24 + r.hour, r.visitors]));
    const max = Math.max(1, ...cells.values());
    const days = [...Array(7)].map((_, i) => new Intl.DateTimeFormat(undefined, { weekday: "short", timeZone: "UTC" })
      .format(new Date(Date.UTC(2024, 0, 1 + i)))); // 2024-01-01 was a Monday, the API's weekday 0
    const head = el("tr", {}, el("th", {}), [...Array(24)].map((_, h) =>
      el("th", { scope: "col" }, h % 6 ? "" : String(h))));
    const lines = days.map((d, w) => el("tr", {}, el("th", { scope: "row" }, d),
      [...Array(24)].map((_, h) => {
        const v = cells.get(w * 24 + h) || 0;
        const cell = el("td", { title: `${d} ${h}:00: ${format.number(v)} visitors` },
          el("span", { className: "sr-only" }, format.number(v)));
        cell.style.setProperty("--v", (v / max).toFixed(3));
        return cell;
      })));
    body.replaceChildren(el("table", { className: "heat" },
      el("caption", { className: "sr-only" }, "Visitors by weekday and hour"), head, lines));
  }

  function buildPanels() {
    const box = slot("panels");
    for (const panel of PANELS) {
      const tabs = panel.tabs.length > 1 ? el("div", { className: "tabs", role: "group", "aria-label": panel.title },
        panel.tabs.map((t) => el("button", { type: "button", "data-tab": t.id,
          onclick: () => navigate({ tabs: { ...state().tabs, [panel.id]: t.id } }) }, t.label))) : null;
      box.append(el("section", { className: "card panel", "aria-labelledby": "title-" + panel.id },
        el("h2", { id: "title-" + panel.id }, panel.title), tabs,
        el("div", { id: "panel-" + panel.id, className: "panel-body" })));
    }
    box.append(el("section", { className: "card panel wide", "aria-labelledby": "title-times" },
      el("h2", { id: "title-times" }, "Hours and weekdays"),
      el("div", { id: "panel-times", className: "panel-body" })));
  }

  function render() {
    const s = state();
    const p = period(s);
    const gen = ++generation;
    document.body.dataset.loading = String(gen);
    showControls(s, p);
    for (const panel of PANELS) {
      document.querySelectorAll(`#panels [aria-label="${panel.title}"] button`).forEach((b) =>
        b.setAttribute("aria-pressed", String(b.dataset.tab === s.tabs[panel.id])));
    }
    const tasks = [loadTop(s, p, gen), loadWeekdays(s, p, gen), ...PANELS.map((panel) => loadPanel(panel, s, p, gen))];
    Promise.allSettled(tasks).then((results) => {
      if (gen !== generation) return;
      document.body.dataset.failed = String(results.filter((r) => r.status === "rejected").length);
      document.body.dataset.loaded = String(gen);
      performance.mark("ready");
    });
  }

  (async () => {
    if (!(await start())) return;
    const found = await get("/api/v1/domain?" + new URLSearchParams({ id: siteId })).catch(() => []);
    site = found[0];
    if (!site) {
      slot("site-name").textContent = "Site not found";
      const box = slot("site-error");
      box.textContent = "No site with this id is visible to you.";
      box.hidden = false;
      return;
    }
    slot("site-name").textContent = site.display_name || site.hostname;
    document.title = `${site.display_name || site.hostname} · trail`;
    setupControls();
    buildPanels();
    new ResizeObserver(() => chart && chart.setSize({ width: Math.max(280, slot("chart").clientWidth), height: 240 }))
      .observe(slot("chart"));
    render();
  })();
})();
