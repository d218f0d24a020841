// The operator's screen of one community: applications to approve or reject, approved ones to
// activate once the grid operator confirms, members with their participation factors and
// static keys (changed under the grid operators' rules, refusals with their reasons), editing
// the community, and the official data of the grid operator.

import { get, patch, post, withQuery } from "../api.js";
import { h, setText, uid } from "../dom.js";
import { formatDate, formatDecimal, formatNumber, formatPercent, t } from "../i18n.js";
import { communityForm } from "./community_form.js";
import { figuresSection, pointTable, totalsTable } from "./energy_tables.js";
import { officialData } from "./official_data.js";
import {
  alertBox,
  clearRefusal,
  confirmDialog,
  facts,
  kindName,
  modelName,
  roleName,
  showRefusal,
  statusBadge,
  statusBox,
} from "./widgets.js";

const DAY = { dateStyle: "long" };
const NONE_TEXT = {
  applied: "operate.none_applied",
  approved: "operate.none_approved",
  active: "operate.none_active",
  former: "operate.none_former",
};

export function render(main, context, { id }) {
  const error = alertBox("operate-community-error");
  const section = h("section", { class: "operate-community", "aria-busy": "true" }, h("h1", { tabindex: "-1" }, t("operate.title")), error);
  main.append(section);
  let stopped = false;
  let community = null;
  const rejectDialog = confirmDialog({
    title: t("operate.reject_title"),
    confirmLabel: t("operate.reject"),
    fieldLabel: t("operate.reject_reason"),
    fieldHint: t("operate.reject_reason_hint"),
  });
  const lists = {
    applied: h("ul", { class: "member-list", id: "applications" }),
    approved: h("ul", { class: "member-list", id: "approved" }),
    active: h("ul", { class: "member-list", id: "members" }),
    former: h("ul", { class: "member-list", id: "former" }),
  };
  const counts = {
    applied: h("span", { class: "count", id: "count-applied" }),
    approved: h("span", { class: "count", id: "count-approved" }),
    active: h("span", { class: "count", id: "count-active" }),
    former: h("span", { class: "count", id: "count-former" }),
  };
  const memberError = alertBox("members-error");
  const memberDone = statusBox("members-done");

  async function load() {
    try {
      community = await get(`/communities/${id}`);
    } catch (failure) {
      if (!stopped) showRefusal(error, failure);
      section.removeAttribute("aria-busy");
      return;
    }
    if (stopped) return;
    if (!community.you_operate) {
      setText(error, t("operate.not_yours"));
      section.removeAttribute("aria-busy");
      return;
    }
    document.title = `${community.name} · ${t("operate.title")} · eCommunity`;
    section.replaceChildren(...screen());
    section.removeAttribute("aria-busy");
    await refreshMembers();
  }

  function screen() {
    const anchor = (href, key) => h("li", {}, h("a", { href }, t(key)));
    return [
      h(
        "div",
        { class: "view-header" },
        h("h1", { tabindex: "-1", id: "operate-name" }, community.name),
        h("a", { href: `/communities/${community.id}`, "data-link": true }, t("operate.public_page")),
      ),
      h("p", { class: "hint" }, `${kindName(community.kind)} · ${modelName(community.allocation_model)}`),
      h(
        "nav",
        { class: "in-page", "aria-label": t("operate.sections") },
        h(
          "ul",
          {},
          anchor("#applications-title", "operate.applications"),
          anchor("#approved-title", "operate.approved"),
          anchor("#members-title", "operate.members"),
          anchor("#community-energy-title", "totals.section"),
          anchor("#official-title", "official.title"),
          anchor("#edit-title", "operate.edit"),
        ),
      ),
      error,
      memberError,
      memberDone,
      listSection("applications-title", "operate.applications", "operate.applications_explain", counts.applied, lists.applied),
      listSection("approved-title", "operate.approved", "operate.approved_explain", counts.approved, lists.approved),
      listSection(
        "members-title",
        "operate.members",
        community.allocation_model === "static" ? "operate.members_explain_static" : "operate.members_explain",
        counts.active,
        lists.active,
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "former-title" },
        h("details", {}, h("summary", { id: "former-title" }, t("operate.former"), " ", counts.former), lists.former),
      ),
      figuresSection({
        id: "community-energy",
        title: t("totals.section"),
        path: `/communities/${community.id}/energy`,
        render: (answer, resolution) => [
          totalsTable(answer.totals, resolution),
          answer.members.length
            ? h(
                "details",
                { class: "member-figures" },
                h("summary", {}, t("totals.members", { count: formatNumber(answer.members.length) })),
                answer.members.map((point) =>
                  pointTable(point, resolution, t("totals.point", { point: point.metering_point, role: roleName(point.role) })),
                ),
              )
            : null,
        ],
      }).element,
      officialData(community),
      h(
        "section",
        { class: "card", "aria-labelledby": "edit-title" },
        h("h2", { id: "edit-title" }, t("operate.edit")),
        editForm(),
      ),
      rejectDialog.element,
    ];
  }

  function listSection(titleId, titleKey, explainKey, count, list) {
    return h(
      "section",
      { class: "card", "aria-labelledby": titleId },
      h("h2", { id: titleId }, t(titleKey), " ", count),
      h("p", { class: "hint" }, t(explainKey)),
      list,
    );
  }

  function editForm() {
    const done = statusBox("edit-done");
    const form = communityForm(community, {
      submitLabel: t("operate.save"),
      onSubmit: async (body) => {
        setText(done, "");
        community = await patch(`/communities/${community.id}`, body);
        setText(done, t("operate.saved"));
        setText(section.querySelector("#operate-name"), community.name);
      },
    });
    return h("div", {}, form, done);
  }

  async function refreshMembers() {
    let all;
    try {
      all = await get(withQuery(`/communities/${community.id}/memberships`, { limit: 1000 }));
    } catch (failure) {
      if (!stopped) showRefusal(memberError, failure);
      return;
    }
    if (stopped) return;
    const byState = { applied: [], approved: [], active: [], former: [] };
    for (const membership of all) {
      (byState[membership.status] ?? byState.former).push(membership);
    }
    for (const [state, memberships] of Object.entries(byState)) {
      setText(counts[state], `(${formatNumber(memberships.length)})`);
      lists[state].replaceChildren(
        ...(memberships.length
          ? memberships.map((membership) => memberItem(membership))
          : [h("li", { class: "empty" }, t(NONE_TEXT[state]))]),
      );
    }
  }

  async function act(label, call) {
    clearRefusal(memberError);
    setText(memberDone, "");
    try {
      await call();
      setText(memberDone, label);
    } catch (failure) {
      showRefusal(memberError, failure);
      memberError.scrollIntoView?.({ block: "nearest" });
    }
    context.notificationsChanged();
    await refreshMembers();
  }

  function memberItem(membership) {
    const titleId = uid("member");
    const path = `/communities/${community.id}/memberships/${membership.id}`;
    const who = t("operate.member_who", { name: membership.display_name, email: membership.email });
    const factor = membership.pending_participation_factor
      ? t("membership.tf_pending", {
          now: formatPercent(membership.participation_factor),
          next: formatPercent(membership.pending_participation_factor),
          from: formatDate(membership.pending_from, DAY),
        })
      : formatPercent(membership.participation_factor);
    const item = h(
      "li",
      { class: "member", "aria-labelledby": titleId, "data-membership-id": membership.id, "data-status": membership.status },
      h("div", { class: "membership-head" }, h("h3", { id: titleId }, who), statusBadge(membership.status)),
      facts([
        [t("membership.metering_point"), h("span", { class: "mono" }, membership.metering_point)],
        [t("membership.role"), roleName(membership.role)],
        [t("membership.tf"), h("span", { "data-value": "tf" }, factor)],
        community.allocation_model === "static" && membership.role === "consumer"
          ? [t("membership.static_key"), h("span", { "data-value": "static_key" }, formatDecimal(membership.static_key, 0, 9))]
          : null,
        [t("membership.applied_at"), formatDate(membership.applied_at)],
        membership.active_from ? [t("membership.active_from"), formatDate(membership.active_from, DAY)] : null,
        membership.active_until ? [t("membership.active_until"), formatDate(membership.active_until, DAY)] : null,
        membership.rejection_reason ? [t("membership.rejection_reason"), membership.rejection_reason] : null,
      ]),
    );
    if (membership.status === "applied") {
      item.append(
        h(
          "div",
          { class: "actions" },
          h(
            "button",
            {
              type: "button",
              class: "primary",
              "aria-describedby": titleId,
              onclick: () => act(t("operate.approved_done", { who: membership.display_name }), () => post(`${path}/approve`)),
            },
            t("operate.approve"),
          ),
          h(
            "button",
            {
              type: "button",
              class: "danger",
              "aria-describedby": titleId,
              onclick: async () => {
                const reason = await rejectDialog.ask(t("operate.reject_text", { who: membership.display_name, point: membership.metering_point }));
                if (reason === null) return;
                await act(t("operate.rejected_done", { who: membership.display_name }), () => post(`${path}/reject`, { reason: reason.trim() }));
              },
            },
            t("operate.reject"),
          ),
        ),
      );
    } else if (membership.status === "approved") {
      item.append(activationForm(membership, path, titleId));
    } else if (membership.status === "active") {
      item.append(changeForm(membership, path, titleId));
    }
    return item;
  }

  function activationForm(membership, path, titleId) {
    const dateId = uid("active-on");
    const form = h(
      "form",
      { class: "inline-form", "aria-labelledby": titleId },
      h(
        "div",
        { class: "field" },
        h("label", { for: dateId }, t("operate.active_on")),
        h("input", { type: "date", id: dateId, name: "active_on", "aria-describedby": `${dateId}-hint` }),
        h("p", { class: "hint", id: `${dateId}-hint` }, t("operate.active_on_hint")),
      ),
      h("button", { type: "submit", class: "primary" }, t("operate.activate")),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const day = new FormData(form).get("active_on");
      act(t("operate.activated_done", { who: membership.display_name }), () => post(`${path}/activate`, day ? { active_on: day } : {}));
    });
    return form;
  }

  function changeForm(membership, path, titleId) {
    const tfId = uid("tf");
    const keyId = uid("key");
    const withKey = community.allocation_model === "static" && membership.role === "consumer";
    const form = h(
      "form",
      { class: "inline-form", novalidate: true, "aria-labelledby": titleId },
      h(
        "div",
        { class: "field" },
        h("label", { for: tfId }, t("operate.new_tf")),
        h("input", {
          type: "number",
          id: tfId,
          name: "participation_factor",
          min: 1,
          max: 100,
          step: 1,
          inputmode: "numeric",
          value: membership.pending_participation_factor ?? membership.participation_factor,
          "aria-describedby": `${tfId}-hint`,
        }),
        h("p", { class: "hint", id: `${tfId}-hint` }, t("operate.tf_rule")),
      ),
      withKey
        ? h(
            "div",
            { class: "field" },
            h("label", { for: keyId }, t("operate.static_key")),
            h("input", {
              id: keyId,
              name: "static_key",
              inputmode: "decimal",
              value: membership.static_key ?? "",
              "aria-describedby": `${keyId}-hint`,
            }),
            h("p", { class: "hint", id: `${keyId}-hint` }, t("operate.static_key_hint")),
          )
        : null,
      h("button", { type: "submit", class: "secondary" }, t("operate.change")),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const body = {};
      const factor = String(data.get("participation_factor") ?? "").trim();
      const current = membership.pending_participation_factor ?? membership.participation_factor;
      if (factor !== String(current)) body.participation_factor = /^\d+$/.test(factor) ? Number(factor) : factor;
      if (withKey) {
        const key = String(data.get("static_key") ?? "").trim().replace(",", ".");
        if (key !== "" && key !== String(membership.static_key ?? "")) body.static_key = key;
      }
      if (!Object.keys(body).length) {
        setText(memberDone, t("operate.nothing_changed"));
        return;
      }
      act(t("operate.changed_done", { who: membership.display_name }), () => patch(path, body));
    });
    return form;
  }

  load();
  return () => {
    stopped = true;
  };
}
