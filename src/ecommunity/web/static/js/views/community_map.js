// A simple map of the communities found: an SVG of their locations (latitude and longitude as
// the API answers them), no tiles, nothing from elsewhere. Each marker is a link to the
// community's page; the list beside it says the same in words.

import { t } from "../i18n.js";

// SVG's namespace, from the HTML parser itself (which puts an <svg> in it).
const SVG = (() => {
  const template = document.createElement("template");
  template.innerHTML = "<svg></svg>";
  return template.content.firstChild.namespaceURI;
})();
const WIDTH = 400;
const HEIGHT = 260;
const PAD = 28;

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined) element.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    element.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return element;
}

/**
 * A projection of the points onto the drawing: equirectangular, x scaled by the cosine of the
 * middle latitude so that distances look right at Austrian latitudes. Only for drawing.
 */
function projection(points) {
  const lats = points.map((p) => p.latitude);
  const lons = points.map((p) => p.longitude);
  let [south, north] = [Math.min(...lats), Math.max(...lats)];
  let [west, east] = [Math.min(...lons), Math.max(...lons)];
  const squeeze = Math.cos((((south + north) / 2) * Math.PI) / 180);
  // At least ~10 km across, so that one point or close ones sit in the middle.
  const minSpan = 0.1;
  if (north - south < minSpan) [south, north] = [(south + north - minSpan) / 2, (south + north + minSpan) / 2];
  if ((east - west) * squeeze < minSpan) {
    const half = minSpan / squeeze / 2;
    [west, east] = [(west + east) / 2 - half, (west + east) / 2 + half];
  }
  const scale = Math.min((WIDTH - 2 * PAD) / ((east - west) * squeeze), (HEIGHT - 2 * PAD) / (north - south));
  const offsetX = (WIDTH - (east - west) * squeeze * scale) / 2;
  const offsetY = (HEIGHT - (north - south) * scale) / 2;
  return {
    x: (longitude) => offsetX + (longitude - west) * squeeze * scale,
    y: (latitude) => offsetY + (north - latitude) * scale,
    /** Degrees of latitude to drawing units (for the search radius). */
    perDegree: scale,
  };
}

/**
 * The map of ``communities`` (finder results), with ``centre`` ({latitude, longitude}) and its
 * ``radiusKm`` when the search was by coordinates.
 */
export function communityMap(communities, { centre = null, radiusKm = null } = {}) {
  const points = communities.map((c) => c.location);
  if (centre) points.push(centre);
  const figure = document.createElement("figure");
  figure.className = "community-map";
  if (points.length === 0) return figure;
  const project = projection(points);
  const drawing = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "group",
    "aria-label": t("find.map_label"),
    class: "map",
  });
  drawing.append(svg("rect", { x: 0, y: 0, width: WIDTH, height: HEIGHT, class: "map-ground" }));
  if (centre) {
    const cx = project.x(centre.longitude);
    const cy = project.y(centre.latitude);
    if (radiusKm) {
      // 1° of latitude is ~111.2 km: the circle only shows the search area, roughly.
      drawing.append(svg("circle", { cx, cy, r: (radiusKm / 111.195) * project.perDegree, class: "map-radius" }));
    }
    drawing.append(
      svg(
        "g",
        { class: "map-you", role: "img", "aria-label": t("find.map_you") },
        svg("title", {}, t("find.map_you")),
        svg("circle", { cx, cy, r: 5 }),
        svg("circle", { cx, cy, r: 10, class: "map-you-ring" }),
      ),
    );
  }
  communities.forEach((community, index) => {
    const cx = project.x(community.location.longitude);
    const cy = project.y(community.location.latitude);
    const label = `${index + 1}. ${community.name}`;
    drawing.append(
      svg(
        "a",
        {
          href: `/communities/${community.id}`,
          "data-link": "",
          "aria-label": label,
          class: `map-marker map-marker-${community.kind}`,
          "data-community-id": community.id,
        },
        svg("title", {}, label),
        svg("circle", { cx, cy, r: 11 }),
        svg("text", { x: cx, y: cy, "text-anchor": "middle", "dominant-baseline": "central" }, String(index + 1)),
      ),
    );
  });
  figure.append(drawing);
  const caption = document.createElement("figcaption");
  caption.className = "hint";
  caption.textContent = t("find.map_caption");
  figure.append(caption);
  return figure;
}
