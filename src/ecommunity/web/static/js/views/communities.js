// "Find a community": communities near an address (a postal code or "lat,lon") with filters
// (kind, open, radius, area id), as a list and a simple map; pick two to four to compare.
// The search is in the address bar (/communities?near=4020&kind=beg), so it can be shared.

import { get, withQuery } from "../api.js";
import { h, setText, uid } from "../dom.js";
import { formatKm, formatNumber, t } from "../i18n.js";
import { communityFacts, openBadge } from "./community_facts.js";
import { communityMap } from "./community_map.js";
import { KINDS, alertBox, clearRefusal, kindName, matchName, showRefusal } from "./widgets.js";

export const MIN_COMPARE = 2;
export const MAX_COMPARE = 4;
const DEFAULT_RADIUS_KM = 25;
const COORDINATES = /^\s*(-?\d{1,2}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)\s*$/;

/** The search in the address bar. */
function searchOf(query) {
  return {
    near: query.get("near") ?? "",
    radius_km: query.get("radius_km") ?? "",
    kind: query.getAll("kind").filter((kind) => KINDS.includes(kind)),
    // Open ones only, unless asked otherwise.
    open: query.get("open") ?? "true",
    area_id: query.get("area_id") ?? "",
  };
}

function centreOf(near) {
  const found = COORDINATES.exec(near ?? "");
  return found ? { latitude: Number(found[1]), longitude: Number(found[2]) } : null;
}

export function render(main, context) {
  const search = searchOf(new URLSearchParams(location.search));
  const error = alertBox("find-error");
  const summary = h("p", { class: "find-summary", role: "status", id: "find-summary" });
  const results = h("ol", { class: "community-list", id: "community-list" });
  const mapSlot = h("div", { class: "map-slot" });
  const chosen = new Set();
  const compareCount = h("span", { id: "compare-count" });
  const compareButton = h(
    "button",
    {
      type: "button",
      class: "primary",
      id: "compare-button",
      disabled: true,
      "aria-describedby": "compare-hint",
      onclick: () => context.navigate(`/communities/compare?ids=${[...chosen].join(",")}`),
    },
    t("find.compare"),
    " ",
    compareCount,
  );
  const compareBar = h(
    "div",
    { class: "compare-bar", role: "region", "aria-label": t("find.compare_region") },
    h("p", { class: "hint", id: "compare-hint" }, t("find.compare_hint", { min: MIN_COMPARE, max: MAX_COMPARE })),
    compareButton,
  );

  function updateCompare() {
    setText(compareCount, chosen.size ? `(${formatNumber(chosen.size)})` : "");
    compareButton.disabled = chosen.size < MIN_COMPARE || chosen.size > MAX_COMPARE;
    for (const box of results.querySelectorAll("input[type=checkbox]")) {
      box.disabled = !box.checked && chosen.size >= MAX_COMPARE;
    }
  }

  const form = searchForm(search, (next) => {
    context.navigate(withQuery("/communities", next));
  });
  main.append(
    h(
      "section",
      { class: "find" },
      h(
        "div",
        { class: "view-header" },
        h("h1", { tabindex: "-1" }, t("find.title")),
        h("a", { href: "/operate/new", "data-link": true }, t("find.start_one")),
      ),
      form,
      error,
      h(
        "section",
        { class: "find-results", "aria-labelledby": "results-title", "aria-busy": "true" },
        h("h2", { id: "results-title" }, t("find.results")),
        summary,
        compareBar,
        h("div", { class: "find-layout" }, mapSlot, results),
      ),
    ),
  );

  let stopped = false;
  async function load() {
    const params = {
      near: search.near.trim() || null,
      radius_km: search.radius_km || null,
      kind: search.kind,
      open: search.open === "any" ? null : search.open,
      area_id: search.area_id.trim() || null,
      limit: 200,
    };
    let found;
    try {
      found = await get(withQuery("/communities", params));
    } catch (failure) {
      if (stopped) return;
      showRefusal(error, failure);
      setText(summary, "");
      main.querySelector(".find-results").removeAttribute("aria-busy");
      return;
    }
    if (stopped) return;
    clearRefusal(error);
    setText(summary, found.length ? t("find.count", { count: formatNumber(found.length) }) : t("find.none"));
    results.replaceChildren(...found.map((community, index) => item(community, index)));
    const centre = centreOf(params.near);
    mapSlot.replaceChildren(
      found.length ? communityMap(found, { centre, radiusKm: centre ? Number(params.radius_km ?? DEFAULT_RADIUS_KM) : null }) : "",
    );
    main.querySelector(".find-results").removeAttribute("aria-busy");
    updateCompare();
  }

  function item(community, index) {
    const nameId = uid("community");
    const box = h("input", {
      type: "checkbox",
      id: `compare-${community.id}`,
      value: String(community.id),
      onchange: () => {
        if (box.checked) chosen.add(community.id);
        else chosen.delete(community.id);
        updateCompare();
      },
    });
    const where =
      community.distance_km !== null && community.distance_km !== undefined
        ? `${matchName(community.match)} · ${formatKm(community.distance_km)}`
        : matchName(community.match);
    return h(
      "li",
      { class: "community-card card", "aria-labelledby": nameId, "data-community-id": community.id },
      h(
        "div",
        { class: "community-card-head" },
        h("span", { class: "marker-number", "aria-hidden": "true" }, String(index + 1)),
        h("h3", { id: nameId }, h("a", { href: `/communities/${community.id}`, "data-link": true }, community.name)),
        openBadge(community),
      ),
      h(
        "p",
        { class: "hint" },
        [kindName(community.kind), community.municipality, community.grid_operator].filter(Boolean).join(" · "),
      ),
      h("p", { class: "match", "data-match": community.match }, where),
      communityFacts(community, `c${community.id}`),
      h(
        "div",
        { class: "field inline compare-choice" },
        box,
        h("label", { for: box.id }, t("find.compare_this", { name: community.name })),
      ),
    );
  }

  load();
  return () => {
    stopped = true;
  };
}

function searchForm(search, onSearch) {
  const near = h("input", {
    id: "find-near",
    name: "near",
    value: search.near,
    autocomplete: "postal-code",
    inputmode: "text",
    maxlength: 64,
    "aria-describedby": "find-near-hint",
  });
  const radius = h("input", {
    id: "find-radius",
    name: "radius_km",
    type: "number",
    min: 1,
    max: 1000,
    step: "any",
    value: search.radius_km || String(DEFAULT_RADIUS_KM),
    "aria-describedby": "find-radius-hint",
  });
  const area = h("input", {
    id: "find-area",
    name: "area_id",
    value: search.area_id,
    maxlength: 64,
    "aria-describedby": "find-area-hint",
  });
  const kinds = KINDS.map((kind) =>
    h(
      "label",
      { class: "check" },
      h("input", { type: "checkbox", name: "kind", value: kind, checked: search.kind.includes(kind) }),
      " ",
      kindName(kind),
    ),
  );
  const openChoice = h(
    "select",
    { id: "find-open", name: "open" },
    h("option", { value: "true", selected: search.open === "true" }, t("find.open_only")),
    h("option", { value: "any", selected: search.open === "any" }, t("find.open_any")),
    h("option", { value: "false", selected: search.open === "false" }, t("find.closed_only")),
  );
  const form = h(
    "form",
    { class: "card find-form", role: "search", "aria-label": t("find.search_label") },
    h(
      "div",
      { class: "field" },
      h("label", { for: "find-near" }, t("find.near")),
      near,
      h("p", { class: "hint", id: "find-near-hint" }, t("find.near_hint")),
    ),
    h(
      "div",
      { class: "find-filters" },
      h(
        "div",
        { class: "field" },
        h("label", { for: "find-radius" }, t("find.radius")),
        radius,
        h("p", { class: "hint", id: "find-radius-hint" }, t("find.radius_hint")),
      ),
      h("div", { class: "field" }, h("label", { for: "find-open" }, t("find.open")), openChoice),
      h(
        "div",
        { class: "field" },
        h("label", { for: "find-area" }, t("find.area_id")),
        area,
        h("p", { class: "hint", id: "find-area-hint" }, t("find.area_id_hint")),
      ),
    ),
    h("fieldset", { class: "kinds" }, h("legend", {}, t("find.kinds")), h("p", { class: "hint" }, t("find.kinds_hint")), kinds),
    h("button", { type: "submit", class: "primary" }, t("find.search")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    onSearch({
      near: String(data.get("near") ?? "").trim() || null,
      radius_km: data.get("radius_km") && Number(data.get("radius_km")) !== DEFAULT_RADIUS_KM ? data.get("radius_km") : null,
      kind: data.getAll("kind"),
      open: data.get("open") === "true" ? null : data.get("open"),
      area_id: String(data.get("area_id") ?? "").trim() || null,
    });
  });
  return form;
}
