// Energy figures per day and per month, as the API answers them: a member's own points
// (GET /communities/{id}/members/me/energy) and the community's totals with every member's
// points for its operator (GET /communities/{id}/energy). Each period is labelled official or
// estimate as the API labels it. The browser only works out the periods' Vienna boundaries.

import { get, withQuery } from "../api.js";
import { h, setText, uid } from "../dom.js";
import { formatDate, formatEnergy, formatEuro, formatNumber, t } from "../i18n.js";
import { period, viennaDay } from "../time.js";
import { alertBox, clearRefusal, showRefusal, sourceBadge } from "./widgets.js";

/** "YYYY-MM-DD": the Vienna day of an instant. */
export function dayText(instantMs) {
  const { year, month, day } = viennaDay(instantMs);
  return `${year}-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
}

function periodName(p, resolution) {
  return resolution === "day"
    ? formatDate(p.start, { weekday: "short", day: "numeric", month: "short" })
    : formatDate(p.start, { month: "long", year: "numeric" });
}

function sourceCell(source) {
  return source === "none" ? h("span", { class: "hint" }, t("figures.no_data")) : sourceBadge(source !== "official");
}

function table(labelledBy, headings, rows) {
  return h(
    "div",
    { class: "table-scroll" },
    h(
      "table",
      { "aria-labelledby": labelledBy, class: "figures-table" },
      h("thead", {}, h("tr", {}, headings.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, rows),
    ),
  );
}

/** One metering point's periods: a consumer's or a producer's columns. */
export function pointTable(point, resolution, title = null) {
  const consumer = point.role === "consumer";
  const headings = consumer
    ? [t("figures.period"), t("figures.source"), t("figures.consumption"), t("figures.allocated"), t("figures.covered"), t("figures.residual"), t("figures.community_price"), t("figures.savings")]
    : [t("figures.period"), t("figures.source"), t("figures.production"), t("figures.credited"), t("figures.surplus"), t("figures.revenue"), t("figures.gain")];
  const rows = point.periods.map((p) => {
    const cells = consumer
      ? [formatEnergy(p.measured_wh), formatEnergy(p.allocated_wh), formatEnergy(p.covered_wh), formatEnergy(p.residual_wh), formatEuro(p.community_price_eur), formatEuro(p.savings_eur)]
      : [formatEnergy(p.measured_wh), formatEnergy(p.credited_wh), formatEnergy(p.surplus_wh), formatEuro(p.community_price_eur), formatEuro(p.gain_eur)];
    return h(
      "tr",
      { "data-period": p.period, "data-source": p.source },
      h("th", { scope: "row" }, periodName(p, resolution)),
      h("td", {}, sourceCell(p.source)),
      cells.map((cell) => h("td", {}, cell)),
    );
  });
  const captionId = uid("figures-caption");
  return h(
    "div",
    { class: "point-figures", "data-metering-point": point.metering_point, "data-role": point.role },
    h("h3", { id: captionId }, title ?? t("figures.point", { point: point.metering_point })),
    point.pricing_note ? h("p", { class: "hint" }, point.pricing_note) : null,
    table(captionId, headings, rows),
  );
}

/** The community's totals per period (operator). */
export function totalsTable(totals, resolution) {
  const captionId = uid("totals-caption");
  const rows = totals.map((p) =>
    h(
      "tr",
      { "data-period": p.period, "data-source": p.source },
      h("th", { scope: "row" }, periodName(p, resolution)),
      h("td", {}, sourceCell(p.source)),
      [
        formatEnergy(p.consumption_wh),
        formatEnergy(p.covered_wh),
        formatEnergy(p.production_wh),
        formatEnergy(p.surplus_wh),
        formatEuro(p.consumers_paid_eur),
        formatEuro(p.producers_credited_eur),
        formatEuro(p.savings_eur),
        formatNumber(p.priced_consumers),
      ].map((cell) => h("td", {}, cell)),
    ),
  );
  return h(
    "div",
    { class: "community-totals" },
    h("h3", { id: captionId }, t("totals.title")),
    table(
      captionId,
      [
        t("figures.period"),
        t("figures.source"),
        t("totals.consumption"),
        t("totals.covered"),
        t("totals.production"),
        t("totals.surplus"),
        t("totals.consumers_paid"),
        t("totals.producers_credited"),
        t("totals.savings"),
        t("totals.priced_consumers"),
      ],
      rows,
    ),
  );
}

/**
 * A card with "by day" (a month of days) and "by month" (a year of months), earlier and later:
 * ``path`` is asked with from, to and resolution; ``render(answer, resolution)`` gives the
 * nodes to show. reload() asks again.
 */
export function figuresSection({ id, title, path, render }) {
  const error = alertBox(`${id}-error`);
  const state = { resolution: "day", shift: 0 };
  const label = h("p", { class: "period", id: `${id}-period`, "aria-live": "polite" });
  const note = h("p", { class: "hint", id: `${id}-note` });
  const body = h("div", { id });
  const choices = ["day", "month"].map((resolution) =>
    h(
      "button",
      {
        type: "button",
        class: "segment",
        "data-resolution": resolution,
        "aria-pressed": String(resolution === state.resolution),
        onclick: () => {
          state.resolution = resolution;
          state.shift = 0;
          for (const button of choices) button.setAttribute("aria-pressed", String(button.dataset.resolution === resolution));
          load();
        },
      },
      resolution === "day" ? t("figures.by_day") : t("figures.by_month"),
    ),
  );
  const earlier = h("button", { type: "button", class: "icon", "aria-label": t("figures.earlier"), onclick: () => move(-1) }, "‹");
  const later = h("button", { type: "button", class: "icon", "aria-label": t("figures.later"), onclick: () => move(1) }, "›");
  const titleId = `${id}-title`;
  const element = h(
    "section",
    { class: "card figures", "aria-labelledby": titleId },
    h("h2", { id: titleId }, title),
    h("div", { class: "range-bar", role: "group", "aria-label": t("figures.resolution") }, choices),
    h("div", { class: "period-bar" }, earlier, label, later),
    note,
    error,
    body,
  );

  function move(step) {
    state.shift = Math.min(0, state.shift + step);
    load();
  }

  let asked = 0;
  async function load() {
    // By day: a month of days; by month: a year of months (boundaries in Vienna).
    const [start, monthEnd] = period(state.resolution === "day" ? "month" : "year", Date.now(), state.shift);
    const resolution = state.resolution;
    // This month's days only up to today: the days to come have nothing to show yet.
    const end = resolution === "day" && state.shift === 0 ? period("day", Date.now())[1] : monthEnd;
    const mine = ++asked;
    later.disabled = state.shift >= 0;
    setText(label, resolution === "day" ? formatDate(start, { month: "long", year: "numeric" }) : formatDate(start, { year: "numeric" }));
    body.setAttribute("aria-busy", "true");
    let answer;
    try {
      answer = await get(withQuery(path, { from: dayText(start), to: dayText(end), resolution }));
    } catch (failure) {
      if (mine !== asked) return;
      showRefusal(error, failure);
      body.replaceChildren();
      body.removeAttribute("aria-busy");
      return;
    }
    if (mine !== asked) return; // a later choice overtook this answer
    clearRefusal(error);
    setText(note, answer.estimate_note ?? "");
    body.replaceChildren(...render(answer, resolution).filter(Boolean));
    body.removeAttribute("aria-busy");
  }

  load();
  return { element, reload: load };
}
