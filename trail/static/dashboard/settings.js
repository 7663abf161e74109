// A site's settings, one section per management endpoint of the API (the same calls an SDK
// makes): general (hostname, time zone, subdomain, live window, custom domain, metadata, the
// domain's switches, delete), the theme of shared dashboards, themes, the snippet, access keys
// and clients, members and invitations, goals, funnels, traffic filters, alternative domains,
// access links, webhooks, email reports and traffic alerts. A record whose type the API can
// update has an Edit button that opens its form filled in. A 400's `validation` shows next to
// the field it names, the message in the form's alert box. The server only serves this page to
// Admins and Owners of the site.
"use strict";
(function () {
  const { call, get, start, el } = window.trail;
  const slot = (id) => document.getElementById(id);
  const siteId = decodeURIComponent(location.pathname.split("/")[2] || "");
  const q = (params) => "?" + new URLSearchParams(params);
  let site = null;
  let csrf = "";

  // -- forms -----------------------------------------------------------------------------------

  /** A labelled control: {name, label, type?, value?, options?: [[value, label]], hint?, accept?}. */
  function field(prefix, f) {
    const id = `${prefix}-${f.name}`;
    const hint = f.hint ? el("p", { id: id + "-hint", className: "hint" }, f.hint) : null;
    const error = el("p", { id: id + "-error", className: "field-error", hidden: true });
    const props = { id, name: f.name, "aria-describedby": [hint && id + "-hint", id + "-error"].filter(Boolean).join(" ") };
    if (f.type === "checkbox") {
      const box = el("input", { ...props, type: "checkbox", checked: !!f.value });
      return el("div", { className: "field full" }, el("label", { className: "check", htmlFor: id }, box, f.label), hint, error);
    }
    let control;
    if (f.type === "select") {
      const options = f.options.some(([v]) => v === f.value) || f.value === undefined ? f.options : [...f.options, [f.value, f.value]];
      control = el("select", props, ...options.map(([v, label]) => el("option", { value: v, selected: v === f.value }, label)));
    } else if (f.type === "file") {
      control = el("input", { ...props, type: "file", accept: f.accept });
    } else if (f.type === "textarea") {
      control = el("textarea", { ...props, rows: f.rows || 4, value: f.value ?? "", placeholder: f.placeholder, spellcheck: false });
    } else {
      control = el("input", { ...props, type: f.type || "text", value: f.value ?? "", placeholder: f.placeholder, autocomplete: "off" });
    }
    return el("div", { className: "field" + (f.full ? " full" : "") }, el("label", { htmlFor: id }, f.label), control, hint, error);
  }

  function values(form) {
    const out = {};
    for (const c of form.querySelectorAll("input[name], select[name], textarea[name]")) {
      if (c.closest(".step") || c.type === "file") continue;
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

  /** A form whose submit runs `send(values, form)` (an API answer); `done(answer, form)` after a
   * success. opts: locate, extra (nodes before the buttons), danger, heading, cancel (adds a
   * Cancel button, also on Escape). */
  function form(prefix, fields, label, send, done, opts = {}) {
    const cancel = opts.cancel
      ? el("button", { type: "button", className: "quiet", onclick: opts.cancel }, "Cancel") : null;
    const node = el("form", { id: prefix, noValidate: true },
      opts.heading ? el("h3", { className: "full", id: prefix + "-title" }, opts.heading) : null,
      ...fields.map((f) => field(prefix, f)), ...(opts.extra || []),
      el("p", { className: "error full", role: "alert", tabIndex: -1, hidden: true }),
      el("div", { className: "actions" },
        el("button", { type: "submit", className: opts.danger ? "danger" : "" }, label), cancel,
        el("span", { className: "saved", role: "status" })));
    if (opts.heading) node.setAttribute("aria-labelledby", prefix + "-title");
    if (opts.cancel) node.addEventListener("keydown", (event) => { if (event.key === "Escape") opts.cancel(); });
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
  const failed = (answer) => (answer.data.error || [])[0] || `HTTP ${answer.status}`;

  // -- sections --------------------------------------------------------------------------------

  function section(id, title, ...intro) {
    slot("toc").append(el("li", {}, el("a", { href: "#" + id }, title)));
    const body = el("section", { id, className: "card", "aria-labelledby": id + "-title" },
      el("h2", { id: id + "-title" }, title), ...intro.map((text) => el("p", { className: "hint" }, text)));
    slot("sections").append(body);
    return body;
  }

  /** The records of `url` as a list, each with a delete button (`remove(rec)` -> [url, body?], or
   * null for none, asked again when the button is pressed; `listed(recs)` after each reading)
   * and, with `edit` ({fields(rec), send(values, form, rec), extra?(rec), locate?}), an Edit
   * button that turns the row into the record's form; one row of a list is edited at a time. */
  function records({ prefix, label, url, describe, remove, extra, edit, listed }) {
    const ul = el("ul", { className: "records", id: prefix + "-list", "aria-label": label });
    const status = el("p", { className: "saved", role: "status", id: prefix + "-status" });
    let recs = [];
    let editing = null;
    const editButton = (id) => [...ul.querySelectorAll("button[data-edit]")].find((b) => b.dataset.edit === id);

    async function refresh() {
      try {
        recs = await get(url);
      } catch (e) {
        ul.replaceChildren(el("li", { className: "error" }, e.message));
        return;
      }
      if (!recs.some((r) => r.id === editing)) editing = null;
      render();
      if (listed) listed(recs);
    }

    function close(rec) {
      editing = null;
      render();
      editButton(rec.id)?.focus();
    }

    function editor(rec, name) {
      const node = form(prefix + "-edit", edit.fields(rec), "Save", (v, n) => edit.send(v, n, rec),
        async () => {
          editing = null;
          status.textContent = `Saved ${name}.`;
          await refresh();
          editButton(rec.id)?.focus();
        },
        { locate: edit.locate, extra: edit.extra && edit.extra(rec), heading: `Edit ${name}`, cancel: () => close(rec) });
      return el("li", { className: "editing" }, node);
    }

    function row(rec) {
      const name = describe(rec);
      const title = typeof name[0] === "string" ? name[0] : name[0].textContent;
      if (edit && rec.id === editing) return editor(rec, title);
      const failure = el("span", { className: "error", role: "alert", hidden: true });
      const del = remove(rec) && el("button", { type: "button", className: "inline danger", "aria-label": `Delete ${title}`,
        onclick: async () => {
          const [target, body] = remove(rec);
          const answer = await call("DELETE", target, body);
          if (answer.ok) return refresh();
          failure.textContent = failed(answer);
          failure.hidden = false;
        } }, "Delete");
      const change = edit && el("button", { type: "button", className: "inline", "data-edit": rec.id, "aria-label": `Edit ${title}`,
        onclick: () => {
          editing = rec.id;
          status.textContent = "";
          render();
          ul.querySelector("li.editing input:not([type=hidden]), li.editing select")?.focus();
        } }, "Edit");
      return el("li", {}, el("span", { className: "what" }, ...name), ...(extra ? extra(rec, refresh) : []), change, del, failure);
    }

    function render() {
      ul.replaceChildren(...recs.map(row));
      if (!recs.length) ul.append(el("li", {}, "None yet."));
    }

    refresh();
    return { node: ul, status, refresh };
  }

  /** A section listing records with a form that adds one. */
  function collection(id, title, intro, spec) {
    const body = section(id, title, ...intro);
    const shown = records({ prefix: id, ...spec });
    body.append(shown.node, shown.status, el("h3", {}, spec.add), form(id + "-add", spec.fields, spec.add, spec.send, async (answer, node) => {
      node.reset();
      if (spec.done) spec.done(answer, node);
      await shown.refresh();
    }, { locate: spec.locate, extra: spec.formExtra && spec.formExtra() }));
    return body;
  }

  const post = (url, fields) => call("POST", url, { domain_id: site.id, ...fields });
  const when = (ts) => ts ? new Date(ts).toLocaleString() : "never";
  const reloadSite = async () => { site = (await get("/api/v1/domain" + q({ id: site.id })))[0] || site; };

  // -- general ---------------------------------------------------------------------------------

  /** A checkbox whose change calls `change(checked)` (answering the domain) and then shows what
   * the domain says. */
  function toggle(name, label, hint, isOn, change, after) {
    const box = field("general", { name, type: "checkbox", value: isOn(), label, hint });
    const error = el("p", { className: "error", role: "alert", tabIndex: -1, hidden: true });
    box.querySelector("input").addEventListener("change", async (event) => {
      error.hidden = true;
      const answer = await change(event.target.checked);
      if (answer.ok) site = answer.data;
      else { error.textContent = failed(answer); error.hidden = false; }
      event.target.checked = isOn();
      if (after) after();
    });
    box.append(error);
    return box;
  }

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
    const publicBox = toggle("public", "Public dashboard: anyone with its link can read the statistics (not change anything)", null,
      () => !!site.public, () => post("/api/v1/domain/public", {}), showShare);
    publicBox.insertBefore(shareLink, publicBox.querySelector(".field-error"));
    const anyHost = () => String((site.settings || {}).allow_any_hostname) === "true";
    const saveSite = (a) => { site = a.data; };
    body.append(
      form("general-hostname", [{ name: "hostname", label: "Hostname", value: site.hostname, hint: "Hits from other hosts are refused unless listed under alternative domains." }],
        "Save hostname", (v) => post("/api/v1/domain/hostname", { hostname: v.hostname }), saveSite),
      form("general-timezone", [{ name: "timezone", label: "Time zone", type: "select", value: site.timezone, options: zones.map((z) => [z, z]), hint: "Days and hours on the dashboard follow this zone." }],
        "Save time zone", (v) => post("/api/v1/domain/timezone", { timezone: v.timezone }), saveSite),
      form("general-subdomain", [{ name: "subdomain", label: "Subdomain", value: site.subdomain, hint: "A name for the site that no other site on this server has (Pirsch clients look a site up by it)." }],
        "Save subdomain", (v) => post("/api/v1/domain/subdomain", { subdomain: v.subdomain }), saveSite),
      form("general-active", [{ name: "time", label: "Live visitors window (seconds)", type: "number", value: site.active_visitors_seconds, hint: "A visitor counts as live this long after the last page view: 60 to 86400." }],
        "Save window", (v) => post("/api/v1/domain/active", { time: /^\d+$/.test(v.time) ? Number(v.time) : v.time }), saveSite),
      form("general-custom", [{ name: "hostname", label: "Custom domain", value: site.custom_domain || "", placeholder: "stats.example.com",
        hint: "A host name of your own that finds this site (GET /api/v1/domain?domain=...); one site per custom domain. Empty removes it." }],
      "Save custom domain", (v) => post("/api/v1/domain/custom", { hostname: v.hostname }), saveSite),
      form("general-metadata", [{ name: "metadata", label: "Metadata (a JSON object)", type: "textarea", full: true,
        value: JSON.stringify(site.metadata || {}, null, 2), hint: "Kept for your own tools; trail does not read it." }],
      "Save metadata", (v) => {
        let metadata;
        try { metadata = JSON.parse(v.metadata || "{}"); } catch (e) { return problem("metadata", "not valid JSON: " + e.message); }
        return post("/api/v1/domain/metadata", { metadata });
      }, saveSite),
      publicBox,
      toggle("group_by_title", "Group pages by title as well as path", "Pages with the same path but other titles are listed apart.",
        () => !!site.group_by_title, () => post("/api/v1/domain/title", {})),
      toggle("disable_scripts", "Refuse hits from browsers", "tracker.js and the Pirsch browser SDK send nothing that counts; server SDKs still do.",
        () => !!site.disable_scripts, () => post("/api/v1/domain/scripts", {})),
      toggle("allow_any_hostname", "Accept hits from any hostname", "Without it, only the hostname and the alternative domains count.",
        anyHost, (on) => post("/api/v1/domain/settings", { settings: { allow_any_hostname: on } })),
      el("h3", {}, "Delete this site"),
      el("p", {}, "Deleting removes the site, its statistics and every setting on this page. It cannot be undone."),
      form("general-delete", [{ name: "confirm", label: `Type ${site.hostname} to confirm` }], "Delete site",
        async (v) => v.confirm !== site.hostname
          ? problem("confirm", `type ${site.hostname} to confirm`)
          : call("DELETE", "/api/v1/domain" + q({ id: site.id })),
        () => location.replace("/sites"), { danger: true }));
  }

  // -- theme -----------------------------------------------------------------------------------

  const HEX = /^#(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i;
  // [setting, label, trail's own light and dark colour (dashboard.css)]
  const COLOURS = [["accent", "Accent (links, buttons, chart)", "#1a5fb4", "#8cb4ff"], ["background", "Page background", "#f6f7f9", "#15171a"],
    ["card", "Cards and header", "#ffffff", "#1e2125"], ["text", "Text", "#1b1f24", "#e6e8eb"]];
  const IMAGES = [["logo_light", "Logo, light scheme"], ["logo_dark", "Logo, dark scheme"], ["favicon", "Favicon"]];
  const IMAGE_TYPES = "image/png,image/jpeg,image/gif,image/webp,image/x-icon,.ico";
  const THEME_FILE = "/api/v1/theme/file?";

  /** POST `url` (/api/v1/domain/theme, /api/v1/theme) with `json`: as multipart when the form
   * `node` has images chosen (the JSON in `data`, each image named after its setting,
   * logo_light.png, the way the API tells files apart), else as JSON, or with `needFile` as the
   * problem that no image was chosen. */
  async function upload(node, url, json, needFile) {
    const data = new FormData();
    data.append("data", JSON.stringify(json));
    let chosen = 0;
    for (const input of node.querySelectorAll("input[type=file]")) {
      const file = input.files[0];
      if (!file) continue;
      chosen++;
      data.append(input.name, file, input.name + ((/\.[a-z0-9]+$/i.exec(file.name) || [".png"])[0].toLowerCase()));
    }
    if (!chosen) return needFile ? problem("logo_light", "choose an image first") : call("POST", url, json);
    try {
      const r = await fetch(url, { method: "POST", body: data, credentials: "same-origin", headers: { "X-CSRF-Token": csrf } });
      return { ok: r.ok, status: r.status, data: (await r.json().catch(() => null)) ?? {} };
    } catch (e) {
      return { ok: false, status: 0, data: { error: ["Cannot reach trail."] } };
    }
  }

  function theme() {
    const body = section("theme", "Theme of shared dashboards",
      "The public dashboard and access links show the site's theme: the base theme's settings, then the ones below over them. Colours are hex values for each colour scheme; empty keeps the base theme's or trail's own.");
    const base = el("div", { className: "full" });
    const current = el("ul", { className: "records", id: "theme-images", "aria-label": "The site's images" });
    const settings = () => site.theme_settings || {};
    function showImages() {
      const items = IMAGES.filter(([k]) => settings()[k]).map(([k, label]) => {
        const value = settings()[k];
        const preview = value.startsWith(THEME_FILE)
          ? el("img", { className: "preview", src: `${value}&v=${Date.now()}`, alt: label })
          : el("span", {}, value.startsWith("data:") ? " (an image in the setting itself)" : " (an address of another host: shared dashboards do not show it)");
        const failure = el("span", { className: "error", role: "alert", hidden: true });
        return el("li", {}, el("span", { className: "what" }, label, " "), preview,
          el("button", { type: "button", className: "inline danger", "aria-label": `Remove ${label.toLowerCase()}`, onclick: async () => {
            const answer = await call("DELETE", THEME_FILE.slice(0, -1) + q({ domain_id: site.id, file: k }));
            if (!answer.ok) { failure.textContent = failed(answer); failure.hidden = false; return; }
            await reloadSite();
            showImages();
          } }, "Remove"), failure);
      });
      current.replaceChildren(...items);
      if (!items.length) current.append(el("li", {}, "No images of the site's own."));
    }
    body.append(base,
      el("h3", {}, "Colours"),
      form("theme-colours", colourFields(settings()), "Save colours", (v) => {
        const bad = badColour(v);
        return bad ? problem(bad, "a hex colour like #1a5fb4, or empty") : post("/api/v1/domain/theme", { settings: v });
      }, (a) => { site = a.data; }),
      el("h3", {}, "Logos and favicon"),
      el("p", { className: "hint" }, "PNG, JPEG, GIF, WebP or ICO, at most 1 MB each. The logo takes the place of trail's name in the shared dashboard's header."),
      current,
      form("theme-files", IMAGES.map(([name, label]) => ({ name, label, type: "file", accept: IMAGE_TYPES })), "Upload",
        (v, node) => upload(node, "/api/v1/domain/theme", { domain_id: site.id }, true), async (a, node) => { site = a.data; node.reset(); showImages(); }));
    showImages();
    // The themes section lists the themes and hands them over each time it reads them.
    showBase = (themes) => {
      const options = [["", "None"], ...themes.map((t) => [t.id, t.name || t.id])];
      if (site.theme_id && !themes.some((t) => t.id === site.theme_id)) options.push([site.theme_id, "The theme it has now"]);
      base.replaceChildren(form("theme-base", [{ name: "theme_id", label: "Base theme", type: "select", value: site.theme_id || "", options,
        hint: "One of the themes below, yours or an organization's." }], "Save base theme",
      (v) => call("PUT", "/api/v1/domain/theme", { domain_id: site.id, theme_id: v.theme_id || null }), reloadSite));
    };
  }

  /** The colour settings as fields, filled with `values`' (a theme's or the domain's settings). */
  const colourFields = (values) => COLOURS.flatMap(([key, label, light, dark]) => [["", "light", light], ["_dark", "dark", dark]].map(([suffix, scheme, own]) =>
    ({ name: key + suffix, label: `${label}, ${scheme}`, value: values[key + suffix] || "", placeholder: own })));
  const badColour = (v) => COLOURS.flatMap(([k]) => [k, k + "_dark"]).find((k) => v[k] && !HEX.test(v[k]));
  let showBase = () => {};

  /** Themes (/api/v1/theme): the user's and its organizations', each a name, colours and images;
   * listed, created, edited and deleted here, and offered as the site's base theme. */
  function themes() {
    const keep = field("themes", { name: "keep", type: "checkbox", label: "When deleting a theme, copy its settings into the sites that use it" });
    const fields = (t = {}) => [{ name: "name", label: "Name", value: t.name, full: true }, ...colourFields(t.settings || {}),
      ...IMAGES.map(([name, label]) => ({ name, label: t.id ? `${label} (replaces the theme's)` : label, type: "file", accept: IMAGE_TYPES }))];
    const send = (v, node, t) => {
      const bad = badColour(v);
      if (bad) return problem(bad, "a hex colour like #1a5fb4, or empty");
      const settings = Object.fromEntries(COLOURS.flatMap(([k]) => [k, k + "_dark"]).map((k) => [k, v[k]]));
      return upload(node, "/api/v1/theme", { ...(t ? { id: t.id } : {}), name: v.name, settings });
    };
    const imagesOf = (t) => IMAGES.filter(([k]) => (t.settings || {})[k]).map(([, label]) => label.toLowerCase());
    const body = collection("themes", "Themes", ["A theme is a name, colours and images a site's shared dashboards can take as their base (above). Colours are hex values for each colour scheme; empty keeps trail's own."], {
      label: "Themes", url: "/api/v1/theme" + q({ include_organizations: "true" }),
      describe: (t) => [t.name || "(no name)", t.organization_id ? " · an organization's" : "",
        imagesOf(t).length ? ` · ${imagesOf(t).join(", ")}` : ""],
      remove: (t) => ["/api/v1/theme" + q({ id: t.id, keep_settings: String(keep.querySelector("input").checked) })],
      edit: { fields, send: (v, node, t) => send(v, node, t) },
      // Deleting a theme takes it from the sites that had it: the site is read again.
      listed: (recs) => reloadSite().catch(() => {}).then(() => showBase(recs)),
      add: "Create theme",
      fields: fields(),
      send: (v, node) => send(v, node, null),
    });
    body.querySelector("#themes-list").after(keep);
  }

  // -- snippet ---------------------------------------------------------------------------------

  function snippet() {
    const body = section("snippet", "Snippet");
    const holder = el("div", {});
    const shown = window.trail.snippets.render(holder, site, "snippet", 3);
    body.append(holder,
      el("h3", {}, "Identification code"),
      form("snippet-code", [], "Make a new identification code", () => call("PUT", "/api/v1/domain", { id: site.id }),
        (a) => { site = { ...site, identification_code: a.data.identification_code }; shown.update(site); },
        { extra: [el("p", { className: "hint full" }, "The Pirsch browser SDK sends hits with it. A new code stops pages that still have the old one from counting.")] }));
  }

  // -- records ---------------------------------------------------------------------------------

  function clients() {
    const secret = el("div", { id: "client-secret", className: "secret", role: "status", hidden: true });
    const body = collection("clients", "Access keys and OAuth clients",
      ["An access key sends hits and events from a server (Pirsch SDKs); an OAuth client also reads statistics. The secret is shown once, when it is created."], {
        label: "Access keys and clients", url: "/api/v1/client" + q({ id: site.id }),
        describe: (c) => [c.description || "(no description)", ` · ${c.type === "token" ? "access key" : "OAuth client"}`, c.client_id ? ` · id ${c.client_id}` : ""],
        remove: (c) => ["/api/v1/client" + q({ id: c.id })],
        edit: {
          fields: (c) => [{ name: "description", label: "Description", value: c.description }],
          send: (v, _, c) => call("POST", "/api/v1/client", { id: c.id, description: v.description }),
        },
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
    const invitations = records({ prefix: "invitations", label: "Invitations", url: "/api/v1/invitation" + q({ domain_id: site.id }),
      describe: (i) => [i.email], remove: (i) => ["/api/v1/invitation", { domain_id: site.id, id: i.id }] });
    const body = collection("members", "Members", ["Viewers read the dashboard; Admins also change these settings."], {
      label: "Members", url: "/api/v1/member" + q({ id: site.id }),
      describe: (m) => [(m.user || {}).email || m.user_id],
      // The owner has no member record: its role cannot change and it cannot be removed.
      remove: (m) => m.role === "Owner" ? null : ["/api/v1/member" + q({ id: m.id })],
      extra: (m, refresh) => {
        if (m.role === "Owner") return [el("span", {}, "Owner")];
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
    body.append(el("h3", {}, "Open invitations"), invitations.node, invitations.status);
  }

  const goalFields = (g = {}) => [
    { name: "name", label: "Name", value: g.name },
    { name: "path_pattern", label: "Path pattern", placeholder: "/checkout/**", value: g.path_pattern },
    { name: "event_name", label: "Event name", value: g.event_name },
  ];

  function goals() {
    collection("goals", "Goals", ["A goal is reached by a page view whose path matches the pattern (* for one path segment, ** for any) or by an event."], {
      label: "Goals", url: "/api/v1/goal" + q({ id: site.id }),
      describe: (g) => [g.name, ` · ${g.path_pattern || g.pattern || ""}${g.event_name ? " event " + g.event_name : ""}`],
      remove: (g) => ["/api/v1/goal" + q({ id: g.id })],
      edit: {
        fields: goalFields,
        // PUT replaces the goal: what the form does not show goes back as it was.
        send: (v, _, g) => call("PUT", "/api/v1/goal", {
          id: g.id, domain_id: site.id, name: v.name, path_pattern: orNull(v.path_pattern), event_name: orNull(v.event_name),
          event_meta_key: g.event_meta_key, event_meta_value: g.event_meta_value,
          custom_metric_key: g.custom_metric_key, custom_metric_type: g.custom_metric_type,
          visitors: g.visitor_goal, cr: g.cr_goal, custom_metric_total_goal: g.custom_metric_total_goal,
          custom_metric_avg_goal: g.custom_metric_avg_goal, delete_reached: !!g.delete_reached, email_reached: !!g.email_reached,
        }),
      },
      add: "Add goal",
      fields: goalFields(),
      send: (v) => post("/api/v1/goal", { name: v.name, path_pattern: orNull(v.path_pattern), event_name: orNull(v.event_name) }),
    });
  }

  const STEP_FILTERS = [
    ["path", "Page"], ["path_pattern", "Page pattern"], ["entry_path", "Entry page"], ["event_name", "Event"],
    ["referrer_name", "Referrer"], ["utm_source", "UTM source"], ["utm_campaign", "UTM campaign"],
    ["country", "Country code"], ["language", "Language"], ["platform", "Platform"],
  ];

  /** A funnel's steps as fieldsets (each a name, a filter parameter and a value), filled with
   * `steps` or two empty ones. A step's filter with more than the form shows (more parameters,
   * more values) keeps the rest unless its parameter changes. */
  function stepsEditor(prefix, steps) {
    const box = el("div", { className: "full", id: prefix + "-steps" });
    const kept = new Map();
    let count = 0;
    // Steps get their number again after a removal; a funnel keeps at least two.
    const renumber = () => [...box.children].forEach((fs, i) => {
      fs.querySelector("legend").textContent = `Step ${i + 1}`;
      const remove = fs.querySelector("button.remove-step");
      remove.hidden = box.children.length <= 2;
      remove.setAttribute("aria-label", `Remove step ${i + 1}`);
    });
    function add(step) {
      const p = `${prefix}-step${count++}`;
      const filter = (step && step.filter) || {};
      const keys = Object.keys(filter);
      const param = keys[0] || "path";
      const given = [].concat(filter[param] ?? []);
      const fs = el("fieldset", { className: "step", "data-prefix": p }, el("legend", {}, ""),
        field(p, { name: "name", label: "Step name", value: (step && step.name) || "" }),
        field(p, { name: "param", label: "Matches", type: "select", value: param, options: STEP_FILTERS }),
        field(p, { name: "value", label: "Value", placeholder: "/pricing", value: String(given[0] ?? "") }),
        keys.length > 1 || given.length > 1 ? el("p", { className: "hint" }, "This step has more conditions than the form shows: they are kept.") : null,
        el("button", { type: "button", className: "inline quiet remove-step", onclick: () => {
          if (box.children.length <= 2) return;
          fs.remove();
          renumber();
        } }, "Remove step"));
      kept.set(fs, { param, values: given.slice(1), rest: Object.fromEntries(keys.slice(1).map((k) => [k, filter[k]])) });
      box.append(fs);
      renumber();
    }
    const reset = (initial) => {
      box.replaceChildren();
      count = 0;
      const list = initial && initial.length ? initial : [null, null];
      list.forEach(add);
    };
    reset(steps);
    return {
      node: box,
      more: el("div", { className: "full more" }, el("button", { type: "button", className: "inline", onclick: () => add(null) }, "Add a step")),
      reset: () => reset(null),
      read: () => [...box.children].map((fs, i) => {
        const value = (n) => fs.querySelector(`[name=${n}]`).value.trim();
        const old = kept.get(fs);
        const param = value("param");
        const same = old && old.param === param;
        return { name: value("name") || `Step ${i + 1}`,
          filter: { [param]: [value("value"), ...(same ? old.values : [])], ...(same ? old.rest : {}) } };
      }),
      // steps[i] of a 400 -> the i-th fieldset's field (its name, else its value).
      locate: (name) => {
        const m = /^steps\[(\d+)\](?:\.(name))?/.exec(name);
        const fs = m && box.children[Number(m[1])];
        return fs ? `${fs.dataset.prefix}-${m[2] || "value"}` : null;
      },
    };
  }

  function funnels() {
    const adding = stepsEditor("funnels-add", null);
    let editing = null;
    collection("funnels", "Funnels", ["A funnel counts the visitors who went through its steps in order, each step a filter."], {
      label: "Funnels", url: "/api/v1/funnel" + q({ id: site.id }),
      describe: (f) => [f.name, ` · ${(f.steps || []).map((s) => s.name).join(" → ")}`],
      remove: (f) => ["/api/v1/funnel" + q({ id: f.id })],
      edit: {
        fields: (f) => {
          editing = stepsEditor("funnels-edit", f.steps || []);
          return [{ name: "name", label: "Name", full: true, value: f.name }];
        },
        extra: () => [editing.node, editing.more],
        locate: (name) => editing.locate(name),
        send: (v, _, f) => post("/api/v1/funnel", { id: f.id, name: v.name, steps: editing.read() }),
      },
      add: "Add funnel",
      fields: [{ name: "name", label: "Name", full: true }],
      formExtra: () => [adding.node, adding.more],
      locate: (name) => adding.locate(name),
      send: (v) => post("/api/v1/funnel", { name: v.name, steps: adding.read() }),
      done: adding.reset,
    });
  }

  const FILTER_TYPES = [["ip", "IP address or range"], ["path", "Path"], ["user_agent", "User agent"], ["hostname", "Hostname"], ["country", "Country code"]];
  const filterFields = (f = {}) => [
    { name: "type", label: "Type", type: "select", value: f.type || "ip", options: FILTER_TYPES },
    { name: "filter", label: "Filter", value: f.filter },
    { name: "description", label: "Description", value: f.description },
  ];

  function trafficFilters() {
    collection("filters", "Traffic filters", ["Hits that match a filter are not counted."], {
      label: "Traffic filters", url: "/api/v1/filter" + q({ domain_id: site.id }),
      describe: (f) => [`${f.type}: ${f.filter}`, f.description ? ` · ${f.description}` : ""],
      remove: (f) => ["/api/v1/filter" + q({ id: f.id })],
      edit: { fields: filterFields, send: (v, _, f) => post("/api/v1/filter", { ...v, id: f.id }) },
      add: "Add filter",
      fields: filterFields(),
      send: (v) => post("/api/v1/filter", v),
    });
  }

  function alternatives() {
    const fields = (a = {}) => [{ name: "hostname", label: "Hostname", placeholder: "blog.example.com", value: a.hostname }];
    collection("alternatives", "Alternative domains", ["Other hostnames whose hits count for this site."], {
      label: "Alternative domains", url: "/api/v1/domain/alternative" + q({ domain_id: site.id }),
      describe: (a) => [a.hostname], remove: (a) => ["/api/v1/domain/alternative" + q({ id: a.id })],
      edit: { fields, send: (v, _, a) => call("PUT", "/api/v1/domain/alternative", { id: a.id, hostname: v.hostname }) },
      add: "Add domain",
      fields: fields(),
      send: (v) => post("/api/v1/domain/alternative", v),
    });
  }

  /** An RFC 3339 time as a datetime-local value in the browser's zone, and back. */
  const localTime = (ts) => {
    if (!ts) return "";
    const d = new Date(ts);
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  };
  const utcTime = (local) => local ? new Date(local).toISOString() : null;

  function accessLinks() {
    const fields = (l = {}) => [
      { name: "description", label: "Description", value: l.description },
      { name: "valid_until", label: "Valid until (empty: no end)", type: "datetime-local", value: localTime(l.valid_until) },
    ];
    collection("links", "Access links", ["An access link opens this dashboard read-only, without signing in, until it expires."], {
      label: "Access links", url: "/api/v1/domain/link" + q({ domain_id: site.id }),
      describe: (l) => [l.description || "(no description)", ` · valid until ${when(l.valid_until)} · `,
        el("a", { href: `/share/${encodeURIComponent(site.id)}/${encodeURIComponent(l.code)}` }, "open")],
      remove: (l) => ["/api/v1/domain/link" + q({ id: l.id })],
      edit: {
        fields,
        send: (v, _, l) => call("PUT", "/api/v1/domain/link", { id: l.id, description: v.description, valid_until: utcTime(v.valid_until) }),
      },
      add: "Create link",
      fields: fields(),
      send: (v) => post("/api/v1/domain/link", { description: v.description, valid_until: utcTime(v.valid_until) }),
    });
  }

  function webhooks() {
    const fields = (w = {}) => [
      { name: "event", label: "Event", value: w.event },
      { name: "endpoint", label: "Endpoint URL", type: "url", placeholder: "https://example.com/hook", value: w.endpoint },
      { name: "description", label: "Description", value: w.description },
    ];
    collection("webhooks", "Webhooks", ["trail posts to the endpoint when the event happens. Saving a webhook switches it on again after failed deliveries switched it off."], {
      label: "Webhooks", url: "/api/v1/webhook" + q({ domain_id: site.id }),
      describe: (w) => [`${w.event} → ${w.endpoint}`, w.active === false ? " · disabled" : ""],
      remove: (w) => ["/api/v1/webhook" + q({ id: w.id })],
      edit: { fields, send: (v, _, w) => post("/api/v1/webhook", { ...v, id: w.id }) },
      add: "Add webhook",
      fields: fields(),
      send: (v) => post("/api/v1/webhook", v),
    });
  }

  function reports() {
    const intervals = [["0", "Daily"], ["1", "Weekly"], ["2", "Every 2 weeks"], ["4", "Every 4 weeks"]];
    const links = [["dashboard", "The dashboard"], ["public", "The public dashboard"]];
    const fields = (r = {}) => [
      { name: "interval", label: "How often", type: "select", value: String(r.interval ?? 1), options: intervals },
      { name: "link_to", label: "Links to", type: "select", value: r.link_to || "dashboard", options: links },
    ];
    collection("reports", "Email reports", ["A summary of the site's statistics by email."], {
      label: "Email reports", url: "/api/v1/report" + q({ id: site.id }),
      describe: (r) => [r.email, ` · ${(intervals.find(([v]) => Number(v) === r.interval) || [0, `every ${r.interval} weeks`])[1]} · next ${when(r.next_report)}`],
      remove: (r) => ["/api/v1/report" + q({ id: r.id })],
      edit: {
        fields,
        send: (v, _, r) => call("PUT", "/api/v1/report", { id: r.id, interval: Number(v.interval), link_to: v.link_to }),
      },
      add: "Add report",
      fields: [{ name: "emails", label: "Email addresses", hint: "Separated by commas." }, ...fields()],
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
    const session = await start();
    if (!session) return;
    csrf = session.csrf_token || "";
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
    for (const build of [general, theme, themes, snippet, clients, members, goals, funnels, trafficFilters, alternatives, accessLinks, webhooks, reports, alerts]) {
      build();
    }
    document.body.dataset.ready = "1";
  })();
})();
