// "My energy": live tiles (power now, today's energy, what the community covers) and the
// history charts. Every number is the API's: powers from the latest reading, today's energy
// from the API's day interval, refreshed whenever a new minute reading arrives.

import { get, readingsPath } from "../api.js";
import { h, setText } from "../dom.js";
import { formatAgo, formatDate, formatEnergy, formatPower, t } from "../i18n.js";
import { LiveMeter } from "../live.js";
import { createCharts } from "./charts.js";
import { communityTile } from "./community_tile.js";

const METER_KEY = "ecommunity.meter";
/** Newer than this, and with the live socket open, the data counts as live. [s] */
const LIVE_S = 15;
/** Older than this, the data is stale. [s] */
const STALE_S = 15 * 60;
/** Today's energy is fetched again at most this often. [ms] */
const TODAY_REFRESH_MS = 10_000;

function pickMeter(meters) {
  let remembered = null;
  try {
    remembered = Number(localStorage.getItem(METER_KEY));
  } catch {
    remembered = null;
  }
  return meters.find((meter) => meter.id === remembered) ?? meters[meters.length - 1];
}

function tile(kind, title, valueId, values) {
  const titleId = `${valueId}-title`;
  // elementtiming: the browser records when the value's text was first painted.
  values[valueId] = h("p", { class: "tile-value", id: valueId, elementtiming: valueId }, "–");
  return h(
    "li",
    { class: `tile tile-${kind}`, "aria-labelledby": titleId },
    h("h3", { id: titleId }, title),
    values[valueId],
  );
}

export function render(main, context) {
  const freshness = h("p", { class: "freshness", role: "status", id: "freshness" }, t("energy.loading"));
  const header = h(
    "div",
    { class: "view-header" },
    h("h1", { tabindex: "-1" }, t("energy.title")),
    freshness,
  );
  const body = h("div", { class: "energy-body" });
  main.append(h("section", { class: "energy", "aria-busy": "true" }, header, body));

  const state = { latestAt: null, socketOpen: false, stopped: false };
  let live = null;
  let charts = null;
  let ticker = null;
  let todayTimer = null;
  let stopCommunity = null;
  let lastTodayFetch = 0;

  function updateFreshness() {
    let text;
    let kind;
    if (state.latestAt === null) {
      text = t("freshness.none");
      kind = "none";
    } else {
      const ageS = Math.max(0, (Date.now() - state.latestAt) / 1000);
      if (ageS <= LIVE_S && state.socketOpen) {
        text = t("freshness.live");
        kind = "live";
      } else if (ageS < STALE_S) {
        text = formatAgo(ageS);
        kind = "recent";
      } else {
        text = t("freshness.stale", { time: formatDate(state.latestAt) });
        kind = "stale";
      }
    }
    setText(freshness, text);
    freshness.dataset.state = kind;
  }

  async function start() {
    let meters;
    try {
      // The app may have asked already, at the same time as for the session.
      meters = await (context.takeEarly("/meters") ?? get("/meters"));
    } catch (error) {
      showError(error);
      return;
    }
    if (state.stopped) return;
    if (meters.length === 0) {
      body.append(
        h(
          "div",
          { class: "card empty" },
          h("p", {}, t("energy.no_meter")),
          h("a", { href: "/gateways", "data-link": true, class: "button primary" }, t("energy.pair_first")),
        ),
      );
      setText(freshness, "");
      main.firstChild.removeAttribute("aria-busy");
      return;
    }
    const meter = pickMeter(meters);
    if (meters.length > 1) body.append(meterPicker(meters, meter));

    const tiles = h(
      "ul",
      { class: "tiles", "aria-live": "polite", "aria-label": t("energy.now") },
      tile("import", t("tile.import_now"), "power-import", values),
      tile("export", t("tile.export_now"), "power-export", values),
      tile("import", t("tile.import_today"), "energy-import-today", values),
      tile("export", t("tile.export_today"), "energy-export-today", values),
      h(
        "li",
        { class: "tile tile-community", "aria-labelledby": "community-title", id: "community-tile" },
        h("h3", { id: "community-title" }, t("tile.community_now")),
        h("p", { class: "tile-note", id: "community-now" }, t("tile.join_community")),
      ),
    );
    const [latest, today] = await Promise.all([
      get(readingsPath(meter.id, Date.now() - 3_600_000, Date.now() + 300_000, "1min")).catch(() => []),
      fetchToday(meter.id),
    ]);
    if (state.stopped) return;
    if (latest.length > 0) showReading(latest[latest.length - 1]);
    showToday(today);
    updateFreshness();
    body.append(tiles);
    main.firstChild.removeAttribute("aria-busy");
    stopCommunity = communityTile(tiles.querySelector("#community-tile"));
    // Two frames: the first paints the tiles, the second runs after that paint. Only then the
    // charts: their library's stylesheet would hold back the tiles' first paint.
    requestAnimationFrame(() =>
      requestAnimationFrame(() => {
        performance.mark("energy-tiles-painted");
        if (state.stopped) return;
        charts = createCharts(meter.id);
        body.append(charts.element);
      }),
    );

    ticker = setInterval(updateFreshness, 1000);
    live = new LiveMeter(meter.id, {
      onReading: (reading) => {
        if (state.latestAt === null || Date.parse(reading.measured_at) >= state.latestAt) {
          showReading(reading);
        }
        if (!reading.raw) scheduleToday(meter.id);
        charts?.dataArrived(reading);
        updateFreshness();
      },
      onState: (socketState) => {
        state.socketOpen = socketState === "open";
        if (socketState === "unauthenticated") context.signedOut();
        updateFreshness();
      },
    }).start();
  }

  // The tiles' value elements by id.
  const values = {};
  function put(id, text) {
    setText(values[id], text);
  }

  function showReading(reading) {
    state.latestAt = Date.parse(reading.measured_at);
    put("power-import", formatPower(reading.power_import_w));
    put("power-export", formatPower(reading.power_export_w));
  }

  function showToday(intervals) {
    const today = intervals?.[0];
    put("energy-import-today", formatEnergy(today?.energy_import_wh));
    put("energy-export-today", formatEnergy(today?.energy_export_wh));
  }

  function fetchToday(meterId) {
    lastTodayFetch = Date.now();
    // The API widens a range to whole days: this one second is today, midnight to midnight.
    return get(readingsPath(meterId, Date.now(), Date.now() + 1000, "1d")).catch(() => null);
  }

  function scheduleToday(meterId) {
    if (todayTimer !== null) return;
    const wait = Math.max(0, lastTodayFetch + TODAY_REFRESH_MS - Date.now());
    todayTimer = setTimeout(async () => {
      const today = await fetchToday(meterId);
      todayTimer = null;
      if (!state.stopped && today) showToday(today);
    }, wait);
  }

  function meterPicker(meters, chosen) {
    const select = h(
      "select",
      {
        id: "meter",
        onchange: () => {
          try {
            localStorage.setItem(METER_KEY, select.value);
          } catch {
            // not remembered
          }
          context.rerender();
        },
      },
      meters.map((meter) =>
        h(
          "option",
          { value: meter.id, selected: meter.id === chosen.id },
          t("energy.meter_option", { serial: meter.serial || t("energy.meter_no_serial"), id: meter.id }),
        ),
      ),
    );
    return h("div", { class: "field inline" }, h("label", { for: "meter" }, t("energy.meter")), select);
  }

  function showError(error) {
    if (error.status === 401) return; // the app goes to the login page
    body.append(h("p", { class: "form-error", role: "alert" }, error.status === 0 ? t("error.offline") : t("error.generic", { detail: error.detail })));
    main.firstChild.removeAttribute("aria-busy");
  }

  start();
  return () => {
    state.stopped = true;
    live?.stop();
    stopCommunity?.();
    charts?.destroy();
    clearInterval(ticker);
    clearTimeout(todayTimer);
  };
}
