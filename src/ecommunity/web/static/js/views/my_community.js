// "My community": your applications and memberships with their state; for a community you take
// part in, the live view (production, consumption, self-sufficiency, the current price against
// the grid's, today's savings), your allocation and savings by day and by month, and the tariff
// your savings are priced against. Every figure is the API's, labelled estimate or official
// as the API labels it.

import { get, post, put } from "../api.js";
import { LiveCommunity } from "../community_live.js";
import { h, setText } from "../dom.js";
import {
  formatCtPerKwh,
  formatDate,
  formatEnergy,
  formatEuro,
  formatNumber,
  formatPower,
  formatShare,
  t,
} from "../i18n.js";
import { figuresSection, pointTable } from "./energy_tables.js";
import { membershipItem } from "./membership_item.js";
import { alertBox, clearRefusal, confirmDialog, showRefusal, sourceBadge, statusBox } from "./widgets.js";

const COMMUNITY_KEY = "ecommunity.community";
/** How often the list of memberships is asked for again. [ms] */
const REFRESH_MS = 15_000;

/** Whether a membership has taken part already (it may start tomorrow). */
function tookPart(membership) {
  return membership.active_from !== null && Date.parse(membership.active_from) <= Date.now();
}

export function render(main, context) {
  const error = alertBox("mine-error");
  const own = h("ul", { class: "membership-list", id: "my-memberships", "aria-live": "polite" });
  const picker = h("div", { class: "community-picker" });
  const detail = h("div", { class: "community-detail" });
  const leaveDialog = confirmDialog({ title: t("leave.title"), confirmLabel: t("leave.confirm") });
  main.append(
    h(
      "section",
      { class: "my-community" },
      h("h1", { tabindex: "-1" }, t("mine.title")),
      error,
      picker,
      detail,
      h(
        "section",
        { class: "card", "aria-labelledby": "my-memberships-title" },
        h("h2", { id: "my-memberships-title" }, t("mine.memberships")),
        own,
      ),
      leaveDialog.element,
    ),
  );
  let stopped = false;
  let shown = null; // the community whose figures show
  let teardown = null;
  let timer = null;

  async function refresh() {
    let mine;
    try {
      mine = await get("/memberships");
    } catch (failure) {
      if (!stopped) showRefusal(error, failure);
      return;
    }
    if (stopped) return;
    clearRefusal(error);
    if (!mine.length) {
      own.replaceChildren(
        h("li", { class: "empty" }, t("mine.none"), " ", h("a", { href: "/communities", "data-link": true }, t("mine.find"))),
      );
    } else {
      own.replaceChildren(...mine.map((membership) => membershipItem(membership, { withCommunity: true, onLeave: () => leave(membership) })));
    }
    // Communities you take or took part in (from the day the grid operator confirmed).
    const taking = new Map();
    for (const membership of mine) {
      if (tookPart(membership)) taking.set(membership.community_id, membership.community_name);
    }
    if (!taking.size) {
      picker.replaceChildren();
      if (shown !== null) {
        teardown?.();
        teardown = null;
        shown = null;
      }
      detail.replaceChildren(
        h("p", { class: "card hint", id: "mine-no-active" }, mine.length ? t("mine.not_active_yet") : t("mine.join_first")),
      );
      return;
    }
    let chosen = null;
    try {
      chosen = Number(localStorage.getItem(COMMUNITY_KEY));
    } catch {
      chosen = null;
    }
    if (!taking.has(chosen)) chosen = [...taking.keys()][0];
    picker.replaceChildren();
    if (taking.size > 1) {
      picker.append(
        h(
            "div",
            { class: "field inline" },
            h("label", { for: "mine-community" }, t("mine.community")),
            h(
              "select",
              {
                id: "mine-community",
                onchange: (event) => {
                  try {
                    localStorage.setItem(COMMUNITY_KEY, event.target.value);
                  } catch {
                    // not remembered
                  }
                  refresh();
                },
              },
              [...taking].map(([id, name]) => h("option", { value: id, selected: id === chosen }, name)),
            ),
          ),
      );
    }
    if (chosen !== shown) {
      teardown?.();
      shown = chosen;
      const memberships = mine.filter((m) => m.community_id === chosen && tookPart(m));
      const view = communityView(chosen, taking.get(chosen), memberships, context);
      detail.replaceChildren(view.element);
      teardown = view.stop;
    }
  }

  async function leave(membership) {
    const message = membership.status === "active" ? t("leave.text_active") : t("leave.text_open");
    if ((await leaveDialog.ask(message)) === null) return;
    try {
      await post(`/memberships/${membership.id}/leave`);
    } catch (failure) {
      showRefusal(error, failure);
    }
    context.notificationsChanged();
    refresh();
  }

  refresh();
  timer = setInterval(refresh, REFRESH_MS);
  return () => {
    stopped = true;
    clearInterval(timer);
    teardown?.();
  };
}

/** The live view, the figures and the tariffs of one community you take part in. */
function communityView(communityId, name, memberships, context) {
  // The live view is for members taking part now; figures stay for those who left.
  const live = memberships.some((m) => m.status === "active") ? liveSection(communityId, context) : null;
  const figures = figuresSection({
    id: "figures",
    title: t("figures.title"),
    path: `/communities/${communityId}/members/me/energy`,
    render: (answer, resolution) =>
      answer.points.length
        ? answer.points.map((point) => pointTable(point, resolution))
        : [h("p", { class: "hint" }, t("figures.none"))],
  });
  const element = h(
    "div",
    { "data-community-id": communityId },
    h("h2", { class: "community-heading", id: "mine-community-name" }, h("a", { href: `/communities/${communityId}`, "data-link": true }, name)),
    live?.element,
    figures.element,
    settingsSection(memberships, () => figures.reload()),
  );
  return {
    element,
    stop() {
      live?.stop();
    },
  };
}

// --- live ----------------------------------------------------------------------------------------

function liveTile(id, title) {
  return h(
    "li",
    { class: "tile tile-community", "aria-labelledby": `${id}-title` },
    h("h3", { id: `${id}-title` }, title),
    h("p", { class: "tile-value", id }, "–"),
    h("p", { class: "tile-note", id: `${id}-note` }),
  );
}

function liveSection(communityId, context) {
  const error = alertBox("live-error");
  const status = h("p", { class: "freshness", role: "status", id: "live-status" }, t("live.connecting"));
  const label = h("span", { id: "live-label" });
  const tiles = h(
    "ul",
    { class: "tiles live-tiles", "aria-live": "polite", "aria-label": t("live.title") },
    liveTile("live-production", t("live.production")),
    liveTile("live-consumption", t("live.consumption")),
    liveTile("live-self-sufficiency", t("live.self_sufficiency")),
    liveTile("live-allocated", t("live.allocated")),
    liveTile("live-price", t("live.price")),
    liveTile("live-savings", t("live.savings_today")),
  );
  const element = h(
    "section",
    { class: "card live-community", "aria-labelledby": "live-title" },
    h("div", { class: "view-header" }, h("h2", { id: "live-title" }, t("live.title")), status),
    h("p", { class: "hint" }, label),
    error,
    tiles,
  );
  const showValue = (id, text) => setText(element.querySelector(`#${id}`), text);
  const note = (id, text) => setText(element.querySelector(`#${id}-note`), text);
  let socketState = "connecting";

  function show(snapshot) {
    clearRefusal(error);
    label.replaceChildren(
      sourceBadge(snapshot.estimate),
      " ",
      t("live.as_of", { time: formatDate(snapshot.as_of, { timeStyle: "short" }) }),
      " · ",
      t("live.reporting", { reporting: formatNumber(snapshot.members_reporting), members: formatNumber(snapshot.members) }),
    );
    showValue("live-production", formatPower(snapshot.current.production_w));
    showValue("live-consumption", formatPower(snapshot.current.consumption_w));
    const quarter = snapshot.quarter_hour;
    showValue("live-self-sufficiency", formatShare(quarter?.self_sufficiency ?? null));
    note("live-self-sufficiency", quarter ? t("live.this_quarter_hour") : t("live.quarter_starting"));
    showValue("live-allocated", formatEnergy(quarter?.allocated_wh ?? null));
    note("live-allocated", quarter ? t("live.covered", { energy: formatEnergy(quarter.covered_wh) }) : "");
    const prices = snapshot.prices;
    showValue("live-price", formatCtPerKwh(prices.community_ct_per_kwh ?? prices.internal_ct_per_kwh));
    note(
      "live-price",
      prices.grid_ct_per_kwh !== null
        ? t("live.price_vs_grid", { grid: formatCtPerKwh(prices.grid_ct_per_kwh), internal: formatCtPerKwh(prices.internal_ct_per_kwh) })
        : prices.unavailable ?? "",
    );
    const today = snapshot.today;
    showValue("live-savings", formatEuro(today.savings_eur));
    note(
      "live-savings",
      today.savings_eur !== null
        ? t("live.savings_note", { covered: formatEnergy(today.covered_wh), self: formatShare(today.self_sufficiency) })
        : today.savings_unavailable ?? "",
    );
    setText(status, socketState === "open" ? t("live.live") : t("live.updated", { time: formatDate(snapshot.as_of, { timeStyle: "short" }) }));
    status.dataset.state = socketState === "open" ? "live" : "recent";
  }

  const connection = new LiveCommunity(communityId, {
    onSnapshot: show,
    onState: (state) => {
      socketState = state;
      if (state === "unauthenticated") context.signedOut();
      if (state === "open") {
        setText(status, t("live.live"));
        status.dataset.state = "live";
      }
    },
    onError: (failure) => {
      showRefusal(error, failure);
      setText(status, "");
    },
  }).start();
  return { element, stop: () => connection.stop() };
}

// --- the tariff savings are priced against ----------------------------------------------------

function settingsSection(memberships, onSaved) {
  const element = h(
    "section",
    { class: "card", "aria-labelledby": "tariff-title" },
    h("h2", { id: "tariff-title" }, t("tariff.title")),
    h("p", { class: "hint" }, t("tariff.explain")),
  );
  for (const membership of memberships) element.append(settingsForm(membership, onSaved));
  return element;
}

function settingsForm(membership, onSaved) {
  const consumer = membership.role === "consumer";
  const prefix = `tariff-${membership.id}`;
  const refusal = alertBox(`${prefix}-error`);
  const done = statusBox(`${prefix}-done`);
  const input = (name, label, hint = null) =>
    h(
      "div",
      { class: "field" },
      h("label", { for: `${prefix}-${name}` }, label),
      h("input", { id: `${prefix}-${name}`, name, inputmode: "decimal", "aria-describedby": hint ? `${prefix}-${name}-hint` : null }),
      hint ? h("p", { class: "hint", id: `${prefix}-${name}-hint` }, hint) : null,
    );
  const meter = h("select", { id: `${prefix}-meter`, name: "meter_id" }, h("option", { value: "" }, t("tariff.meter_default")));
  const fields = consumer
    ? [
        input("supplier_energy_ct_per_kwh", t("tariff.energy_price"), t("tariff.energy_price_hint")),
        input("grid_usage_ct_per_kwh", t("tariff.grid_usage"), t("tariff.grid_usage_hint")),
        input("renewable_levy_ct_per_kwh", t("tariff.levy"), t("tariff.levy_hint")),
        h(
          "div",
          { class: "field" },
          h("label", { for: `${prefix}-grid_level` }, t("tariff.grid_level")),
          h("select", { id: `${prefix}-grid_level`, name: "grid_level" }, h("option", { value: "" }, t("tariff.default_level")), [1, 2, 3, 4, 5, 6, 7].map((level) => h("option", { value: level }, formatNumber(level)))),
        ),
        h(
          "div",
          { class: "field" },
          h("label", { for: `${prefix}-consumer_category` }, t("tariff.category")),
          h(
            "select",
            { id: `${prefix}-consumer_category`, name: "consumer_category" },
            h("option", { value: "" }, t("tariff.default_category")),
            h("option", { value: "household" }, t("tariff.household")),
            h("option", { value: "business" }, t("tariff.business")),
          ),
        ),
      ]
    : [input("feed_in_ct_per_kwh", t("tariff.feed_in"), t("tariff.feed_in_hint"))];
  const form = h(
    "form",
    { class: "tariff-form", novalidate: true, "data-membership-id": membership.id, "aria-labelledby": `${prefix}-title` },
    h("h3", { id: `${prefix}-title`, class: "mono" }, membership.metering_point),
    h("div", { class: "field" }, h("label", { for: `${prefix}-meter` }, t("tariff.meter")), meter),
    h("div", { class: "form-columns three" }, fields),
    refusal,
    done,
    h("button", { type: "submit", class: "secondary" }, t("tariff.save")),
  );
  const decimal = (value) => {
    const text = String(value ?? "").trim();
    return /^\d+,\d+$/.test(text) ? text.replace(",", ".") : text;
  };
  (async () => {
    try {
      const [settings, meters] = await Promise.all([get(`/memberships/${membership.id}/energy-settings`), get("/meters")]);
      for (const each of meters) {
        meter.append(h("option", { value: each.id, selected: each.id === settings.meter_id }, t("energy.meter_option", { serial: each.serial || t("energy.meter_no_serial"), id: each.id })));
      }
      for (const [name, value] of Object.entries(settings)) {
        const field = form.elements.namedItem(name);
        if (field && name !== "meter_id" && value !== null) field.value = String(value);
      }
    } catch (failure) {
      showRefusal(refusal, failure);
    }
  })();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearRefusal(refusal);
    setText(done, "");
    const data = new FormData(form);
    const body = {};
    for (const [name, value] of data.entries()) {
      const text = decimal(value);
      if (text === "") continue;
      body[name] = name === "meter_id" || name === "grid_level" ? Number(text) : text;
    }
    try {
      await put(`/memberships/${membership.id}/energy-settings`, body);
      setText(done, t("tariff.saved"));
      onSaved();
    } catch (failure) {
      showRefusal(refusal, failure);
    }
  });
  return form;
}
