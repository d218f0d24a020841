// Reconciliation (operator): the grid operator's official G.01 of each metering point against
// the member's own meter, per quarter hour, hour or day; a difference beyond both thresholds is
// flagged (GET /communities/{id}/reconciliation). Every figure is the API's.

import { get, withQuery } from "../api.js";
import { h, setText, uid } from "../dom.js";
import { formatDate, formatDecimal, formatEnergy, formatNumber, t } from "../i18n.js";
import { viennaDay, viennaMidnight } from "../time.js";
import { alertBox, badge, clearRefusal, facts, roleName, showRefusal } from "./widgets.js";

const RESOLUTIONS = [
  ["15min", "reconcile.quarter_hour"],
  ["1h", "reconcile.hour"],
  ["1d", "reconcile.day"],
];

/** "YYYY-MM-DD" of a Vienna day. */
function dayText({ year, month, day }) {
  return `${year}-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
}

function midnightOf(text) {
  const [year, month, day] = text.split("-").map(Number);
  return viennaMidnight(year, month, day);
}

export function reconciliation(community) {
  const refusal = alertBox("reconcile-error");
  const result = h("div", { id: "reconcile-result", "aria-live": "polite" });
  const ids = { from: uid("rec-from"), to: uid("rec-to"), resolution: uid("rec-res"), wh: uid("rec-wh"), pct: uid("rec-pct") };
  const yesterday = viennaDay(Date.now() - 86_400_000);
  const submit = h("button", { type: "submit", class: "primary" }, t("reconcile.run"));
  const form = h(
    "form",
    { class: "reconcile-form", novalidate: true, "aria-describedby": "reconcile-error" },
    h(
      "div",
      { class: "form-columns" },
      h("div", { class: "field" }, h("label", { for: ids.from }, t("reconcile.from")), h("input", { type: "date", id: ids.from, name: "from", value: dayText(yesterday), required: true })),
      h(
        "div",
        { class: "field" },
        h("label", { for: ids.to }, t("reconcile.to")),
        h("input", { type: "date", id: ids.to, name: "to", value: dayText(yesterday), required: true, "aria-describedby": `${ids.to}-hint` }),
        h("p", { class: "hint", id: `${ids.to}-hint` }, t("reconcile.to_hint")),
      ),
    ),
    h(
      "div",
      { class: "form-columns three" },
      h(
        "div",
        { class: "field" },
        h("label", { for: ids.resolution }, t("reconcile.resolution")),
        h("select", { id: ids.resolution, name: "resolution" }, RESOLUTIONS.map(([value, key]) => h("option", { value, selected: value === "1h" }, t(key)))),
      ),
      h("div", { class: "field" }, h("label", { for: ids.wh }, t("reconcile.threshold_wh")), h("input", { type: "number", id: ids.wh, name: "threshold_wh", min: 0, step: 1, value: 50 })),
      h("div", { class: "field" }, h("label", { for: ids.pct }, t("reconcile.threshold_percent")), h("input", { type: "number", id: ids.pct, name: "threshold_percent", min: 0, step: "0.01", value: 5 })),
    ),
    h("div", { class: "field inline" }, h("input", { type: "checkbox", id: `${ids.from}-flagged`, name: "flagged_only" }), h("label", { for: `${ids.from}-flagged` }, t("reconcile.flagged_only"))),
    refusal,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearRefusal(refusal);
    const data = new FormData(form);
    const from = String(data.get("from") ?? "");
    const to = String(data.get("to") ?? "");
    if (!from || !to) {
      setText(refusal, t("reconcile.choose_days"));
      return;
    }
    // The days chosen, from the first's Vienna midnight to the midnight after the last.
    const [year, month, day] = to.split("-").map(Number);
    const query = {
      from: new Date(midnightOf(from)).toISOString(),
      to: new Date(viennaMidnight(year, month, day + 1)).toISOString(),
      resolution: data.get("resolution"),
      threshold_wh: data.get("threshold_wh"),
      threshold_percent: data.get("threshold_percent"),
      flagged_only: data.get("flagged_only") === "on" ? "true" : null,
    };
    submit.disabled = true;
    try {
      const answer = await get(withQuery(`/communities/${community.id}/reconciliation`, query));
      result.replaceChildren(report(answer));
    } catch (failure) {
      showRefusal(refusal, failure);
      result.replaceChildren();
    } finally {
      submit.disabled = false;
    }
  });
  return h(
    "section",
    { class: "reconciliation", "aria-labelledby": "reconcile-title" },
    h("h3", { id: "reconcile-title" }, t("reconcile.title")),
    h("p", { class: "hint" }, t("reconcile.explain")),
    form,
    result,
  );
}

function report(answer) {
  if (!answer.points.length) return h("p", { class: "hint", id: "reconcile-empty" }, t("reconcile.no_points"));
  return h(
    "div",
    {},
    h(
      "p",
      { class: "hint" },
      t("reconcile.thresholds", {
        wh: formatEnergy(answer.threshold_wh),
        percent: formatDecimal(answer.threshold_percent, 0, 2),
        range: `${formatDate(answer.start)} – ${formatDate(answer.end)}`,
      }),
    ),
    h("ul", { class: "reconcile-points" }, answer.points.map(pointItem)),
  );
}

function pointItem(point) {
  const titleId = uid("rec-point");
  return h(
    "li",
    { class: "card reconcile-point", "aria-labelledby": titleId, "data-metering-point": point.metering_point },
    h(
      "div",
      { class: "membership-head" },
      h("h4", { id: titleId, class: "mono" }, point.metering_point),
      point.flagged ? badge("flag", t("reconcile.flagged_count", { count: formatNumber(point.flagged) })) : badge("ok", t("reconcile.none_flagged")),
    ),
    facts([
      [t("membership.role"), roleName(point.role)],
      [t("reconcile.meter"), point.meter_id === null ? t("reconcile.no_meter") : `#${point.meter_id}`],
      point.note ? [t("reconcile.note"), point.note] : null,
      [t("reconcile.compared"), h("span", { "data-value": "compared" }, formatNumber(point.compared))],
      [t("reconcile.flagged"), h("span", { "data-value": "flagged" }, formatNumber(point.flagged))],
      [t("reconcile.without_official"), h("span", { "data-value": "without_official" }, formatNumber(point.without_official))],
      [t("reconcile.without_gateway"), h("span", { "data-value": "without_gateway" }, formatNumber(point.without_gateway))],
    ]),
    point.intervals.length
      ? h(
          "div",
          { class: "table-scroll" },
          h(
            "table",
            { class: "reconcile-table" },
            h("caption", { class: "visually-hidden" }, point.metering_point),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                [t("official.interval"), t("reconcile.official"), t("reconcile.gateway"), t("reconcile.difference"), t("reconcile.difference_percent"), t("reconcile.flag")].map((text) =>
                  h("th", { scope: "col" }, text),
                ),
              ),
            ),
            h(
              "tbody",
              {},
              point.intervals.map((c) =>
                h(
                  "tr",
                  { class: c.flagged ? "flagged" : null, "data-start": c.start },
                  h("td", {}, formatDate(c.start)),
                  h("td", {}, formatEnergy(c.official_wh)),
                  h("td", {}, formatEnergy(c.gateway_wh)),
                  h("td", {}, formatEnergy(c.difference_wh)),
                  h("td", {}, c.difference_percent === null ? "–" : `${formatDecimal(c.difference_percent, 1, 1)} %`),
                  h("td", {}, c.flagged ? t("reconcile.flag_yes") : ""),
                ),
              ),
            ),
          ),
        )
      : null,
  );
}
