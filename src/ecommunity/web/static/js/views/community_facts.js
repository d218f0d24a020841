// A community's figures as the finder, its page and the comparison show them: prices, fee,
// members, generation and recent performance, each exactly as the API answers it.

import { h } from "../dom.js";
import { formatCtPerKwh, formatEuro, formatKwp, formatNumber, formatShare, t } from "../i18n.js";
import { badge, facts, kindName, sourceBadge, sourceName } from "./widgets.js";

/** The plants in one line: "PV 55.5 kWp, Hydro 12 kWp". */
export function plantsLine(plants) {
  if (!plants.length) return t("community.no_plants");
  return plants.map((plant) => `${sourceName(plant.source)} ${formatKwp(plant.peak_power_kwp)}`).join(", ");
}

/** How the community did lately, or "no data yet" while the API has none. */
export function performanceNode(performance, idPrefix) {
  if (!performance) {
    return h("span", { class: "no-data", id: idPrefix ? `${idPrefix}-performance` : null }, t("community.no_data_yet"));
  }
  return h(
    "span",
    { class: "performance", id: idPrefix ? `${idPrefix}-performance` : null },
    h(
      "span",
      { class: "performance-line" },
      t("community.self_sufficiency"),
      " ",
      h("strong", { "data-value": "self_sufficiency" }, formatShare(performance.self_sufficiency)),
    ),
    h(
      "span",
      { class: "performance-line" },
      t("community.production_used"),
      " ",
      h("strong", { "data-value": "production_used_share" }, formatShare(performance.production_used_share)),
    ),
    h(
      "span",
      { class: "performance-line hint" },
      t("community.performance_period", { days: formatNumber(performance.period_days) }),
      " ",
      sourceBadge(performance.estimate),
    ),
  );
}

/** Open for new members, or not. */
export function openBadge(community) {
  return community.open_for_members
    ? badge("open", t("community.open"))
    : badge("closed", t("community.closed"));
}

/** The figures every community shows, as a definition list; ``idPrefix`` names each value;
 * ``more``: further [term, value] pairs. */
export function communityFacts(community, idPrefix = null, more = []) {
  const id = (name) => (idPrefix ? `${idPrefix}-${name}` : null);
  return facts(
    [
      [t("community.kind"), kindName(community.kind), id("kind")],
      [t("community.consumer_price"), formatCtPerKwh(community.consumer_price_ct_per_kwh), id("consumer-price")],
      [t("community.producer_price"), formatCtPerKwh(community.producer_price_ct_per_kwh), id("producer-price")],
      [t("community.member_fee"), t("community.per_year", { amount: formatEuro(community.member_fee_eur_per_year) }), id("member-fee")],
      [t("community.members"), formatNumber(community.member_count), id("members")],
      [
        t("community.generation"),
        h("span", {}, formatKwp(community.generation_kwp), h("span", { class: "hint" }, ` (${plantsLine(community.plants)})`)),
        id("generation"),
      ],
      [t("community.performance"), performanceNode(community.performance, idPrefix), null],
      ...more,
    ],
    { class: "community-facts" },
  );
}
