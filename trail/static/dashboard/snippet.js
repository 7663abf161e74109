// How a site sends its hits, for the sites page (after adding a site) and a site's settings: the
// tracker.js tag with the options tracker.js reads (checkboxes that rewrite the tag as they
// change), the Pirsch browser SDK by the site's identification code, and the Pirsch server SDK.
// Pages call window.trail.snippets.render(container, site, prefix, headingLevel).
"use strict";
(function () {
  const { el } = window.trail;
  // Everything tracker.js takes from its tag besides data-id (trail/static/tracker.js).
  const OPTIONS = [
    { name: "localhost", attr: "data-allow-localhost", label: "Count visits on localhost",
      hint: "For development: without data-allow-localhost, pages served from localhost, 127.x.x.x or file: send nothing." },
    { name: "disabled", attr: "data-disabled", label: "Send nothing",
      hint: "data-disabled keeps the tag in the page but sends no hit or event, e.g. on a staging copy." },
  ];

  function trackerTag(site, chosen) {
    const attrs = ["defer", `data-id="${site.id}"`, ...OPTIONS.filter((o) => chosen[o.name]).map((o) => o.attr),
      `src="${location.origin}/js/tracker.js"`];
    return `<script ${attrs.join(" ")}></script>`;
  }

  const webSdk = (site) => [
    `import { Pirsch } from "pirsch-sdk/web";`,
    ``,
    `const client = new Pirsch({`,
    `  baseUrl: "${location.origin}/api/v1",`,
    `  identificationCode: "${site.identification_code || "<identification code>"}",`,
    `});`,
    `client.hit(); // a page view: again after each client-side navigation`,
    `client.event("signup", 0, { plan: "pro" }); // an event with its metadata`,
  ].join("\n");

  const serverSdk = (site) => [
    `import { Pirsch } from "pirsch-sdk";`,
    ``,
    `const client = new Pirsch({`,
    `  baseUrl: "${location.origin}",`,
    `  hostname: "${site.hostname}",`,
    `  clientId: "<client id>",`,
    `  clientSecret: "<client secret>",`,
    `});`,
    `// for each page request your server answers:`,
    `await client.hit(client.hitFromRequest(request));`,
  ].join("\n");

  /** The snippets of `site` into `container`; ids start with `prefix` (`<prefix>-tracker`,
   * `-web`, `-sdk`, `-opt-localhost`, ...). Returns {update(site)} for a changed site. */
  function render(container, site, prefix, level = 3) {
    const h = "h" + level;
    const chosen = {};
    const tracker = el("code", { id: `${prefix}-tracker` });
    const web = el("code", { id: `${prefix}-web` });
    const server = el("code", { id: `${prefix}-sdk` });
    const host = el("strong", { id: `${prefix}-host` });
    const show = () => {
      tracker.textContent = trackerTag(site, chosen);
      web.textContent = webSdk(site);
      server.textContent = serverSdk(site);
      host.textContent = site.hostname;
    };
    const options = OPTIONS.map((o) => {
      const id = `${prefix}-opt-${o.name}`;
      const box = el("input", { id, type: "checkbox", "aria-describedby": id + "-hint",
        onchange: () => { chosen[o.name] = box.checked; show(); } });
      return el("div", { className: "snippet-option" },
        el("label", { className: "check", htmlFor: id }, box, o.label),
        el("p", { id: id + "-hint", className: "hint" }, o.hint));
    });
    show();
    container.replaceChildren(
      el(h, {}, "tracker.js"),
      el("p", {}, "Paste this into the ", el("code", {}, "<head>"), " of every page of ", host, ":"),
      el("fieldset", { className: "snippet-options" }, el("legend", {}, "Options of the tag"), ...options),
      el("pre", { tabIndex: 0, "aria-label": "The tracker.js tag" }, tracker),
      el("p", { className: "hint" }, "It counts page views (also of single-page apps), scrolling, links to other sites and closing the tab. Custom events: ",
        el("code", {}, `analytics.track("signup", { plan: "pro" })`), "."),
      el(h, {}, "Pirsch browser SDK"),
      el("p", {}, "Or, in a page built with npm, the Pirsch browser SDK with the site's identification code:"),
      el("pre", { tabIndex: 0, "aria-label": "The Pirsch browser SDK" }, web),
      el(h, {}, "Pirsch server SDK"),
      el("p", {}, "Or send page views from your server with a Pirsch SDK (its id and secret come from an OAuth client of this site, ",
        el("code", {}, "POST /api/v1/client"), "):"),
      el("pre", { tabIndex: 0, "aria-label": "The Pirsch server SDK" }, server));
    return { update: (changed) => { site = changed; show(); } };
  }

  window.trail.snippets = { render, trackerTag, OPTIONS };
})();
