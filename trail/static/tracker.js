/* trail tracker.js: see trail/api/tinytrail_collect.py for the options. Keep it small. */
(function (w, d) {
  "use strict";
  var s = d.currentScript, l = w.location, h = w.history;
  var analytics = w.analytics = w.analytics || {};
  analytics.track = function () {};
  if (!s) return;
  var id = s.getAttribute("data-id");
  // The collect endpoint lives beside the script: <base>/js/tracker.js -> <base>/api/v1/collect.
  var api = s.src.split("?")[0].replace(/\/js\/[^/]*$/, "") + "/api/v1/collect";
  var local = /^(localhost|.*\.localhost|127(\.\d+){3}|\[::1\]|0\.0\.0\.0)$/.test(l.hostname) || l.protocol == "file:";

  function ignored() {
    try { if (w.localStorage.getItem("trail_ignore") == "1") return true; } catch (e) {}
    return !id || s.hasAttribute("data-disabled") || (local && !s.hasAttribute("data-allow-localhost"));
  }

  var ref = d.referrer, page, marks;

  function send(type, props) {
    if (ignored()) return;
    var body = JSON.stringify({
      website_id: id, event_type: type, url: l.href, path: l.pathname, referrer: ref,
      title: d.title, screen_width: w.innerWidth, screen_height: w.innerHeight, properties: props
    });
    // A string body goes as text/plain: a "simple" request, so no CORS preflight.
    if (!(navigator.sendBeacon && navigator.sendBeacon(api, body))) {
      fetch(api, { method: "POST", body: body, keepalive: true, credentials: "omit", mode: "no-cors" })
        .catch(function () {});
    }
  }

  function view() {
    var now = l.pathname + l.search;
    if (now == page) return; // replaceState of the same page, or a hash change
    if (page) ref = l.protocol + "//" + l.host + page;
    page = now;
    marks = {};
    send("page_view");
  }

  function scrolled() {
    var e = d.documentElement, depth = (w.scrollY + w.innerHeight) / e.scrollHeight * 100;
    [25, 50, 75].forEach(function (p) {
      if (depth >= p && !marks[p]) { marks[p] = 1; send("scroll_" + p); }
    });
  }

  function clicked(e) {
    var a = e.target.closest && e.target.closest("a[href]");
    if (a && /^https?:$/.test(a.protocol) && a.host != l.host) send("outbound_link", { url: a.href });
  }

  ["pushState", "replaceState"].forEach(function (name) {
    var original = h[name];
    h[name] = function () {
      var result = original.apply(this, arguments);
      view();
      return result;
    };
  });
  w.addEventListener("popstate", view);
  w.addEventListener("scroll", scrolled, { passive: true });
  d.addEventListener("click", clicked, true);
  d.addEventListener("auxclick", clicked, true);
  d.addEventListener("visibilitychange", function () {
    if (d.visibilityState == "hidden") send("close_tab");
  });
  analytics.track = function (name, props) {
    var p = { name: name };
    for (var k in props || {}) if (k != "name") p[k] = props[k];
    send("custom", p);
  };
  view();
})(window, document);
