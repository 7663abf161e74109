// A site's settings, one section per management endpoint of the API (the same calls an SDK
// makes): general (hostname, time zone, public, delete), the snippet, access keys and clients,
// members and invitations, goals, funnels, traffic filters, alternative domains, access links,
// webhooks, email reports and traffic alerts. A 400's `validation` shows next to the field it
// names, the message in the form's alert box. The server only serves this page to Admins and
// Owners of the site.
"use strict";
(function () {
  const { call, get, start, el } = window.trail;
  const slot = (id) => document.getElementById(id);
  const siteId = decodeURIComponent(location.pathname.split("/")[2] || "");
  const q = (params) => "?" + new URLSearchParams(params);
  let site = null;

  // -- forms -----------------------------------------------------------------------------------

  /** A labelled control: {name, label, type?, value?, options?: [[value, label]], hint?}. */
  function field(prefix, f) {
    const id = `${prefix}-${f.name}`;
    const hint = f.hint ? el("p", { id: id + "-hint", className: "hint" }, f.hint) : null;
    const error = el("p", { id: id + "-error", className: "field-error", hidden: true });
    const props = { id, name: f.name, "aria-describedby": [hint && id + "-hint", id + "-error"].filter(Boolean).join(" ") };
    if (f.type === "checkbox") {
      const box = el("input", { ...props, type: "checkbox", checked: !!f.value });
      return el("div", { className: "field full" }, el("label", { className: "check", htmlFor: id }, box, f.label), hint, error);
    }
    const control = f.type === "select"
      ? el("select", props, ...f.options.map(([v, label]) => el("option", { value: v, selected: v === f.value }, label)))
      : el("input", { ...props, type: f.type || "text", value: f.value ?? "", placeholder: f.placeholder, autocomplete: "off" });
    return el("div", { className: "field" + (f.full ? " full" : "") }, el("label", { htmlFor: id }, f.label), control, hint, error);
  }

  function values(form) {
    const out = {};
    for (const c of form.querySelectorAll("input[name], select[name]")) {
      if (c.closest(".step")) continue;
      out[c.name] = c.type === "checkbox" ? c.checked : c.value.trim();
    }
    return out;
  }

  function clearErrors(form) {
    form.querySelectorAll(".field-error, .error").forEach((p) => { p.hidden = true; p.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach((c) => c.removeAttribute("aria-invalid"));
    const status = form.querySelector(".saved");
    if (status) status.textContent = "";
  }

  /** The API's problems next to their fields (`locate` maps a name to a field's id prefix). */
  function showErrors(form, prefix, answer, locate) {
    for (const [name, problem] of Object.entries(answer.data.validation || {})) {
      const id = (locate && locate(name)) || `${prefix}-${name}`;
      const box = slot(id + "-error");
      if (!box || !form.contains(box)) continue;
      box.textContent = problem;
      box.hidden = false;
      slot(id)?.setAttribute("aria-invalid", "true");
    }
    const alert = form.querySelector(".error");
    alert.textContent = (answer.data.error || [])[0] || `Something went wrong (HTTP ${answer.status}).`;
    alert.hidden = false;
    (form.querySelector("[aria-invalid=true]") || alert).focus();
  }

  /** A form whose submit runs `send(values)` (an API answer); `done(answer)` after a success. */
  function form(prefix, fields, label, send, done, opts = {}) {
    const node = el("form", { id: prefix, noValidate: true },
      ...fields.map((f) => field(prefix, f)), ...(opts.extra || []),
      el("p", { className: "error full", role: "alert", tabIndex: -1, hidden: true }),
      el("div", { className: "actions" },
        el("button", { type: "submit", className: opts.danger ? "danger" : "" }, label),
        el("span", { className: "saved", role: "status" })));
    node.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(node);
      const answer = await send(values(node), node);
      if (!answer) return;
      if (!answer.ok) return showErrors(node, prefix, answer, opts.locate);
      node.querySelector(".saved").textContent = opts.saved || "Saved.";
      if (done) await done(answer, node);
    });
    return node;
  }

  /** A local problem shown as the API shows its own. */
  const problem = (name, text) => ({ ok: false, status: 400, data: { validation: { [name]: text }, error: [text] } });
  const orNull = (v) => v || null;
  const list = (v) => v.split(/[\s,]+/).filter(Boolean);

  // -- sections --------------------------------------------------------------------------------

  function section(id, title, ...intro) {
    slot("toc").append(el("li", {}, el("a", { href: "#" + id }, title)));
    const body = el("section", { id, className: "card", "aria-labelledby": id + "-title" },
      el("h2", { id: id + "-title" }, title), ...intro.map((text) => el("p", { className: "hint" }, text)));
    slot("sections").append(body);
    return body;
  }

  /** The records of `url` as a list, each with a delete button (`remove(rec)` -> [url, body?]). */
  function records(label, url, describe, remove, extra) {
    const ul = el("ul", { className: "records", "aria-label": label, "aria-live": "polite" });
    async function refresh() {
      let recs;
      try {
        recs = await get(url);
      } catch (e) {
        ul.replaceChildren(el("li", { className: "error" }, e.message));
        return;
      }
      ul.replaceChildren(...recs.map((rec) => {
        const name = describe(rec);
        const [target, body] = remove(rec);
        const failure = el("span", { className: "error", role: "alert", hidden: true });
        const del = el("button", { type: "button", className: "inline danger", "aria-label": `Delete ${name[0]}`,
          onclick: async () => {
            const answer = await call("DELETE", target, body);
            if (answer.ok) return refresh();
            failure.textContent = (answer.data.error || [])[0] || `HTTP ${answer.status}`;
            failure.hidden = false;
          } }, "Delete");
        return el("li", {}, el("span", { className: "what" }, ...name), ...(extra ? extra(rec, refresh) : []), del, failure);
      }));
      if (!recs.length) ul.append(el("li", {}, "None yet."));
    }
    refresh();
    return { node: ul, refresh };
  }

  /** A section listing records with a form that adds one. */
  function collection(id, title, intro, { label, url, describe, remove, extra, fields, add, send, locate, formExtra, done }) {
    const body = section(id, title, ...intro);
    const shown = records(label, url, describe, remove, extra);
    body.append(shown.node, el("h3", {}, add), form(id + "-add", fields, add, send, async (answer, node) => {
      node.reset();
      if (done) done(answer, node);
      await shown.refresh();
    }, { locate, extra: formExtra && formExtra() }));
    return body;
  }

  const post = (url, fields) => call("POST", url, { domain_id: site.id, ...fields });
  const when = (ts) => ts ? new Date(ts).toLocaleString() : "never";

  function general() {
    const body = section("general", "General");
    const zones = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [];
    if (!zones.includes(site.timezone)) zones.unshift(site.timezone);
    if (!zones.includes("UTC")) zones.unshift("UTC");
    const shareLink = el("p", { id: "share-link", className: "hint" });
    const showShare = () => {
      const url = `${location.origin}/share/${encodeURIComponent(site.id)}`;
      shareLink.replaceChildren(...(site.public ? ["Anyone can read it at ", el("a", { href: url }, url)] : ["Only members can read the dashboard."]));
    };
    showShare();
    const publicBox = field("general", { name: "public", type: "checkbox", value: site.public,
      label: "Public dashboard: anyone with its link can read the statistics (not change anything)" });
    publicBox.append(shareLink);
    const publicError = el("p", { className: "error", role: "alert", tabIndex: -1, hidden: true });
    publicBox.querySelector("input").addEventListener("change", async (event) => {
      publicError.hidden = true;
      const answer = await post("/api/v1/domain/public", {});
      if (answer.ok) site = answer.data;
      else { publicError.textContent = (answer.data.error || [])[0] || `HTTP ${answer.status}`; publicError.hidden = false; }
      event.target.checked = !!site.public;
      showShare();
    });
    body.append(
      form("general-hostname", [{ name: "hostname", label: "Hostname", value: site.hostname, hint: "Hits from other hosts are refused unless listed under alternative domains." }],
        "Save hostname", (v) => post("/api/v1/domain/hostname", { hostname: v.hostname }), (a) => { site = a.data; }),
      form("general-timezone", [{ name: "timezone", label: "Time zone", type: "select", value: site.timezone, options: zones.map((z) => [z, z]), hint: "Days and hours on the dashboard follow this zone." }],
        "Save time zone", (v) => post("/api/v1/domain/timezone", { timezone: v.timezone }), (a) => { site = a.data; }),
      publicBox, publicError,
      el("h3", {}, "Delete this site"),
      el("p", {}, "Deleting removes the site, its statistics and every setting on this page. It cannot be undone."),
      form("general-delete", [{ name: "confirm", label: `Type ${site.hostname} to confirm` }], "Delete site",
        async (v) => v.confirm !== site.hostname
          ? problem("confirm", `type ${site.hostname} to confirm`)
          : call("DELETE", "/api/v1/domain" + q({ id: site.id })),
        () => location.replace("/sites"), { danger: true }));
  }

  function snippet() {
    const tag = `<script defer data-id="${site.id}" src="${location.origin}/js/tracker.js"></script>`;
    section("snippet", "Snippet", `Paste this into the <head> of every page of ${site.hostname}:`)
      .append(el("pre", { tabIndex: 0 }, el("code", { id: "snippet-code" }, tag)));
  }

  function clients() {
    const secret = el("div", { id: "client-secret", className: "secret", role: "status", hidden: true });
    const body = collection("clients", "Access keys and OAuth clients",
      ["An access key sends hits and events from a server (Pirsch SDKs); an OAuth client also reads statistics. The secret is shown once, when it is created."], {
        label: "Access keys and clients", url: "/api/v1/client" + q({ id: site.id }),
        describe: (c) => [c.description || "(no description)", ` · ${c.type === "token" ? "access key" : "OAuth client"}`, c.client_id ? ` · id ${c.client_id}` : ""],
        remove: (c) => ["/api/v1/client" + q({ id: c.id })],
        add: "Create",
        fields: [
          { name: "type", label: "Type", type: "select", value: "token", options: [["token", "Access key (sends hits)"], ["oauth", "OAuth client (reads and sends)"]] },
          { name: "description", label: "Description" },
        ],
        send: (v) => post("/api/v1/client", { type: v.type, description: v.description }),
        done: (answer) => {
          const c = answer.data;
          secret.replaceChildren(el("strong", {}, "Copy the secret now, it is not shown again."),
            ...(c.type === "oauth" ? [el("p", {}, "Client id: ", el("code", {}, c.client_id))] : []),
            el("p", {}, "Secret: ", el("code", { id: "client-secret-value" }, c.client_secret)));
          secret.hidden = false;
        },
      });
    body.append(secret);
  }

  function members() {
    const roles = [["Viewer", "Viewer"], ["Admin", "Admin"]];
    const invitations = records("Invitations", "/api/v1/invitation" + q({ domain_id: site.id }),
      (i) => [i.email], (i) => ["/api/v1/invitation", { domain_id: site.id, id: i.id }]);
    const body = collection("members", "Members", ["Viewers read the dashboard; Admins also change these settings."], {
      label: "Members", url: "/api/v1/member" + q({ id: site.id }),
      describe: (m) => [(m.user || {}).email || m.user_id],
      remove: (m) => ["/api/v1/member" + q({ id: m.id })],
      extra: (m, refresh) => {
        const id = "member-role-" + m.id;
        const select = el("select", { id, onchange: async () => {
          const answer = await call("PUT", "/api/v1/member", { id: m.id, role: select.value.toLowerCase() });
          if (!answer.ok) refresh();
        } }, ...roles.map(([v, l]) => el("option", { value: v, selected: v.toLowerCase() === String(m.role).toLowerCase() }, l)));
        return [el("label", { htmlFor: id, className: "sr-only" }, `Role of ${(m.user || {}).email || m.user_id}`), select];
      },
      add: "Invite",
      fields: [{ name: "emails", label: "Email addresses", hint: "Separated by commas; new members start as Viewers.", full: true }],
      send: (v) => call("POST", "/api/v1/member", { id: site.id, emails: list(v.emails) }),
      done: () => invitations.refresh(),
    });
    body.append(el("h3", {}, "Open invitations"), invitations.node);
  }

  function goals() {
    collection("goals", "Goals", ["A goal is reached by a page view whose path matches the pattern (* for one path segment, ** for any) or by an event."], {
      label: "Goals", url: "/api/v1/goal" + q({ id: site.id }),
      describe: (g) => [g.name, ` · ${g.pattern || g.path_pattern || ""}${g.event_name ? " event " + g.event_name : ""}`],
      remove: (g) => ["/api/v1/goal" + q({ id: g.id })],
      add: "Add goal",
      fields: [
        { name: "name", label: "Name" },
        { name: "path_pattern", label: "Path pattern", placeholder: "/checkout/**" },
        { name: "event_name", label: "Event name" },
      ],
      send: (v) => post("/api/v1/goal", { name: v.name, path_pattern: orNull(v.path_pattern), event_name: orNull(v.event_name) }),
    });
  }

  const STEP_FILTERS = [
    ["path", "Page"], ["path_pattern", "Page pattern"], ["entry_path", "Entry page"], ["event_name", "Event"],
    ["referrer_name", "Referrer"], ["utm_source", "UTM source"], ["utm_campaign", "UTM campaign"],
    ["country", "Country code"], ["language", "Language"], ["platform", "Platform"],
  ];

  function funnels() {
    const steps = el("div", { className: "full", id: "funnel-steps" });
    let count = 0;
    function addStep() {
      const i = count++;
      const prefix = `funnels-add-step${i}`;
      const box = el("fieldset", { className: "step" }, el("legend", {}, `Step ${i + 1}`),
        field(prefix, { name: "name", label: "Step name" }),
        field(prefix, { name: "param", label: "Matches", type: "select", value: "path", options: STEP_FILTERS }),
        field(prefix, { name: "value", label: "Value", placeholder: "/pricing" }));
      steps.append(box);
    }
    const more = el("button", { type: "button", className: "inline", onclick: () => addStep() }, "Add a step");
    const reset = () => { steps.replaceChildren(); count = 0; addStep(); addStep(); };
    reset();
    collection("funnels", "Funnels", ["A funnel counts the visitors who went through its steps in order, each step a filter."], {
      label: "Funnels", url: "/api/v1/funnel" + q({ id: site.id }),
      describe: (f) => [f.name, ` · ${(f.steps || []).map((s) => s.name).join(" → ")}`],
      remove: (f) => ["/api/v1/funnel" + q({ id: f.id })],
      add: "Add funnel",
      fields: [{ name: "name", label: "Name", full: true }],
      formExtra: () => [steps, el("div", { className: "full" }, more)],
      locate: (name) => {
        const m = /^steps\[(\d+)\](?:\.(name))?/.exec(name);
        return m ? `funnels-add-step${m[1]}-${m[2] || "value"}` : null;
      },
      send: (v) => post("/api/v1/funnel", {
        name: v.name,
        steps: [...steps.children].map((box, i) => {
          const get = (n) => box.querySelector(`[name=${n}]`).value.trim();
          return { name: get("name") || `Step ${i + 1}`, filter: { [get("param")]: [get("value")] } };
        }),
      }),
      done: reset,
    });
  }

  function trafficFilters() {
    collection("filters", "Traffic filters", ["Hits that match a filter are not counted."], {
      label: "Traffic filters", url: "/api/v1/filter" + q({ domain_id: site.id }),
      describe: (f) => [`${f.type}: ${f.filter}`, f.description ? ` · ${f.description}` : ""],
      remove: (f) => ["/api/v1/filter" + q({ id: f.id })],
      add: "Add filter",
      fields: [
        { name: "type", label: "Type", type: "select", value: "ip", options: [["ip", "IP address or range"], ["path", "Path"], ["user_agent", "User agent"], ["hostname", "Hostname"], ["country", "Country code"]] },
        { name: "filter", label: "Filter" },
        { name: "description", label: "Description" },
      ],
      send: (v) => post("/api/v1/filter", v),
    });
  }

  function alternatives() {
    collection("alternatives", "Alternative domains", ["Other hostnames whose hits count for this site."], {
      label: "Alternative domains", url: "/api/v1/domain/alternative" + q({ domain_id: site.id }),
      describe: (a) => [a.hostname], remove: (a) => ["/api/v1/domain/alternative" + q({ id: a.id })],
      add: "Add domain",
      fields: [{ name: "hostname", label: "Hostname", placeholder: "blog.example.com" }],
      send: (v) => post("/api/v1/domain/alternative", v),
    });
  }

  function accessLinks() {
    collection("links", "Access links", ["An access link opens this dashboard read-only, without signing in, until it expires."], {
      label: "Access links", url: "/api/v1/domain/link" + q({ domain_id: site.id }),
      describe: (l) => [l.description || "(no description)", ` · valid until ${when(l.valid_until)} · `,
        el("a", { href: `/share/${encodeURIComponent(site.id)}/${encodeURIComponent(l.code)}` }, "open")],
      remove: (l) => ["/api/v1/domain/link" + q({ id: l.id })],
      add: "Create link",
      fields: [
        { name: "description", label: "Description" },
        { name: "valid_until", label: "Valid until (empty: no end)", type: "datetime-local" },
      ],
      send: (v) => post("/api/v1/domain/link", {
        description: v.description, valid_until: v.valid_until ? new Date(v.valid_until).toISOString() : null,
      }),
    });
  }

  function webhooks() {
    collection("webhooks", "Webhooks", ["trail posts to the endpoint when the event happens."], {
      label: "Webhooks", url: "/api/v1/webhook" + q({ domain_id: site.id }),
      describe: (w) => [`${w.event} → ${w.endpoint}`, w.active === false ? " · disabled" : ""],
      remove: (w) => ["/api/v1/webhook" + q({ id: w.id })],
      add: "Add webhook",
      fields: [
        { name: "event", label: "Event" },
        { name: "endpoint", label: "Endpoint URL", type: "url", placeholder: "https://example.com/hook" },
        { name: "description", label: "Description" },
      ],
      send: (v) => post("/api/v1/webhook", v),
    });
  }

  function reports() {
    const intervals = [["0", "Daily"], ["1", "Weekly"], ["2", "Every 2 weeks"], ["4", "Every 4 weeks"]];
    collection("reports", "Email reports", ["A summary of the site's statistics by email."], {
      label: "Email reports", url: "/api/v1/report" + q({ id: site.id }),
      describe: (r) => [r.email, ` · ${(intervals.find(([v]) => Number(v) === r.interval) || [0, `every ${r.interval} weeks`])[1]} · next ${when(r.next_report)}`],
      remove: (r) => ["/api/v1/report" + q({ id: r.id })],
      add: "Add report",
      fields: [
        { name: "emails", label: "Email addresses", hint: "Separated by commas." },
        { name: "interval", label: "How often", type: "select", value: "1", options: intervals },
        { name: "link_to", label: "Links to", type: "select", value: "dashboard", options: [["dashboard", "The dashboard"], ["public", "The public dashboard"]] },
      ],
      send: (v) => post("/api/v1/report", { emails: list(v.emails), interval: Number(v.interval), link_to: v.link_to }),
    });
  }

  function alerts() {
    const body = section("alerts", "Traffic alerts", "A spike alert mails the members when this many visitors are on the site at once; a warning when no visitor came for this many days.");
    for (const [kind, title, unit] of [["spike", "Traffic spikes", "Visitors at once"], ["warning", "No traffic", "Days without visitors"]]) {
      const state = el("p", { id: `alert-${kind}-state`, role: "status" });
      const show = (a) => { if (a.ok) state.textContent = `${title}: ${a.data.enabled ? "on" : "off"}, threshold ${a.data.threshold}.`; };
      const toggle = el("button", { type: "button", className: "inline", onclick: async () => show(await call("PUT", `/api/v1/traffic/${kind}`, { domain_id: site.id })) }, `Switch ${title.toLowerCase()} on or off`);
      body.append(el("h3", {}, title),
        form(`alert-${kind}`, [{ name: "threshold", label: unit, type: "number" }], "Save threshold",
          (v) => post(`/api/v1/traffic/${kind}`, { threshold: v.threshold === "" ? null : Number(v.threshold) }), show),
        toggle, state);
    }
  }

  (async () => {
    if (!(await start())) return;
    const found = await get("/api/v1/domain" + q({ id: siteId })).catch(() => []);
    site = found[0];
    if (!site) {
      slot("site-name").textContent = "Site not found";
      const box = slot("site-error");
      box.textContent = "No site with this id is visible to you.";
      box.hidden = false;
      return;
    }
    const name = site.display_name || site.hostname;
    slot("site-name").textContent = `Settings of ${name}`;
    document.title = `Settings · ${name} · trail`;
    slot("back").href = "/sites/" + encodeURIComponent(site.id);
    for (const build of [general, snippet, clients, members, goals, funnels, trafficFilters, alternatives, accessLinks, webhooks, reports, alerts]) {
      build();
    }
    document.body.dataset.ready = "1";
  })();
})();
