// The locations panel's world map: a choropleth of visitors per country, drawn as inline SVG.
// The shapes are world-atlas's countries-110m.json (TopoJSON, ids are ISO 3166-1 numeric codes)
// and the API's alpha-2 codes are matched to them with i18n-iso-countries's codes.json; both are
// vendored files (vendor/SOURCES.md) that site.html names on this script's tag, fetched from
// trail's /assets/ once, when a map is first asked for (worldMap.shapes(), which the locations
// panel calls as it asks for its report), and decoded here. Hover or focus shows a
// country's name and visitors; a click, Enter or Space filters the dashboard by the country.
// The map is one tab stop: the arrow keys move between the countries with visitors.
"use strict";
(function () {
  const { el, svg, format } = window.trail;
  const assets = document.currentScript.dataset; // data-topology, data-codes: their URLs
  const ANTARCTICA = "010"; // left out: nobody's visitors, and half the map's height
  const BY_NAME = { XK: "Kosovo" }; // no ISO 3166-1 numeric code; the atlas's shape has no id
  const regionNames = new Intl.DisplayNames(undefined, { type: "region" });
  const nameOf = (code, fallback) => {
    try { return regionNames.of(code) || fallback; } catch (e) { return fallback || code; }
  };

  // Equal Earth (Šavrič, Patterson and Jenny, 2018): degrees to SVG units, y pointing down.
  const A1 = 1.340264, A2 = -0.081106, A3 = 0.000893, A4 = 0.003796, M = Math.sqrt(3) / 2;
  const RAD = Math.PI / 180, UNITS = 100;
  function project(lon, lat) {
    const t = Math.asin(M * Math.sin(lat * RAD)), t2 = t * t, t6 = t2 * t2 * t2;
    const x = lon * RAD * Math.cos(t) / (M * (A1 + 3 * A2 * t2 + t6 * (7 * A3 + 9 * A4 * t2)));
    const y = t * (A1 + A2 * t2 + t6 * (A3 + A4 * t2));
    return [x * UNITS, -y * UNITS];
  }

  /** The shapes: [{code (alpha-2, "" when unknown), name, d (SVG path)}] and the viewBox. */
  function decode(topology, codes) {
    const alpha2 = new Map(codes.map(([a2, , numeric]) => [numeric, a2]));
    const byName = new Map(Object.entries(BY_NAME).map(([a2, name]) => [name, a2]));
    // Arcs are delta-encoded quantized positions: each point adds to the one before, then the
    // transform scales and translates them to degrees.
    const [sx, sy] = topology.transform.scale, [tx, ty] = topology.transform.translate;
    const arcs = topology.arcs.map((arc) => {
      let x = 0, y = 0;
      return arc.map(([dx, dy]) => { x += dx; y += dy; return [x * sx + tx, y * sy + ty]; });
    });
    const box = [Infinity, Infinity, -Infinity, -Infinity];
    const draw = (points) => "M" + points.map(([lon, lat]) => {
      const [x, y] = project(lon, lat);
      box[0] = Math.min(box[0], x); box[1] = Math.min(box[1], y);
      box[2] = Math.max(box[2], x); box[3] = Math.max(box[3], y);
      return x.toFixed(1) + " " + y.toFixed(1);
    }).join("L") + "Z";
    const clamp = (points, shift, lo, hi) => points.map(([lon, lat]) => [Math.min(hi, Math.max(lo, lon + shift)), lat]);
    // A ring joins its arcs (~i is arc i reversed); each arc starts where the one before ended.
    // A ring that crosses the antimeridian (Russia, Fiji) is made continuous, then drawn twice,
    // once cut at +180° and once shifted by 360° and cut at -180°.
    const ring = (indexes) => {
      const points = [];
      for (const i of indexes) {
        const arc = i < 0 ? arcs[~i].slice().reverse() : arcs[i];
        points.push(...(points.length ? arc.slice(1) : arc));
      }
      let crosses = false;
      for (let i = 1; i < points.length; i++) {
        const step = points[i][0] - points[i - 1][0];
        if (Math.abs(step) > 180) {
          crosses = true;
          points[i] = [points[i][0] - 360 * Math.sign(step), points[i][1]];
        }
      }
      if (!crosses) return draw(points);
      const east = points.some(([lon]) => lon > 180);
      return east ? draw(clamp(points, 0, -180, 180)) + draw(clamp(points, -360, -180, 180))
        : draw(clamp(points, 0, -180, 180)) + draw(clamp(points, 360, -180, 180));
    };
    const shapes = [];
    for (const g of topology.objects.countries.geometries) {
      if (g.id === ANTARCTICA) continue;
      const polygons = g.type === "Polygon" ? [g.arcs] : g.type === "MultiPolygon" ? g.arcs : [];
      const name = (g.properties || {}).name || "";
      const code = alpha2.get(g.id) || byName.get(name) || "";
      shapes.push({ code, name, d: polygons.flat().map(ring).join("") });
    }
    const pad = 2;
    const viewBox = [box[0] - pad, box[1] - pad, box[2] - box[0] + 2 * pad, box[3] - box[1] + 2 * pad]
      .map((n) => n.toFixed(1)).join(" ");
    return { shapes, viewBox };
  }

  let loading = null;
  async function json(url) {
    const r = await fetch(url, { credentials: "same-origin" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    return r.json();
  }
  function load() {
    loading ||= Promise.all([json(assets.topology), json(assets.codes)])
      .then(([topology, codes]) => decode(topology, codes))
      .catch((e) => { loading = null; throw e; }); // the next render tries again
    return loading;
  }

  /**
   * A figure with the map of `rows` (the country report: country_code, visitors). `action(code)`
   * is what a click on a country does, or null when it does nothing. Resolves to the figure,
   * with the map or an error in it; never rejects, the list beside it stands alone.
   */
  async function worldMap(rows, action) {
    const figure = el("figure", { className: "world" });
    let map;
    try {
      map = await load();
    } catch (e) {
      figure.append(el("p", { className: "error" }, "Could not load the map: " + e.message));
      return figure;
    }
    const counts = new Map(); // "GB" -> [the API's code, visitors]
    for (const r of rows) if (r.country_code) counts.set(r.country_code.toUpperCase(), [r.country_code, r.visitors || 0]);
    const max = Math.max(1, ...[...counts.values()].map(([, v]) => v));
    const tip = el("p", { className: "map-tip", "aria-hidden": "true", hidden: true });
    const label = (shape, v) => `${nameOf(shape.code, shape.name)}: ${format.number(v)} ${v === 1 ? "visitor" : "visitors"}`;
    const show = (path, x, y) => {
      tip.textContent = path.dataset.label;
      tip.hidden = false;
      const box = figure.getBoundingClientRect();
      if (x === undefined) {
        const r = path.getBoundingClientRect();
        x = r.left + r.width / 2; y = r.top;
      }
      tip.style.left = Math.min(Math.max(0, x - box.left), box.width - tip.offsetWidth) + "px";
      tip.style.top = Math.max(0, y - box.top - tip.offsetHeight - 8) + "px";
    };
    const stops = []; // the countries with visitors, most first: the arrow keys' order
    // The pointer leaving a country shows the focused one again, if any.
    const leave = () => {
      const focused = stops.find(([, p]) => p === document.activeElement);
      if (focused) show(focused[1]); else tip.hidden = true;
    };
    const paths = map.shapes.map((shape) => {
      const [code, v] = counts.get(shape.code) || ["", 0];
      const path = svg("path", { d: shape.d, class: v ? "on" : "", "data-code": shape.code, "data-visitors": String(v) });
      path.dataset.label = label(shape, v);
      if (v) {
        path.style.setProperty("--v", (0.2 + 0.8 * v / max).toFixed(3));
        const click = action && action(code);
        path.setAttribute("role", "button");
        path.setAttribute("tabindex", "-1");
        path.setAttribute("aria-label", path.dataset.label + (click ? ". Filter by it" : ""));
        if (click) path.addEventListener("click", click);
        else path.setAttribute("aria-disabled", "true");
        path.addEventListener("focus", () => show(path));
        path.addEventListener("blur", () => { tip.hidden = true; });
        stops.push([v, path, click]);
      }
      path.addEventListener("pointermove", (e) => show(path, e.clientX, e.clientY));
      path.addEventListener("pointerleave", leave);
      return path;
    });
    stops.sort((a, b) => b[0] - a[0]);
    if (stops.length) stops[0][1].setAttribute("tabindex", "0");
    const picture = svg("svg", { viewBox: map.viewBox, role: "group",
      "aria-label": stops.length ? "World map of visitors by country. Arrow keys move between countries"
        : "World map of visitors by country: no countries" }, ...paths);
    picture.addEventListener("keydown", (e) => {
      const at = stops.findIndex(([, p]) => p === document.activeElement);
      if (at < 0) return;
      const to = { ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1,
        Home: 0, End: stops.length - 1 }[e.key];
      if (to !== undefined) {
        e.preventDefault();
        const next = stops[(to + stops.length) % stops.length][1];
        stops[at][1].setAttribute("tabindex", "-1");
        next.setAttribute("tabindex", "0");
        next.focus();
      } else if ((e.key === "Enter" || e.key === " ") && stops[at][2]) {
        e.preventDefault();
        stops[at][2]();
      }
    });
    figure.append(picture, tip, stops.length ? el("figcaption", { className: "map-scale" },
      el("span", {}, "0"), el("span", { className: "ramp", "aria-hidden": "true" }),
      el("span", {}, format.number(max) + (max === 1 ? " visitor" : " visitors")))
      : el("figcaption", { className: "map-scale" }, "No visitors with a known country on the map."));
    return figure;
  }

  worldMap.shapes = load;
  window.trail.worldMap = worldMap;
})();
