// The history charts of "My energy" (uPlot, vendored): a day of minute readings (power), a week
// in quarter hours, a month in hours and a year in days (energy per interval from the API).
// Drag across a chart to zoom; the buttons zoom too and move by whole periods.

import { get, readingsPath } from "../api.js";
import { h, setText, uid } from "../dom.js";
import { DASH, TIME_ZONE, formatDate, formatEnergy, formatEnergyTicks, formatPower, t } from "../i18n.js";
import { RANGES, period } from "../time.js";

/** The API's resolution for each range. */
export const RESOLUTION = { day: "1min", week: "15min", month: "1h", year: "1d" };
const RANGE_KEY = "ecommunity.range";
/** Minute readings further apart than this leave a gap in the line. [s] */
const GAP_S = 300;
/** The current period is fetched again at most this often while data arrives. [ms] */
const CURRENT_REFRESH_MS = 60_000;
const COLORS = {
  import: "#b45309",
  importFill: "rgba(180, 83, 9, 0.15)",
  export: "#047857",
  exportFill: "rgba(4, 120, 87, 0.15)",
  axis: "#334155",
  grid: "#e2e8f0",
};

let uplotLoading = null;

/** The vendored uPlot (its IIFE build defines window.uPlot), loaded once and only when needed. */
export function loadUplot() {
  if (!uplotLoading) {
    uplotLoading = new Promise((resolve, reject) => {
      const style = h("link", { rel: "stylesheet", href: "/static/vendor/uplot/uPlot.min.css" });
      const script = h("script", { src: "/static/vendor/uplot/uPlot.iife.min.js" });
      script.addEventListener("load", () => resolve(window.uPlot));
      script.addEventListener("error", () => {
        uplotLoading = null;
        reject(new Error("the chart library did not load"));
      });
      document.head.append(style, script);
    });
  }
  return uplotLoading;
}

function storedRange() {
  try {
    const range = localStorage.getItem(RANGE_KEY);
    return RANGES.includes(range) ? range : "day";
  } catch {
    return "day";
  }
}

function chartHeight() {
  return window.innerWidth < 600 ? 220 : 300;
}

/** Tick labels that suit the spacing of the ticks (also when zoomed). */
function timeTicks(u, splits, axisIndex, space, incrementS) {
  return splits.map((s) => {
    const ms = s * 1000;
    if (incrementS < 86_400) return formatDate(ms, { hour: "2-digit", minute: "2-digit" });
    if (incrementS < 28 * 86_400) return formatDate(ms, { weekday: "short", day: "numeric" });
    return formatDate(ms, { month: "short" });
  });
}

function describePeriod(range, [start, end], shift) {
  switch (range) {
    case "day": {
      const day = formatDate(start, { weekday: "long", day: "numeric", month: "long", year: "numeric" });
      return shift === 0 ? t("chart.today", { day }) : day;
    }
    case "week":
      return `${formatDate(start, { day: "numeric", month: "short" })} – ${formatDate(end - 1, {
        day: "numeric",
        month: "short",
        year: "numeric",
      })}`;
    case "month":
      return formatDate(start, { month: "long", year: "numeric" });
    default:
      return formatDate(start, { year: "numeric" });
  }
}

/** The chart's columns: x [s], import, export (negated: drawn below zero). */
function columns(range, rows) {
  const xs = [];
  const imports = [];
  const exports = [];
  const negated = (value) => (value === null || value === undefined ? null : -value);
  if (range === "day") {
    let previous = null;
    for (const row of rows) {
      const x = Date.parse(row.measured_at) / 1000;
      if (previous !== null && x - previous > GAP_S) {
        xs.push(previous + 60);
        imports.push(null);
        exports.push(null);
      }
      xs.push(x);
      imports.push(row.power_import_w);
      exports.push(negated(row.power_export_w));
      previous = x;
    }
  } else {
    for (const row of rows) {
      xs.push(Date.parse(row.start) / 1000);
      imports.push(row.energy_import_wh);
      exports.push(negated(row.energy_export_wh));
    }
  }
  return [xs, imports, exports];
}

function hasData(range, rows) {
  if (range === "day") return rows.length > 0;
  return rows.some((row) => row.energy_import_wh !== null || row.energy_export_wh !== null);
}

export function createCharts(meterId) {
  let range = storedRange();
  let shift = 0;
  let bounds = period(range, Date.now(), shift);
  let plot = null;
  let rows = [];
  let request = 0;
  let lastLoad = 0;
  let destroyed = false;

  const titleId = uid("charts");
  const periodId = uid("period");
  const rangeButtons = RANGES.map((name) =>
    h(
      "button",
      {
        type: "button",
        class: "segment",
        "data-range": name,
        onclick: () => {
          range = name;
          shift = 0;
          try {
            localStorage.setItem(RANGE_KEY, name);
          } catch {
            // not remembered
          }
          load();
        },
      },
      t(`range.${name}`),
    ),
  );
  const earlier = h("button", { type: "button", class: "icon", onclick: () => move(-1) }, "‹");
  const later = h("button", { type: "button", class: "icon", onclick: () => move(1) }, "›");
  const periodLabel = h("p", { class: "period", id: periodId, "aria-live": "polite" });
  const zoomIn = h("button", { type: "button", onclick: () => zoom(0.5) }, t("chart.zoom_in"));
  const zoomOut = h("button", { type: "button", onclick: () => zoom(2) }, t("chart.zoom_out"));
  const zoomReset = h("button", { type: "button", onclick: () => resetZoom() }, t("chart.zoom_reset"));
  const canvas = h("div", { class: "chart-canvas", role: "img", id: "chart" });
  const status = h("p", { class: "chart-status", role: "status" });
  const tableBody = h("tbody");
  const tableHead = h("thead");
  const details = h(
    "details",
    { class: "chart-table", ontoggle: () => details.open && fillTable() },
    h("summary", {}, t("chart.table")),
    h("div", { class: "table-scroll" }, h("table", {}, tableHead, tableBody)),
  );
  const element = h(
    "section",
    { class: "card charts", "aria-labelledby": titleId },
    h("h2", { id: titleId }, t("chart.title")),
    h("div", { class: "range-bar", role: "group", "aria-label": t("chart.range") }, rangeButtons),
    h("div", { class: "period-bar" }, earlier, periodLabel, later),
    h(
      "figure",
      { class: "chart", "aria-labelledby": periodId },
      canvas,
      h("figcaption", { class: "hint" }, t("chart.zoom_hint")),
    ),
    h("div", { class: "zoom-bar", role: "group", "aria-label": t("chart.zoom") }, zoomIn, zoomOut, zoomReset),
    status,
    details,
  );

  const resize = new ResizeObserver(() => {
    if (plot) plot.setSize({ width: canvas.clientWidth, height: chartHeight() });
  });
  resize.observe(canvas);

  function move(step) {
    shift = Math.min(0, shift + step);
    load();
  }

  function showControls() {
    for (const button of rangeButtons) {
      button.setAttribute("aria-pressed", String(button.dataset.range === range));
    }
    earlier.setAttribute("aria-label", t(`chart.earlier.${range}`));
    later.setAttribute("aria-label", t(`chart.later.${range}`));
    later.disabled = shift >= 0;
    setText(periodLabel, describePeriod(range, bounds, shift));
    canvas.setAttribute(
      "aria-label",
      t(range === "day" ? "chart.label_power" : "chart.label_energy", {
        period: describePeriod(range, bounds, shift),
      }),
    );
  }

  async function load({ quiet = false } = {}) {
    const id = ++request;
    bounds = period(range, Date.now(), shift);
    showControls();
    if (!quiet) {
      setText(status, t("chart.loading"));
      element.setAttribute("aria-busy", "true");
    }
    // Intervals up to the one in progress: later ones have no energy yet.
    const to = range === "day" ? bounds[1] : Math.min(bounds[1], Date.now() + 1000);
    let data;
    let uPlot;
    try {
      [data, uPlot] = await Promise.all([
        get(readingsPath(meterId, bounds[0], to, RESOLUTION[range])),
        loadUplot(),
      ]);
    } catch (error) {
      if (id !== request || destroyed) return;
      element.removeAttribute("aria-busy");
      if (error.status === 401) return;
      setText(status, error.status === 0 ? t("error.offline") : t("error.generic", { detail: error.detail }));
      return;
    }
    if (id !== request || destroyed) return;
    rows = data;
    lastLoad = Date.now();
    draw(uPlot);
    element.removeAttribute("aria-busy");
    setText(status, hasData(range, rows) ? "" : t("chart.empty"));
    if (details.open) fillTable();
  }

  function draw(uPlot) {
    const power = range === "day";
    const format = power ? formatPower : formatEnergy;
    const shown = (u, value) => (value === null || value === undefined ? DASH : format(Math.abs(value)));
    const bars = power ? undefined : uPlot.paths.bars({ size: [0.9, Infinity], align: 1 });
    const options = {
      width: canvas.clientWidth || 320,
      height: chartHeight(),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), TIME_ZONE),
      scales: { x: { time: true } },
      cursor: {
        drag: { x: true, y: false },
        // Double-click shows the whole period again (uPlot's own goes to the data's extent).
        bind: { dblclick: () => () => (resetZoom(), null) },
      },
      series: [
        {
          label: t("chart.time"),
          value: (u, value) =>
            value === null || value === undefined
              ? DASH
              : formatDate(value * 1000, range === "year" ? { dateStyle: "medium" } : { dateStyle: "medium", timeStyle: "short" }),
        },
        {
          label: t(power ? "chart.power_import" : "chart.energy_import"),
          stroke: COLORS.import,
          fill: power ? COLORS.importFill : COLORS.import,
          width: power ? 1.5 : 0,
          paths: bars,
          points: { show: false },
          value: shown,
        },
        {
          label: t(power ? "chart.power_export" : "chart.energy_export"),
          stroke: COLORS.export,
          fill: power ? COLORS.exportFill : COLORS.export,
          width: power ? 1.5 : 0,
          paths: bars,
          points: { show: false },
          value: shown,
        },
      ],
      axes: [
        { values: timeTicks, stroke: COLORS.axis, grid: { stroke: COLORS.grid }, ticks: { stroke: COLORS.grid } },
        {
          values: (u, splits) =>
            power
              ? splits.map((value) => formatPower(Math.abs(value)))
              : formatEnergyTicks(splits.map((value) => Math.abs(value))),
          size: 84,
          stroke: COLORS.axis,
          grid: { stroke: COLORS.grid },
          ticks: { stroke: COLORS.grid },
        },
      ],
      hooks: { setScale: [(u, key) => key === "x" && zoomChanged(u)] },
    };
    plot?.destroy();
    canvas.replaceChildren();
    plot = new uPlot(options, columns(range, rows), canvas);
    plot.setScale("x", { min: bounds[0] / 1000, max: bounds[1] / 1000 });
  }

  function zoomChanged(u) {
    const { min, max } = u.scales.x;
    if (min === null || min === undefined) return;
    const zoomed = min > bounds[0] / 1000 + 1 || max < bounds[1] / 1000 - 1;
    canvas.dataset.from = new Date(min * 1000).toISOString();
    canvas.dataset.to = new Date(max * 1000).toISOString();
    canvas.dataset.zoomed = String(zoomed);
    zoomReset.disabled = !zoomed;
    zoomOut.disabled = !zoomed;
    const whole = describePeriod(range, bounds, shift);
    setText(
      periodLabel,
      zoomed
        ? `${formatDate(min * 1000, { dateStyle: "medium", timeStyle: "short" })} – ${formatDate(max * 1000, { timeStyle: "short", ...(max - min > 86_400 ? { dateStyle: "medium" } : {}) })}`
        : whole,
    );
  }

  function zoom(factor) {
    if (!plot) return;
    const { min, max } = plot.scales.x;
    const centre = (min + max) / 2;
    const half = ((max - min) * factor) / 2;
    plot.setScale("x", {
      min: Math.max(bounds[0] / 1000, centre - half),
      max: Math.min(bounds[1] / 1000, centre + half),
    });
  }

  function resetZoom() {
    plot?.setScale("x", { min: bounds[0] / 1000, max: bounds[1] / 1000 });
  }

  function fillTable() {
    const power = range === "day";
    const format = power ? formatPower : formatEnergy;
    tableHead.replaceChildren(
      h(
        "tr",
        {},
        h("th", { scope: "col" }, t(power ? "chart.time" : "chart.interval")),
        h("th", { scope: "col" }, t(power ? "chart.power_import" : "chart.energy_import")),
        h("th", { scope: "col" }, t(power ? "chart.power_export" : "chart.energy_export")),
        power ? null : h("th", { scope: "col" }, t("chart.complete")),
      ),
    );
    const when = range === "year" ? { dateStyle: "medium" } : { dateStyle: "medium", timeStyle: "short" };
    tableBody.replaceChildren(
      ...rows.map((row) =>
        h(
          "tr",
          {},
          h("td", {}, formatDate(power ? row.measured_at : row.start, when)),
          h("td", {}, format(power ? row.power_import_w : row.energy_import_wh)),
          h("td", {}, format(power ? row.power_export_w : row.energy_export_wh)),
          power ? null : h("td", {}, row.complete ? t("chart.yes") : t("chart.estimate")),
        ),
      ),
    );
  }

  load();
  return {
    element,
    /** A reading arrived live: refresh the current period now and then (not while zoomed). */
    dataArrived(reading) {
      if (reading.raw || shift !== 0 || destroyed) return;
      if (canvas.dataset.zoomed === "true") return;
      if (Date.now() - lastLoad >= CURRENT_REFRESH_MS) load({ quiet: true });
    },
    destroy() {
      destroyed = true;
      resize.disconnect();
      plot?.destroy();
      plot = null;
    },
  };
}
