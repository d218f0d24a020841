// A community's page: its plants, prices, members, performance and statutes; joining it with a
// metering point and a participation factor; the state of your applications and memberships
// in it (applied, approved, rejected, active, left), with withdrawing and leaving.

import { get, post } from "../api.js";
import { h, setText } from "../dom.js";
import { formatKwp, t } from "../i18n.js";
import { communityFacts, openBadge } from "./community_facts.js";
import { membershipItem } from "./membership_item.js";
import {
  alertBox,
  clearRefusal,
  confirmDialog,
  kindName,
  modelName,
  showRefusal,
  sourceName,
  statusBox,
} from "./widgets.js";

/** How often the page asks again how your application stands. [ms] */
const REFRESH_MS = 10_000;

export function render(main, context, { id }) {
  const error = alertBox("community-error");
  const section = h("section", { class: "community-page", "aria-busy": "true" }, error);
  main.append(section);
  let stopped = false;
  let timer = null;
  const leaveDialog = confirmDialog({ title: t("leave.title"), confirmLabel: t("leave.confirm") });
  const own = h("div", { id: "own-memberships" });

  async function load() {
    let community;
    try {
      community = await get(`/communities/${id}`);
    } catch (failure) {
      if (stopped) return;
      section.removeAttribute("aria-busy");
      section.prepend(h("h1", { tabindex: "-1" }, t("community.title")));
      showRefusal(error, failure);
      return;
    }
    if (stopped) return;
    document.title = `${community.name} · eCommunity`;
    section.replaceChildren(...page(community).filter(Boolean));
    section.removeAttribute("aria-busy");
    await refreshOwn(community);
    timer = setInterval(() => refreshOwn(community), REFRESH_MS);
  }

  function page(community) {
    return [
      h(
        "div",
        { class: "view-header" },
        h("h1", { tabindex: "-1", id: "community-name" }, community.name),
        openBadge(community),
      ),
      h(
        "p",
        { class: "hint" },
        [kindName(community.kind), modelName(community.allocation_model), community.municipality, community.grid_operator]
          .filter(Boolean)
          .join(" · "),
      ),
      community.you_operate
        ? h("p", {}, h("a", { href: `/operate/${community.id}`, "data-link": true, class: "button" }, t("community.operate_it")))
        : null,
      community.description ? h("p", { class: "description" }, community.description) : null,
      h(
        "div",
        { class: "columns" },
        h(
          "section",
          { class: "card", "aria-labelledby": "facts-title" },
          h("h2", { id: "facts-title" }, t("community.facts")),
          communityFacts(community, "page", [
            [t("community.allocation_model"), modelName(community.allocation_model)],
            [t("community.grid_operator"), community.grid_operator],
            community.municipality ? [t("community.municipality"), community.municipality] : null,
            [t("community.postal_codes"), community.postal_codes.join(", ")],
            community.area_id ? [t("community.area_id"), community.area_id] : null,
          ]),
        ),
        h(
          "section",
          { class: "card", "aria-labelledby": "plants-title" },
          h("h2", { id: "plants-title" }, t("community.plants")),
          plantsTable(community.plants),
        ),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "yours-title" },
        h("h2", { id: "yours-title" }, t("community.yours")),
        own,
      ),
      joinForm(community),
      h(
        "section",
        { class: "card", "aria-labelledby": "statutes-title", id: "statutes" },
        h("h2", { id: "statutes-title" }, t("community.statutes")),
        community.statutes
          ? h("details", {}, h("summary", {}, t("community.statutes_show")), h("div", { class: "statutes" }, community.statutes))
          : h("p", { class: "hint" }, t("community.no_statutes")),
      ),
      leaveDialog.element,
    ];
  }

  async function refreshOwn(community) {
    let mine;
    try {
      mine = await get("/memberships");
    } catch (failure) {
      if (!stopped && failure.status !== 401) showRefusal(error, failure);
      return;
    }
    if (stopped) return;
    const here = mine.filter((membership) => membership.community_id === community.id);
    if (!here.length) {
      own.replaceChildren(h("p", { class: "hint", id: "no-application" }, t("community.not_applied")));
      return;
    }
    own.replaceChildren(
      h(
        "ul",
        { class: "membership-list", "aria-live": "polite" },
        here.map((membership) =>
          membershipItem(membership, {
            onLeave: async () => {
              const message = membership.status === "active" ? t("leave.text_active") : t("leave.text_open");
              if ((await leaveDialog.ask(message)) === null) return;
              try {
                await post(`/memberships/${membership.id}/leave`);
              } catch (failure) {
                showRefusal(error, failure);
              }
              context.notificationsChanged();
              refreshOwn(community);
            },
          }),
        ),
      ),
    );
  }

  function joinForm(community) {
    const section = h(
      "section",
      { class: "card", "aria-labelledby": "join-title", id: "join" },
      h("h2", { id: "join-title" }, t("join.title")),
    );
    if (!community.open_for_members) {
      section.append(h("p", { id: "join-closed" }, t("join.closed")));
      return section;
    }
    const refusal = alertBox("join-error");
    const done = statusBox("join-done");
    const submit = h("button", { type: "submit", class: "primary" }, t("join.submit"));
    const form = h(
      "form",
      { novalidate: true, "aria-describedby": "join-error" },
      h("p", {}, t("join.explain")),
      h(
        "div",
        { class: "field" },
        h("label", { for: "join-point" }, t("join.metering_point")),
        h("input", {
          id: "join-point",
          name: "metering_point",
          required: true,
          maxlength: 64,
          autocomplete: "off",
          autocapitalize: "characters",
          spellcheck: "false",
          class: "code",
          placeholder: "AT0030000000000000000000000012345",
          "aria-describedby": "join-point-hint",
        }),
        h("p", { class: "hint", id: "join-point-hint" }, t("join.metering_point_hint")),
      ),
      h(
        "div",
        { class: "field" },
        h("label", { for: "join-tf" }, t("join.tf")),
        h("input", {
          id: "join-tf",
          name: "participation_factor",
          type: "number",
          inputmode: "numeric",
          min: 1,
          max: 100,
          step: 1,
          value: 100,
          required: true,
          "aria-describedby": "join-tf-hint",
        }),
        h("p", { class: "hint", id: "join-tf-hint" }, t("join.tf_hint")),
      ),
      h(
        "fieldset",
        { class: "roles" },
        h("legend", {}, t("join.role")),
        h("label", { class: "check" }, h("input", { type: "radio", name: "role", value: "consumer", checked: true }), " ", t("join.role_consumer")),
        h("label", { class: "check" }, h("input", { type: "radio", name: "role", value: "producer" }), " ", t("join.role_producer")),
      ),
      h(
        "div",
        { class: "field inline" },
        h("input", { type: "checkbox", id: "join-statutes", name: "accept_statutes", required: true }),
        h("label", { for: "join-statutes" }, t("join.accept_statutes")),
      ),
      h("p", { class: "hint" }, h("a", { href: "#statutes" }, t("join.read_statutes"))),
      refusal,
      done,
      submit,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      clearRefusal(refusal);
      setText(done, "");
      submit.disabled = true;
      const factor = String(data.get("participation_factor") ?? "").trim();
      try {
        const applied = await post(`/communities/${community.id}/applications`, {
          metering_point: String(data.get("metering_point") ?? ""),
          // A number when it is one, else as typed: the API says what is wrong with it.
          participation_factor: /^\d+$/.test(factor) ? Number(factor) : factor,
          role: data.get("role"),
          accept_statutes: data.get("accept_statutes") === "on",
        });
        setText(done, t("join.done", { point: applied.metering_point, status: t("status.applied") }));
        // Ready for another point (a household may join with its consumption and its PV).
        form.elements.metering_point.value = "";
        form.elements.accept_statutes.checked = false;
        context.notificationsChanged();
        refreshOwn(community);
      } catch (failure) {
        showRefusal(refusal, failure, {
          metering_point: t("join.metering_point_invalid"),
          participation_factor: t("join.tf_invalid"),
          accept_statutes: t("join.statutes_required"),
        });
        refusal.focus?.();
      } finally {
        submit.disabled = false;
      }
    });
    section.append(form);
    return section;
  }

  load();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

function plantsTable(plants) {
  if (!plants.length) return h("p", { class: "hint" }, t("community.no_plants"));
  return h(
    "div",
    { class: "table-scroll" },
    h(
      "table",
      { id: "plants" },
      h("caption", { class: "visually-hidden" }, t("community.plants")),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("plant.name")), h("th", { scope: "col" }, t("plant.source")), h("th", { scope: "col" }, t("plant.kwp")))),
      h(
        "tbody",
        {},
        plants.map((plant) =>
          h("tr", {}, h("td", {}, plant.name || "–"), h("td", {}, sourceName(plant.source)), h("td", {}, formatKwp(plant.peak_power_kwp))),
        ),
      ),
    ),
  );
}
