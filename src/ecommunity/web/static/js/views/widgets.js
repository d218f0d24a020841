// What the community screens share: the names of kinds, states and sources in the user's
// language, badges, the API's refusals with their reasons, and a confirmation dialog.

import { h, setText, uid } from "../dom.js";
import { t } from "../i18n.js";

export const KINDS = ["gea", "eeg_local", "eeg_regional", "beg"];
export const SOURCES = ["pv", "wind", "hydro", "biomass", "biogas", "geothermal", "non_renewable"];

// Keys written out (not built from the value), so that the dictionary tests find each one.
const KIND_TEXT = {
  gea: "kind.gea",
  eeg_local: "kind.eeg_local",
  eeg_regional: "kind.eeg_regional",
  beg: "kind.beg",
};
const MODEL_TEXT = { static: "model.static", dynamic: "model.dynamic" };
const SOURCE_TEXT = {
  pv: "source.pv",
  wind: "source.wind",
  hydro: "source.hydro",
  biomass: "source.biomass",
  biogas: "source.biogas",
  geothermal: "source.geothermal",
  non_renewable: "source.non_renewable",
};
const STATUS_TEXT = {
  applied: "status.applied",
  approved: "status.approved",
  rejected: "status.rejected",
  active: "status.active",
  left: "status.left",
};
const ROLE_TEXT = { consumer: "role.consumer", producer: "role.producer" };
const MATCH_TEXT = {
  postal_code: "match.postal_code",
  distance: "match.distance",
  nationwide: "match.nationwide",
  any: "match.any",
};

const known = (texts, value) => (value in texts ? t(texts[value]) : String(value));
export const kindName = (kind) => known(KIND_TEXT, kind);
export const modelName = (model) => known(MODEL_TEXT, model);
export const sourceName = (source) => known(SOURCE_TEXT, source);
export const statusName = (status) => known(STATUS_TEXT, status);
export const roleName = (role) => known(ROLE_TEXT, role);
export const matchName = (match) => known(MATCH_TEXT, match);

/** A small label: the state of an application, open or closed, estimate or official. */
export function badge(kind, text) {
  return h("span", { class: `badge badge-${kind}` }, text);
}

export function statusBadge(status) {
  return h("span", { class: `badge badge-status-${status}`, "data-status": status }, statusName(status));
}

/** "estimate" or "official", as the API labels a figure. */
export function sourceBadge(estimate) {
  return estimate
    ? h("span", { class: "badge badge-estimate", "data-source": "estimate" }, t("figure.estimate"))
    : h("span", { class: "badge badge-official", "data-source": "official" }, t("figure.official"));
}

// The API's refusals by their code: what the rule says, in the user's language.
const REFUSALS = {
  community_closed: "refusal.community_closed",
  too_many_communities: "refusal.too_many_communities",
  participation_sum: "refusal.participation_sum",
  duplicate_participation: "refusal.duplicate_participation",
  role_conflict: "refusal.role_conflict",
  participation_change: "refusal.participation_change",
  participation_rule: "refusal.participation_rule",
  static_keys: "refusal.static_keys",
  activation_date: "refusal.activation_date",
  wrong_state: "refusal.wrong_state",
  fixed_field: "refusal.fixed_field",
  renewable_only: "refusal.renewable_only",
  not_operator: "refusal.not_operator",
  invalid_official_data: "refusal.invalid_official_data",
  wrong_password: "refusal.wrong_password",
  consumption_needed: "refusal.consumption_needed",
  bad_ids: "refusal.bad_ids",
  bad_tariff: "refusal.bad_tariff",
  not_member: "refusal.not_member",
};

/**
 * Show a failed call in ``element`` (a role="alert" paragraph): the rule in the user's language
 * and the API's own reason beside it ("The server says: ..."). 422s list each invalid field;
 * ``fieldMessages`` ({field name: text}) say in the user's language what a field needs.
 */
export function showRefusal(element, error, fieldMessages = {}) {
  if (error.status === 401) return; // the app goes to the login page
  let headline;
  const fields = Array.isArray(error.body?.detail)
    ? error.body.detail.map((problem) => (problem.loc || []).filter((part) => typeof part === "string").at(-1)).filter((name) => name in fieldMessages)
    : [];
  if (fields.length) headline = [...new Set(fields)].map((name) => fieldMessages[name]).join(" ");
  else if (error.status === 0) headline = t("error.offline");
  else if (error.status === 429) headline = t("error.throttled", { seconds: error.retryAfterS ?? 60 });
  else if (error.status >= 500) headline = t("error.server");
  else if (error.code in REFUSALS) headline = t(REFUSALS[error.code]);
  else if (error.status === 422) headline = t("refusal.invalid");
  else if (error.status === 404) headline = t("refusal.not_found");
  else headline = t("refusal.other");
  const reasons = [];
  const detail = error.body?.detail;
  if (Array.isArray(detail)) {
    for (const problem of detail) {
      const where = (problem.loc || []).filter((part) => part !== "body" && part !== "query").join(" › ");
      reasons.push(where ? `${where}: ${problem.msg}` : problem.msg);
    }
  } else if (error.detail && error.status > 0 && error.status < 500) {
    reasons.push(error.detail);
  }
  element.replaceChildren(h("span", { class: "refusal-headline" }, headline));
  if (reasons.length) {
    element.append(
      h(
        "span",
        { class: "refusal-reasons" },
        ` ${t("refusal.server_says")} `,
        reasons.map((reason, index) => h("span", { class: "refusal-reason" }, index ? `; ${reason}` : reason)),
      ),
    );
  }
  element.dataset.code = error.code ?? "";
}

export function clearRefusal(element) {
  element.replaceChildren();
  delete element.dataset.code;
}

/** An alert paragraph for a form's refusals. */
export function alertBox(id = uid("alert")) {
  return h("p", { class: "form-error", role: "alert", id });
}

/** A status paragraph for what went well (read out politely). */
export function statusBox(id = uid("status")) {
  return h("p", { class: "form-ok", role: "status", id });
}

/**
 * A modal dialog (the native <dialog>: focus stays inside, Escape cancels) that asks to
 * confirm, optionally with a text field: ask() resolves to null (cancelled) or the field's
 * value ("" without a field).
 */
export function confirmDialog({ title, confirmLabel, danger = true, fieldLabel = null, fieldHint = null }) {
  const titleId = uid("dialog-title");
  const text = h("p", { id: uid("dialog-text") });
  const fieldId = uid("dialog-field");
  const input = fieldLabel
    ? h("textarea", { id: fieldId, rows: 3, maxlength: 500, "aria-describedby": fieldHint ? `${fieldId}-hint` : null })
    : null;
  const cancel = h("button", { type: "button", class: "secondary" }, t("dialog.cancel"));
  const confirm = h("button", { type: "button", class: danger ? "danger" : "primary" }, confirmLabel);
  const element = h(
    "dialog",
    { class: "confirm", "aria-labelledby": titleId, "aria-describedby": text.id },
    h("h2", { id: titleId }, title),
    text,
    input
      ? h(
          "div",
          { class: "field" },
          h("label", { for: fieldId }, fieldLabel),
          input,
          fieldHint ? h("p", { class: "hint", id: `${fieldId}-hint` }, fieldHint) : null,
        )
      : null,
    h("div", { class: "dialog-buttons" }, cancel, confirm),
  );
  let settle = null;
  const close = (answer) => {
    if (element.open) element.close();
    settle?.(answer);
    settle = null;
  };
  cancel.addEventListener("click", () => close(null));
  confirm.addEventListener("click", () => close(input ? input.value : ""));
  element.addEventListener("close", () => close(null));
  return {
    element,
    ask(message) {
      setText(text, message);
      if (input) input.value = "";
      element.showModal();
      (input ?? cancel).focus();
      return new Promise((resolve) => {
        settle = resolve;
      });
    },
  };
}

/** A definition list from [term, value] pairs (values: text or nodes; null pairs are left out). */
export function facts(pairs, attributes = {}) {
  return h(
    "dl",
    attributes,
    pairs.filter(Boolean).map(([term, value, id]) => [h("dt", {}, term), h("dd", { id: id ?? null }, value)]),
  );
}
