// Compare two to four communities side by side, with your estimated yearly savings in each
// (GET /communities/compare): what the estimate stands on (your gateway's history, or an
// annual consumption you enter, shaped by the standard load profile), and every figure as the
// API answers it.

import { get, withQuery } from "../api.js";
import { h, setText } from "../dom.js";
import {
  formatCtPerKwh,
  formatDate,
  formatDecimal,
  formatEuro,
  formatKwp,
  formatNumber,
  formatPercent,
  formatShare,
  t,
} from "../i18n.js";
import { plantsLine, openBadge } from "./community_facts.js";
import { MAX_COMPARE, MIN_COMPARE } from "./communities.js";
import { alertBox, clearRefusal, kindName, modelName, showRefusal } from "./widgets.js";

const BASIS_TEXT = { metered: "compare.basis_metered", h0: "compare.basis_h0" };
const PRODUCTION_TEXT = { metered: "compare.production_metered", kwp: "compare.production_kwp" };
const CONSUMPTION_TEXT = {
  metered: "compare.others_metered",
  assumed: "compare.others_assumed",
  mixed: "compare.others_mixed",
  none: "compare.others_none",
};

function kwh(value) {
  if (value === null || value === undefined) return "–";
  return `${formatDecimal(value, 0, 0)}\u00a0kWh`;
}

function idsOf(query) {
  return (query.get("ids") ?? "")
    .split(",")
    .map((part) => part.trim())
    .filter((part) => /^\d{1,10}$/.test(part))
    .map(Number);
}

/** What the user may give the estimate, from the address bar. */
const INPUTS = ["annual_kwh", "supplier_ct_per_kwh", "grid_fee_ct_per_kwh", "renewable_levy_ct_per_kwh"];

export function render(main, context) {
  const query = new URLSearchParams(location.search);
  const ids = idsOf(query);
  const given = Object.fromEntries(INPUTS.map((name) => [name, query.get(name) ?? ""]));
  const error = alertBox("compare-error");
  const assumptions = h("section", { class: "card", "aria-labelledby": "assumptions-title", id: "assumptions" });
  const table = h("div", { class: "compare-table" });
  const consumption = consumptionForm(given, (values) => {
    context.navigate(withQuery("/communities/compare", { ids: ids.join(","), ...values }));
  });
  const section = h(
    "section",
    { class: "compare", "aria-busy": "true" },
    h(
      "div",
      { class: "view-header" },
      h("h1", { tabindex: "-1" }, t("compare.title")),
      h("a", { href: "/communities", "data-link": true }, t("compare.back")),
    ),
    error,
    consumption,
    assumptions,
    table,
  );
  main.append(section);
  if (ids.length < MIN_COMPARE || ids.length > MAX_COMPARE) {
    setText(error, t("compare.choose", { min: MIN_COMPARE, max: MAX_COMPARE }));
    section.removeAttribute("aria-busy");
    return null;
  }
  let stopped = false;
  (async () => {
    let answer;
    try {
      answer = await get(withQuery("/communities/compare", { ids: ids.join(","), ...given }));
    } catch (failure) {
      if (stopped) return;
      showRefusal(error, failure, {
        annual_kwh: t("compare.annual_invalid"),
        supplier_ct_per_kwh: t("operate.invalid_price"),
        grid_fee_ct_per_kwh: t("operate.invalid_price"),
        renewable_levy_ct_per_kwh: t("operate.invalid_price"),
      });
      // No history to estimate from: the API needs a yearly consumption.
      if (failure.code === "consumption_needed" || failure.status === 422 || failure.code === "bad_tariff") {
        consumption.hidden = false;
        consumption.querySelector("input").focus();
      }
      section.removeAttribute("aria-busy");
      return;
    }
    if (stopped) return;
    clearRefusal(error);
    // Asked for only where the API estimates from an annual consumption.
    consumption.hidden = answer.assumptions.basis === "metered";
    assumptions.replaceChildren(...assumptionsOf(answer.assumptions).filter(Boolean));
    table.replaceChildren(sideBySide(answer.communities));
    section.removeAttribute("aria-busy");
  })();
  return () => {
    stopped = true;
  };
}

function consumptionForm(given, onSubmit) {
  const price = (name, label) =>
    h(
      "div",
      { class: "field" },
      h("label", { for: `compare-${name}` }, label),
      h("input", { id: `compare-${name}`, name, inputmode: "decimal", value: given[name] }),
    );
  const tariffOpen = Boolean(given.supplier_ct_per_kwh || given.grid_fee_ct_per_kwh || given.renewable_levy_ct_per_kwh);
  const form = h(
    "form",
    { class: "card consumption-form", hidden: true, novalidate: true, "aria-labelledby": "consumption-title" },
    h("h2", { id: "consumption-title" }, t("compare.consumption_title")),
    h(
      "div",
      { class: "field" },
      h("label", { for: "annual-kwh" }, t("compare.annual_kwh")),
      h("input", {
        id: "annual-kwh",
        name: "annual_kwh",
        inputmode: "decimal",
        value: given.annual_kwh,
        required: true,
        "aria-describedby": "annual-kwh-hint",
      }),
      h("p", { class: "hint", id: "annual-kwh-hint" }, t("compare.annual_kwh_hint")),
    ),
    h(
      "details",
      { open: tariffOpen },
      h("summary", {}, t("compare.own_tariff")),
      h("p", { class: "hint" }, t("compare.own_tariff_hint")),
      h(
        "div",
        { class: "form-columns three" },
        price("supplier_ct_per_kwh", t("tariff.energy_price")),
        price("grid_fee_ct_per_kwh", t("tariff.grid_usage")),
        price("renewable_levy_ct_per_kwh", t("tariff.levy")),
      ),
    ),
    h("button", { type: "submit", class: "primary" }, t("compare.estimate")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const values = {};
    for (const name of INPUTS) {
      const text = String(data.get(name) ?? "").trim();
      // A German decimal comma is sent as a point; anything else as typed, for the API to judge.
      values[name] = /^\d+,\d+$/.test(text) ? text.replace(",", ".") : text || null;
    }
    onSubmit(values);
  });
  return form;
}

function assumptionsOf(a) {
  const tariff = a.tariff;
  return [
    h("h2", { id: "assumptions-title" }, t("compare.assumptions")),
    h("p", { id: "compare-basis", "data-basis": a.basis }, a.basis in BASIS_TEXT ? t(BASIS_TEXT[a.basis]) : a.basis),
    h(
      "dl",
      {},
      h("dt", {}, t("compare.annual_consumption")),
      h("dd", { id: "compare-annual" }, kwh(a.annual_consumption_kwh)),
      a.history
        ? [
            h("dt", {}, t("compare.history")),
            h(
              "dd",
              { id: "compare-history" },
              t("compare.history_used", {
                days: formatDecimal(a.history.days, 0, 1),
                from: formatDate(a.history.first, { dateStyle: "medium" }),
                to: formatDate(a.history.last, { dateStyle: "medium" }),
              }),
            ),
          ]
        : null,
      h("dt", {}, t("compare.year")),
      h("dd", {}, `${formatDate(a.year_start, { dateStyle: "medium" })} – ${formatDate(a.year_end, { dateStyle: "medium" })}`),
      h("dt", {}, t("compare.priced_on")),
      h("dd", {}, formatDate(a.priced_on, { dateStyle: "long", timeZone: "UTC" })),
      h("dt", {}, t("compare.tariff")),
      h(
        "dd",
        { id: "compare-tariff" },
        t("compare.tariff_parts", {
          energy: formatCtPerKwh(tariff.energy_ct_per_kwh),
          grid: formatCtPerKwh(tariff.grid_usage_ct_per_kwh),
          levy: formatCtPerKwh(tariff.renewable_levy_ct_per_kwh),
          level: formatNumber(tariff.grid_level),
        }),
      ),
      h("dt", {}, t("compare.your_factor")),
      h("dd", {}, formatPercent(a.participation_factor)),
    ),
    a.notes.length ? h("ul", { class: "notes" }, a.notes.map((note) => h("li", {}, note))) : null,
  ];
}

function sideBySide(communities) {
  const estimate = (community, pick) => (community.estimate ? pick(community.estimate) : "–");
  const rows = [
    [t("community.kind"), (c) => kindName(c.kind)],
    [t("community.allocation_model"), (c) => modelName(c.allocation_model)],
    [t("compare.open"), (c) => openBadge(c)],
    [t("community.consumer_price"), (c) => formatCtPerKwh(c.consumer_price_ct_per_kwh), "consumer-price"],
    [t("community.producer_price"), (c) => formatCtPerKwh(c.producer_price_ct_per_kwh), "producer-price"],
    [t("community.members"), (c) => formatNumber(c.member_count), "members"],
    [t("community.generation"), (c) => h("span", {}, formatKwp(c.generation_kwp), h("span", { class: "hint" }, ` (${plantsLine(c.plants)})`)), "generation"],
    [t("compare.production_basis"), (c) => estimate(c, (e) => t(PRODUCTION_TEXT[e.production_basis] ?? e.production_basis))],
    [t("compare.others_basis"), (c) => estimate(c, (e) => t(CONSUMPTION_TEXT[e.community_consumption_basis] ?? e.community_consumption_basis))],
    [t("compare.static_key"), (c) => estimate(c, (e) => (e.static_key === null ? "–" : formatDecimal(e.static_key, 0, 9)))],
    [t("compare.consumption"), (c) => estimate(c, (e) => kwh(e.consumption_kwh)), "consumption"],
    [t("compare.covered"), (c) => estimate(c, (e) => kwh(e.covered_kwh)), "covered"],
    [t("compare.coverage"), (c) => estimate(c, (e) => formatShare(e.coverage_share)), "coverage"],
    [t("compare.community_cost"), (c) => estimate(c, (e) => formatEuro(e.community_cost_eur)), "community-cost"],
    [t("compare.grid_cost"), (c) => estimate(c, (e) => formatEuro(e.grid_cost_eur)), "grid-cost"],
    [t("compare.savings"), (c) => estimate(c, (e) => formatEuro(e.savings_eur)), "savings"],
    [t("community.member_fee"), (c) => formatEuro(c.member_fee_eur_per_year), "member-fee"],
    [t("compare.net_savings"), (c) => (c.estimate ? h("strong", {}, formatEuro(c.estimate.net_savings_eur)) : h("span", { class: "hint" }, c.estimate_unavailable ?? "–")), "net-savings"],
    [
      t("compare.notes"),
      (c) => {
        const notes = c.estimate?.notes ?? [];
        return notes.length ? h("ul", { class: "notes" }, notes.map((note) => h("li", {}, note))) : "–";
      },
    ],
  ];
  return h(
    "div",
    { class: "table-scroll compare-scroll" },
    h(
      "table",
      { id: "compare-table" },
      h("caption", {}, t("compare.caption")),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("td", {}),
          communities.map((c) =>
            h("th", { scope: "col", "data-community-id": c.id }, h("a", { href: `/communities/${c.id}`, "data-link": true }, c.name)),
          ),
        ),
      ),
      h(
        "tbody",
        {},
        rows.map(([label, cell, key]) =>
          h(
            "tr",
            { "data-row": key ?? null, class: key === "net-savings" ? "highlight" : null },
            h("th", { scope: "row" }, label),
            communities.map((c) => h("td", { "data-community-id": c.id }, cell(c))),
          ),
        ),
      ),
    ),
  );
}
