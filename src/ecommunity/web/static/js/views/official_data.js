// The grid operator's official 15-minute values of a community (operator only): upload a
// delivery as CSV; what it stored, corrected and still misses (gaps); whether our allocation
// reproduces the delivered one; earlier imports and the values re-deliveries corrected.

import { get, postCsv, withQuery } from "../api.js";
import { h, setText, uid } from "../dom.js";
import { formatDate, formatEnergy, formatNumber, t } from "../i18n.js";
import { alertBox, badge, clearRefusal, facts, roleName, showRefusal, statusBox } from "./widgets.js";
import { reconciliation } from "./reconciliation.js";

/** The largest file sent (the server refuses more than 2 MB by default). [bytes] */
const MAX_BYTES = 2_000_000;

function table(id, caption, headings, rows) {
  return h(
    "div",
    { class: "table-scroll" },
    h(
      "table",
      { id },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headings.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))),
    ),
  );
}

function range(start, end) {
  return `${formatDate(start)} – ${formatDate(end)}`;
}

function wh(value) {
  return formatEnergy(value);
}

/** The answer to an upload: counts, gaps and the allocation check. */
export function importReport(report) {
  const check = report.allocation_check;
  return h(
    "div",
    { class: "import-report", id: "import-report" },
    h("h3", {}, t("official.report_title", { id: report.import_id })),
    facts([
      [t("official.range"), range(report.first_start, report.last_end), "report-range"],
      [t("official.rows"), formatNumber(report.rows), "report-rows"],
      [t("official.points"), formatNumber(report.metering_points), "report-points"],
      [t("official.new_values"), formatNumber(report.new_values), "report-new"],
      [t("official.corrections"), formatNumber(report.corrections), "report-corrections"],
      [t("official.unchanged"), formatNumber(report.unchanged), "report-unchanged"],
      [t("official.missing_values"), formatNumber(report.missing_values), "report-missing"],
    ]),
    report.gaps.length
      ? table(
          "report-gaps",
          t("official.gaps", { count: formatNumber(report.missing_values) }),
          [t("official.metering_point"), t("official.quantity"), t("official.from"), t("official.to"), t("official.intervals")],
          report.gaps.map((gap) => [
            h("span", { class: "mono" }, gap.metering_point),
            gap.quantity,
            formatDate(gap.start),
            formatDate(gap.end),
            formatNumber(gap.intervals),
          ]),
        )
      : h("p", { id: "report-no-gaps" }, t("official.no_gaps")),
    allocationCheck(check),
  );
}

/** Our allocation of the official G.01 against the grid operator's figures. */
function allocationCheck(check) {
  return h(
    "div",
    { class: "allocation-check", id: "allocation-check" },
    h(
      "h4",
      {},
      t("official.check_title"),
      " ",
      check.reproduced ? badge("ok", t("official.reproduced")) : badge("flag", t("official.not_reproduced")),
    ),
    h("p", { class: "hint" }, t("official.check_explain", { tolerance: wh(check.tolerance_wh) })),
    check.problem ? h("p", { class: "form-error" }, check.problem) : null,
    facts([
      [t("official.checked_intervals"), formatNumber(check.checked_intervals)],
      [t("official.unchecked_intervals"), formatNumber(check.unchecked_intervals)],
    ]),
    check.quantities.length
      ? table(
          "check-quantities",
          t("official.check_quantities"),
          [t("official.role"), t("official.quantity"), t("official.compared"), t("official.equal"), t("official.beyond"), t("official.max_difference")],
          check.quantities.map((q) => [
            roleName(q.role),
            q.quantity,
            formatNumber(q.compared),
            formatNumber(q.equal),
            formatNumber(q.beyond_tolerance),
            wh(q.max_abs_difference_wh),
          ]),
        )
      : null,
    check.differences.length
      ? table(
          "check-differences",
          t("official.differences"),
          [t("official.metering_point"), t("official.quantity"), t("official.interval"), t("official.official_value"), t("official.our_value")],
          check.differences.map((d) => [
            h("span", { class: "mono" }, d.metering_point),
            d.quantity,
            formatDate(d.interval_start),
            wh(d.official_wh),
            wh(d.ours_wh),
          ]),
        )
      : null,
  );
}

/** A delivery refused whole: every problem with its line. */
function problems(error) {
  const body = error.body ?? {};
  const list = body.problems ?? [];
  return h(
    "div",
    { class: "import-problems", id: "import-problems" },
    h("p", {}, t("official.refused", { count: formatNumber(body.problem_count ?? list.length) })),
    list.length
      ? h(
          "ul",
          {},
          list.map((problem) => h("li", {}, t("official.problem_line", { line: formatNumber(problem.line) }), " ", problem.reason)),
        )
      : null,
  );
}

export function officialData(community) {
  const fileId = uid("official-file");
  const refusal = alertBox("official-error");
  const done = statusBox("official-done");
  const result = h("div", { class: "official-result", "aria-live": "polite" });
  const imports = h("div", { id: "official-imports" });
  const corrections = h("div", { id: "official-corrections" });
  const submit = h("button", { type: "submit", class: "primary" }, t("official.upload"));
  const form = h(
    "form",
    { class: "upload-form", "aria-describedby": "official-error" },
    h(
      "div",
      { class: "field" },
      h("label", { for: fileId }, t("official.file")),
      h("input", { type: "file", id: fileId, name: "file", accept: ".csv,text/csv,text/plain", required: true, "aria-describedby": `${fileId}-hint` }),
      h("p", { class: "hint", id: `${fileId}-hint` }, t("official.file_hint")),
    ),
    refusal,
    done,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearRefusal(refusal);
    setText(done, "");
    const file = form.elements.file.files[0];
    if (!file) {
      setText(refusal, t("official.choose_file"));
      return;
    }
    if (file.size > MAX_BYTES) {
      setText(refusal, t("official.too_large"));
      return;
    }
    submit.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      const report = await postCsv(`/communities/${community.id}/official-energy`, await file.text());
      setText(done, t("official.imported", { rows: formatNumber(report.rows) }));
      result.replaceChildren(importReport(report));
      loadImports();
      loadCorrections(report.first_start, report.last_end);
    } catch (failure) {
      showRefusal(refusal, failure);
      result.replaceChildren(failure.code === "invalid_official_data" ? problems(failure) : "");
    } finally {
      submit.disabled = false;
      form.removeAttribute("aria-busy");
    }
  });

  async function loadImports() {
    let earlier;
    try {
      earlier = await get(withQuery(`/communities/${community.id}/official-energy/imports`, { limit: 20 }));
    } catch (failure) {
      showRefusal(refusal, failure);
      return;
    }
    imports.replaceChildren(
      earlier.length
        ? table(
            "imports-table",
            t("official.imports"),
            [t("official.imported_at"), t("official.range"), t("official.rows"), t("official.new_values"), t("official.corrections"), t("official.missing_values")],
            earlier.map((record) => [
              formatDate(record.imported_at),
              range(record.first_start, record.last_end),
              formatNumber(record.rows),
              formatNumber(record.new_values),
              formatNumber(record.corrections),
              formatNumber(record.missing_values),
            ]),
          )
        : h("p", { class: "hint" }, t("official.no_imports")),
    );
    if (earlier.length && !corrections.childElementCount) loadCorrections(earlier[0].first_start, earlier[0].last_end);
  }

  async function loadCorrections(start, end) {
    let changed;
    try {
      changed = await get(withQuery(`/communities/${community.id}/official-energy/corrections`, { from: start, to: end, limit: 200 }));
    } catch (failure) {
      // A delivery longer than the API's longest range has no list of corrections here.
      corrections.replaceChildren(h("p", { class: "hint" }, t("official.corrections_unavailable")));
      return;
    }
    corrections.replaceChildren(
      changed.length
        ? table(
            "corrections-table",
            t("official.corrections_title", { range: range(start, end) }),
            [t("official.metering_point"), t("official.quantity"), t("official.interval"), t("official.before"), t("official.after")],
            changed.map((c) => [h("span", { class: "mono" }, c.metering_point), c.quantity, formatDate(c.interval_start), wh(c.previous_energy_wh), wh(c.energy_wh)]),
          )
        : h("p", { class: "hint", id: "no-corrections" }, t("official.no_corrections", { range: range(start, end) })),
    );
  }

  loadImports();
  return h(
    "section",
    { class: "card", "aria-labelledby": "official-title" },
    h("h2", { id: "official-title" }, t("official.title")),
    h("p", {}, t("official.explain")),
    h("pre", { class: "csv-example", "aria-label": t("official.example") }, "interval_start,metering_point,quantity,energy_wh\n2026-06-15T10:00:00+02:00,AT0030000000000000000000000000001,G.01,412"),
    form,
    result,
    h("h3", {}, t("official.imports")),
    imports,
    h("h3", {}, t("official.corrections_heading")),
    corrections,
    reconciliation(community),
  );
}
