// A site's dashboard: the state in the URL, the controls, filter chips, live visitors, top stats
// and the main chart (with the comparison window, unless it is off, as a dashed line; the
// comparison is the previous period, the same dates a year before, or a custom window). The panels
// (site-panels.js) and the export and saved views (site-views.js) register loaders with
// window.trail.dash; render() runs them all in parallel, each showing its own data or error. When
// everything has settled the page sets performance.mark("ready") and <body data-loaded="n">.
// The statistics requests of a render are sent together, the slowest reports first (dash.get).
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
  const COMPARES = [["previous", "Previous period"], ["year", "Previous year"], ["custom", "Custom period"],
    ["off", "No comparison"]];
  const SCALES = [["day", "Days"], ["week", "Weeks"], ["month", "Months"]];
  // Filter parameters of the API that a dashboard URL may carry, with their names on chips;
  // tag_<key> and meta_<key> too.
  const FILTERS = {
    path: "Page", entry_path: "Entry page", exit_path: "Exit page", hostname: "Hostname",
    referrer: "Referrer URL", referrer_name: "Referrer", channel: "Channel",
    utm_source: "UTM source", utm_medium: "UTM medium", utm_campaign: "UTM campaign",
    utm_content: "UTM content", utm_term: "UTM term", country: "Country", region: "Region",
    city: "City", language: "Language", os: "OS", os_version: "OS version",
    browser: "Browser", browser_version: "Browser version", platform: "Platform",
    screen_class: "Screen", event: "Event",
  };
  // The filter language's operators: a prefix on each value.
  const OPERATORS = [["", "is"], ["!", "is not"], ["~", "contains"], ["^", "does not contain"]];
  const isFilter = (k) => k in FILTERS || /^(tag|meta)_./.test(k);
  const filterName = (k) => FILTERS[k] || (k.startsWith("tag_") ? "Tag " : "Event meta ") + k.slice(k.indexOf("_") + 1);
  const METRICS = [
    ["visitors", "Visitors", format.number], ["views", "Views", format.number],
    ["sessions", "Sessions", format.number], ["bounce_rate", "Bounce rate", format.percent],
    ["duration", "Session duration", format.duration],
    ["views_per_visit", "Views per visit", format.decimal],
  ];
  const CR = ["cr", "Conversion rate", format.percent];
  const ACTIVE_REFRESH_MS = 30000;

  const dash = {
    site: null, goals: [], funnels: [], loaders: [], tabbed: [], generation: 0,
    FILTERS, OPERATORS, isFilter, filterName, RANGES,
  };
  window.trail.dash = dash;
  let chart = null, chartArgs = null;

  // -- state <-> URL ---------------------------------------------------------------------------

  const pick = (value, choices, fallback) => choices.some(([c]) => c === value) ? value : fallback;

  function state() {
    const q = new URLSearchParams(location.search);
    const tabs = Object.fromEntries(dash.tabbed.map((p) =>
      [p.id, p.tabs.some((t) => t.id === q.get(p.id)) ? q.get(p.id) : p.tabs[0].id]));
    const goal = q.get("goal") || "";
    const metric = pick(q.get("metric"), [...METRICS, CR], "visitors");
    return {
      range: pick(q.get("range"), RANGES, "30d"),
      from: q.get("from") || "", to: q.get("to") || "",
      compare: pick(q.get("compare"), COMPARES, "previous"),
      compareFrom: q.get("compare_from") || "", compareTo: q.get("compare_to") || "",
      scale: pick(q.get("scale"), SCALES, "day"),
      metric: metric === "cr" && !goal ? "visitors" : metric,
      goal, funnel: q.get("funnel") || "", tags: q.get("tags") || "",
      filters: [...q].filter(([k]) => isFilter(k)),
      tabs, // panel id -> its tab
    };
  }

  function navigate(change) {
    const s = { ...state(), ...change };
    const q = new URLSearchParams();
    if (s.range !== "30d") q.set("range", s.range);
    if (s.range === "custom") { q.set("from", s.from); q.set("to", s.to); }
    if (s.compare !== "previous") q.set("compare", s.compare);
    if (s.compare === "custom") { q.set("compare_from", s.compareFrom); q.set("compare_to", s.compareTo); }
    if (s.scale !== "day") q.set("scale", s.scale);
    if (s.metric !== "visitors" && (s.metric !== "cr" || s.goal)) q.set("metric", s.metric);
    if (s.goal) q.set("goal", s.goal);
    if (s.funnel) q.set("funnel", s.funnel);
    if (s.tags) q.set("tags", s.tags);
    for (const p of dash.tabbed) if (s.tabs[p.id] !== p.tabs[0].id) q.set(p.id, s.tabs[p.id]);
    for (const [k, v] of s.filters) q.append(k, v);
    const search = q.toString();
    history.pushState(null, "", location.pathname + (search ? "?" + search : ""));
    render();
  }

  /** Filter pairs grouped into chips: one per parameter and operator, with its values. */
  function chipsOf(filters) {
    const chips = [];
    for (const [key, raw] of filters) {
      const op = raw && "!~^".includes(raw[0]) ? raw[0] : "";
      let chip = chips.find((c) => c.key === key && c.op === op);
      if (!chip) chips.push(chip = { key, op, values: [] });
      chip.values.push(op ? raw.slice(1) : raw);
    }
    return chips;
  }
  const pairsOf = (chips) => chips.flatMap((c) => c.values.map((v) => [c.key, c.op + v]));

  /** The selected goal's conditions as API filters (as the goals report applies them). */
  function goalPairs(s) {
    const goal = dash.goals.find((g) => g.id === s.goal);
    if (!goal) return [];
    const pairs = [];
    if (goal.pattern) pairs.push(["pattern", goal.pattern]);
    if (goal.event_name) pairs.push(["event", goal.event_name]);
    if (goal.event_name && goal.event_meta_key && goal.event_meta_value != null) {
      pairs.push(["meta_" + goal.event_meta_key, goal.event_meta_value]);
    }
    return pairs;
  }

  /** Whether `d` is a real day "YYYY-MM-DD" (not 2026-02-31). */
  const isDay = (d) => /^\d{4}-\d{2}-\d{2}$/.test(d) && !Number.isNaN(Date.parse(d)) &&
    new Date(d + "T00:00:00Z").toISOString().slice(0, 10) === d;
  const isWindow = (from, to) => isDay(from) && isDay(to) && from <= to;

  /** The window of a preset in the site's time zone, and the one it is compared with (none when
   * the comparison is off; the previous period when a custom one is not a valid window). */
  function period(s) {
    const now = today(dash.site.timezone);
    const month = now.slice(0, 8) + "01";
    const windows = {
      today: [now, now], yesterday: [addDays(now, -1), addDays(now, -1)],
      "7d": [addDays(now, -6), now], "30d": [addDays(now, -29), now],
      month: [month, now], lastmonth: [addDays(month, -1).slice(0, 8) + "01", addDays(month, -1)],
      year: [now.slice(0, 5) + "01-01", now],
    };
    let [from, to] = windows[s.range] || [s.from, s.to];
    if (!isWindow(from, to)) [from, to] = windows["30d"];
    if (s.compare === "off") return { from, to, prevFrom: null, prevTo: null };
    if (s.compare === "year") return { from, to, prevFrom: lastYear(from), prevTo: lastYear(to) };
    if (s.compare === "custom" && isWindow(s.compareFrom, s.compareTo)) {
      return { from, to, prevFrom: s.compareFrom, prevTo: s.compareTo };
    }
    const days = daysBetween(from, to) + 1;
    return { from, to, prevFrom: addDays(from, -days), prevTo: addDays(from, -1) };
  }

  /** The same date a year before (29 February becomes the 28th). */
  function lastYear(day) {
    const d = new Date(day + "T00:00:00Z");
    d.setUTCFullYear(d.getUTCFullYear() - 1);
    return d.getUTCDate() === Number(day.slice(8)) ? d.toISOString().slice(0, 10) : addDays(d.toISOString().slice(0, 10), -1);
  }

  const STATISTICS = "/api/v1/statistics/";

  /** The query of a statistics request over window `p` with the view's filters (and goal). */
  function query(p, s, extra) {
    const q = new URLSearchParams({ id: dash.site.id, from: p.from, to: p.to, tz: dash.site.timezone, ...extra });
    for (const [k, v] of [...s.filters, ...goalPairs(s)]) q.append(k, v);
    return q;
  }
  const url = (report, p, s, extra) => `${STATISTICS}${report}?${query(p, s, extra)}`;

  // -- the order of the statistics requests ----------------------------------------------------
  // Chromium sends at most 6 requests to a host at a time (HTTP/1.1) and queues the others in the
  // order they were made. The parts of a render ask for their reports through dash.get, which
  // holds the requests back until every part has asked, then sends them with the slowest reports
  // first (SLOW: the reports that take longest to answer, bench/RESULTS-dashboard.md), so that no
  // slow report waits for a connection behind quick ones. Outside a render, dash.get is get.
  const SLOW = ["page", "funnel", "tags", "goals", "referrer", "session/list"];
  let held = null; // the requests of the render being started: [{address, resolve, reject}]

  function rank(address) {
    const report = address.split("?")[0].slice(STATISTICS.length);
    const i = SLOW.indexOf(report);
    return i < 0 ? SLOW.length : i;
  }

  /** get(address); held back while a render starts its parts (gathered). */
  function statistics(address) {
    if (!held) return get(address);
    return new Promise((resolve, reject) => held.push({ address, resolve, reject }));
  }

  /** Runs `start()` (which starts the parts of a render), then sends what they asked for. */
  function gathered(start) {
    held = [];
    let requests;
    try {
      return start();
    } finally {
      [requests, held] = [held, null];
      requests.sort((a, b) => rank(a.address) - rank(b.address)); // stable: else as asked
      for (const r of requests) get(r.address).then(r.resolve, r.reject);
    }
  }

  // -- controls --------------------------------------------------------------------------------

  function options(select, choices) {
    select.append(...choices.map(([v, label]) => el("option", { value: v }, label)));
  }

  function setupControls() {
    options(slot("range"), RANGES);
    options(slot("compare"), COMPARES);
    options(slot("scale"), SCALES);
    slot("range").addEventListener("change", () => {
      const p = period(state());
      navigate({ range: slot("range").value, from: p.from, to: p.to });
    });
    slot("compare").addEventListener("change", () => {
      const compare = slot("compare").value;
      if (compare !== "custom") return navigate({ compare });
      // A custom comparison starts from the window compared so far (the previous period when off).
      let p = period(state());
      if (!p.prevFrom) p = period({ ...state(), compare: "previous" });
      navigate({ compare, compareFrom: p.prevFrom, compareTo: p.prevTo });
    });
    for (const id of ["compare-from", "compare-to"]) {
      slot(id).addEventListener("change", () => {
        const compareFrom = slot("compare-from").value, compareTo = slot("compare-to").value;
        if (isWindow(compareFrom, compareTo)) navigate({ compare: "custom", compareFrom, compareTo });
      });
    }
    slot("scale").addEventListener("change", () => navigate({ scale: slot("scale").value }));
    for (const id of ["from", "to"]) {
      slot(id).addEventListener("change", () => {
        const from = slot("from").value, to = slot("to").value;
        if (from && to && from <= to) navigate({ range: "custom", from, to });
      });
    }
    setupFilterForm();
    window.addEventListener("popstate", render);
    document.addEventListener("trail:theme", () => chartArgs && drawChart(...chartArgs));
  }

  const dates = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeZone: "UTC" });
  /** Days "YYYY-MM-DD" a to b, as the browser's locale writes a date range. */
  const span = (a, b) => a === b ? dates.format(new Date(a + "T00:00:00Z"))
    : dates.formatRange(new Date(a + "T00:00:00Z"), new Date(b + "T00:00:00Z"));

  function showControls(s, p) {
    slot("range").value = s.range;
    slot("compare").value = s.compare;
    slot("scale").value = s.scale;
    slot("scale").disabled = p.from === p.to;
    slot("custom").hidden = s.range !== "custom";
    slot("from").value = p.from;
    slot("to").value = p.to;
    slot("compare-custom").hidden = s.compare !== "custom";
    slot("compare-from").value = p.prevFrom || "";
    slot("compare-to").value = p.prevTo || "";
    slot("period").textContent = `${span(p.from, p.to)} (${dash.site.timezone})` +
      (p.prevFrom ? `, compared with ${span(p.prevFrom, p.prevTo)}` : "");
    showChips(s);
  }

  // -- filter chips and the filter form --------------------------------------------------------

  function chipText(c) {
    const op = OPERATORS.find(([o]) => o === c.op)[1];
    return `${filterName(c.key)} ${op} ${c.values.join(c.op === "" || c.op === "~" ? " or " : ", ")}`;
  }

  function showChips(s) {
    const chips = chipsOf(s.filters);
    const items = chips.map((c, i) => {
      const text = chipText(c);
      return el("li", { className: "chip" },
        el("button", { type: "button", className: "chip-edit", "aria-label": "Edit filter: " + text,
          onclick: (e) => openFilterForm(i, e.currentTarget) }, text),
        el("button", { type: "button", className: "chip-remove", "aria-label": "Remove filter: " + text,
          onclick: () => navigate({ filters: pairsOf(chips.filter((_, j) => j !== i)) }) }, "×"));
    });
    const goal = dash.goals.find((g) => g.id === s.goal);
    if (goal) {
      items.push(el("li", { className: "chip goal" }, el("span", {}, "Goal: " + goal.name),
        el("button", { type: "button", className: "chip-remove", "aria-label": "Remove goal: " + goal.name,
          onclick: () => navigate({ goal: "", metric: s.metric === "cr" ? "visitors" : s.metric }) }, "×")));
    }
    items.push(el("li", {}, el("button", { type: "button", id: "add-filter", className: "quiet",
      onclick: (e) => openFilterForm(-1, e.currentTarget) }, "+ Filter")));
    slot("filters").replaceChildren(...items);
  }

  let formChip = -1, formOpener = null;

  function setupFilterForm() {
    const keys = slot("filter-key");
    options(keys, Object.entries(FILTERS).sort((a, b) => a[1].localeCompare(b[1])));
    options(slot("filter-op"), OPERATORS);
    keys.addEventListener("change", () => limitOperators());
    slot("filter-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const values = slot("filter-values").value.split("\n").map((v) => v.trim()).filter(Boolean);
      if (!values.length) {
        slot("filter-values-error").textContent = "Enter at least one value.";
        slot("filter-values").setAttribute("aria-invalid", "true");
        slot("filter-values").focus();
        return;
      }
      const chips = chipsOf(state().filters);
      const chip = { key: keys.value, op: slot("filter-op").value, values };
      if (formChip >= 0) chips[formChip] = chip; else chips.push(chip);
      closeFilterForm(false);
      navigate({ filters: pairsOf(chips) });
      slot("add-filter")?.focus();
    });
    slot("filter-cancel").addEventListener("click", () => closeFilterForm(true));
    slot("filter-form").addEventListener("keydown", (e) => { if (e.key === "Escape") closeFilterForm(true); });
  }

  /** Platforms take "is" and "is not" only (the API's rule). */
  function limitOperators() {
    const platform = slot("filter-key").value === "platform";
    for (const o of slot("filter-op").options) o.disabled = platform && (o.value === "~" || o.value === "^");
    if (slot("filter-op").selectedOptions[0]?.disabled) slot("filter-op").value = "";
  }

  function openFilterForm(index, opener) {
    const chip = chipsOf(state().filters)[index];
    formChip = index;
    formOpener = opener;
    const keys = slot("filter-key");
    if (chip && !FILTERS[chip.key]) keys.append(el("option", { value: chip.key }, filterName(chip.key)));
    keys.value = chip ? chip.key : "path";
    keys.disabled = !!chip;
    slot("filter-op").value = chip ? chip.op : "";
    limitOperators();
    slot("filter-values").value = chip ? chip.values.join("\n") : "";
    slot("filter-values").removeAttribute("aria-invalid");
    slot("filter-values-error").textContent = "";
    slot("filter-legend").textContent = chip ? "Edit filter: " + chipText(chip) : "Add a filter";
    slot("filter-form").hidden = false;
    (chip ? slot("filter-op") : keys).focus();
  }

  function closeFilterForm(refocus) {
    slot("filter-form").hidden = true;
    if (refocus && formOpener && formOpener.isConnected) formOpener.focus();
  }

  function addFilter(key, value) {
    const filters = state().filters.filter(([k]) => k !== key);
    navigate({ filters: [...filters, [key, value]] });
  }

  // -- live visitors ---------------------------------------------------------------------------

  let activeTimer = 0;

  async function loadActive(s) {
    const box = slot("active");
    const q = query({ from: "", to: "" }, s);
    q.delete("from");
    q.delete("to");
    try {
      const answer = await statistics(STATISTICS + "active?" + q);
      box.replaceChildren(el("span", { className: "dot", "aria-hidden": "true" }),
        num(answer.visitors, format.number(answer.visitors)), " ",
        answer.visitors === 1 ? "visitor now" : "visitors now");
      box.title = "Visitors in the last minutes, refreshed every 30 seconds";
    } catch (e) {
      box.replaceChildren("Live visitors unavailable: " + e.message);
      throw e;
    }
  }

  function scheduleActive() {
    clearInterval(activeTimer);
    activeTimer = setInterval(() => {
      if (document.visibilityState === "visible") loadActive(state()).catch(() => {});
    }, ACTIVE_REFRESH_MS);
  }

  // -- top stats and chart ---------------------------------------------------------------------

  function num(value, text) {
    return el("span", { className: "num", "data-value": String(value) }, text);
  }
  dash.num = num;

  const bucket = (r, scale) => r[scale] || r.day || r.week || r.month;

  /** Session duration over a window: the buckets' averages weighted by their sessions. */
  function meanDuration(durations, series, scale) {
    const sessions = new Map(series.map((r) => [bucket(r, scale), r.sessions]));
    let sum = 0, weight = 0;
    for (const d of durations) {
      const w = sessions.get(bucket(d, scale)) || 0;
      sum += d.average_time_spent_seconds * w;
      weight += w;
    }
    return weight ? sum / weight : 0;
  }

  function summary(total, durations, series, scale) {
    return {
      visitors: total.visitors, views: total.views, sessions: total.sessions,
      bounce_rate: total.bounce_rate, duration: meanDuration(durations, series, scale),
      views_per_visit: total.sessions ? total.views / total.sessions : 0, cr: total.cr,
    };
  }

  /** The top stats' and the chart's figures of window `w`: its total, its buckets and their
   * session durations, and its hours when `byHour` (a one-day range is charted by hour, and so
   * is the window it is compared with). */
  async function figures(w, s, scale, byHour) {
    const [total, series, durations, hours] = await Promise.all([
      statistics(url("total", w, s)), statistics(url("visitor", w, s, scale)),
      statistics(url("duration/session", w, s, scale)), byHour ? statistics(url("hours", w, s)) : null,
    ]);
    return { total, series, durations, hours, summary: summary(total, durations, series, scale.scale) };
  }

  /** What the comparison window is called, in a sentence ("against ...") and in the legend. */
  function compared(s, p) {
    if (s.compare === "year") return ["the previous year", "Previous year"];
    if (s.compare === "custom") return [span(p.prevFrom, p.prevTo), "Compared period"];
    return ["the previous period", "Previous period"];
  }

  /** A top stat's change against the comparison window: nothing when the comparison is off, "–"
   * when the window had none of it. */
  function changeOf(key, cur, old, against) {
    if (!old) return null;
    const change = old[key] ? (cur[key] - old[key]) / old[key] : null;
    const better = key === "bounce_rate" ? change < 0 : change > 0;
    return el("span", { className: "change " + (change === null || change === 0 ? "" : better ? "up" : "down"),
      title: "Change against " + against, "data-value": change === null ? "" : String(change) },
    change === null ? "–" : (change > 0 ? "+" : "") + format.percent(change));
  }

  async function loadTop(s, p, gen) {
    const box = slot("top-stats");
    box.setAttribute("aria-busy", "true");
    const scale = { scale: p.from === p.to ? "day" : s.scale };
    const byHour = p.from === p.to;
    const [current, previous] = await Promise.all([figures(p, s, scale, byHour),
      p.prevFrom ? figures({ from: p.prevFrom, to: p.prevTo }, s, scale, byHour) : null,
    ]).catch((e) => { if (gen === dash.generation) failTop(e); throw e; });
    if (gen !== dash.generation) return;
    const cur = current.summary, old = previous && previous.summary;
    const shown = s.goal && goalPairs(s).length ? [...METRICS, CR] : METRICS;
    box.replaceChildren(...shown.map(([key, label, fmt]) => el("li", {}, el("button", {
      type: "button", className: "stat", id: "stat-" + key, "aria-pressed": String(s.metric === key),
      onclick: () => navigate({ metric: key }),
    }, el("span", { className: "label" }, label), num(cur[key], fmt(cur[key])), changeOf(key, cur, old, compared(s, p)[0])))));
    box.removeAttribute("aria-busy");
    chartArgs = [s, p, current, previous];
    drawChart(...chartArgs);
  }

  function failTop(e) {
    slot("top-stats").replaceChildren(el("li", { className: "error" }, "Top statistics failed: " + e.message));
    slot("top-stats").removeAttribute("aria-busy");
  }

  function ratio(r, metric) {
    if (metric === "views_per_visit") return r.sessions ? r.views / r.sessions : 0;
    return r[metric] ?? 0;
  }

  /** The metric's points of one window: its buckets (or hours) as x, the values as y. */
  function points(metric, scale, { series, durations, hours }) {
    if (hours) {
      return [hours.map((h) => h.hour), hours.map((h) => metric === "duration" ? null : ratio(h, metric))];
    }
    const byBucket = new Map(durations.map((d) => [bucket(d, scale), d.average_time_spent_seconds]));
    return [series.map((r) => Date.parse(bucket(r, scale)) / 1000),
      series.map((r) => metric === "duration" ? byBucket.get(bucket(r, scale)) ?? 0 : ratio(r, metric))];
  }

  /** The chart of the current window, and the comparison window's values (when there is one) as
   * a dashed line aligned by position (its first bucket under the current window's first). */
  function drawChart(s, p, current, previous) {
    const [, label, fmt] = [...METRICS, CR].find(([m]) => m === s.metric);
    const hours = !!current.hours;
    const scale = hours ? "hour" : s.scale;
    const [xs, ys] = points(s.metric, scale, current);
    const before = previous ? points(s.metric, scale, previous)[1] : [];
    const cmp = xs.map((_, i) => before[i] ?? null);
    const [, comparedLabel] = compared(s, p);
    const box = slot("chart");
    box.setAttribute("aria-label", `${label} by ${scale}`);
    box.dataset.points = String(xs.length);
    slot("chart-legend").replaceChildren(
      el("li", { className: "current" }, el("span", { className: "swatch", "aria-hidden": "true" }),
        `${label}, ${span(p.from, p.to)}`, el("span", { className: "sr-only" }, " (solid line)")),
      ...(previous ? [el("li", { className: "compared" }, el("span", { className: "swatch", "aria-hidden": "true" }),
        `${comparedLabel}, ${span(p.prevFrom, p.prevTo)}`, el("span", { className: "sr-only" }, " (dashed line)"))] : []));
    slot("chart-title").textContent = label;
    if (chart) chart.destroy();
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue("--fg").trim(), line = css.getPropertyValue("--line").trim();
    const accent = css.getPropertyValue("--accent").trim();
    const axis = { stroke: fg, grid: { stroke: line, width: 1 }, ticks: { stroke: line } };
    chart = new window.uPlot({
      width: Math.max(280, box.clientWidth), height: 240, legend: { show: false },
      tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: { x: { time: !hours }, y: { range: (u, lo, hi) => [0, Math.max(hi, 1) * 1.1] } },
      axes: [{ ...axis, values: hours ? (u, v) => v.map((h) => h + ":00") : undefined },
        { ...axis, size: 60, values: (u, v) => v.map(fmt) }],
      series: [{}, { label, stroke: accent, width: 2, fill: accent + "22", points: { show: xs.length < 60 } },
        ...(previous ? [{ label: comparedLabel, stroke: fg + "99", width: 1.5, dash: [6, 4], points: { show: false } }] : [])],
    }, previous ? [xs, ys, cmp] : [xs, ys], box);
    dash.chart = chart; // its data is what the browser tests compare with the API
  }

  // -- rendering -------------------------------------------------------------------------------

  function render() {
    const s = state();
    const p = period(s);
    const gen = ++dash.generation;
    document.body.dataset.loading = String(gen);
    showControls(s, p);
    const tasks = gathered(() => [loadActive(s), loadTop(s, p, gen), ...dash.loaders.map((load) => load(s, p, gen))]);
    Promise.allSettled(tasks).then((results) => {
      if (gen !== dash.generation) return;
      document.body.dataset.failed = String(results.filter((r) => r.status === "rejected").length);
      document.body.dataset.loaded = String(gen);
      performance.mark("ready");
    });
    scheduleActive();
  }

  Object.assign(dash, { state, navigate, period, query, url, get: statistics, addFilter, chipsOf, pairsOf, render });

  async function boot() {
    // The session, the domain and its goals and funnels in one round trip: the statistics wait
    // for the domain's time zone, and goals and funnels (definitions the panels and the goal
    // filter need) are asked by the page's domain id; either may fail alone.
    const byId = "?" + new URLSearchParams({ id: siteId });
    const [session, found, goals, funnels] = await Promise.all([start(),
      get("/api/v1/domain" + byId).catch(() => []),
      get("/api/v1/goal" + byId).catch(() => []), get("/api/v1/funnel" + byId).catch(() => [])]);
    if (!session) return;
    dash.site = found[0];
    if (!dash.site) {
      slot("site-name").textContent = "Site not found";
      const box = slot("site-error");
      box.textContent = "No site with this id is visible to you.";
      box.hidden = false;
      return;
    }
    const site = dash.site;
    slot("site-name").textContent = site.display_name || site.hostname;
    // Settings are for the site's Admins and Owners, never on a shared dashboard.
    const settings = slot("settings-link");
    if (settings && !window.trail.shared && ["Admin", "Owner"].includes(site.user_role)) {
      settings.href = `/sites/${encodeURIComponent(site.id)}/settings`;
      settings.setAttribute("aria-label", `Settings of ${site.display_name || site.hostname}`);
      settings.hidden = false;
    }
    document.title = `${site.display_name || site.hostname} · trail`;
    dash.goals = goals;
    dash.funnels = funnels;
    setupControls();
    document.dispatchEvent(new Event("trail:site"));
    new ResizeObserver(() => chart && chart.setSize({ width: Math.max(280, slot("chart").clientWidth), height: 240 }))
      .observe(slot("chart"));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") loadActive(state()).catch(() => {});
    });
    render();
  }
  document.addEventListener("DOMContentLoaded", boot);
})();
