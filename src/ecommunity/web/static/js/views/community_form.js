// The operator's form of a community: every field of the API, for creating one (POST) and for
// editing it (PATCH). Kind and allocation model are chosen once: they are part of the contract
// with the grid operator, so the edit form shows them without letting them change.

import { h, uid } from "../dom.js";
import { t } from "../i18n.js";
import { KINDS, SOURCES, alertBox, clearRefusal, kindName, modelName, showRefusal, sourceName } from "./widgets.js";

const MODELS = ["dynamic", "static"];

function text(label, name, { value = "", hint = null, required = false, maxlength = 100, ...rest } = {}) {
  const id = `community-${name.replaceAll("_", "-")}`;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("input", { id, name, value: value ?? "", required, maxlength, "aria-describedby": hint ? `${id}-hint` : null, ...rest }),
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
  );
}

function area(label, name, { value = "", hint = null, maxlength = 5000, rows = 4 } = {}) {
  const id = `community-${name.replaceAll("_", "-")}`;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("textarea", { id, name, rows, maxlength, "aria-describedby": hint ? `${id}-hint` : null }, value ?? ""),
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
  );
}

function choice(label, name, options, { value, disabled = false, hint = null }) {
  const id = `community-${name.replaceAll("_", "-")}`;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h(
      "select",
      { id, name, disabled, "aria-describedby": hint ? `${id}-hint` : null },
      options.map(([optionValue, optionText]) => h("option", { value: optionValue, selected: optionValue === value }, optionText)),
    ),
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
  );
}

/** A decimal as typed: "12,5" (German) is sent as "12.5"; anything else as it is, for the API
 * to judge. */
function decimal(value) {
  const trimmed = String(value ?? "").trim();
  return /^\d+,\d+$/.test(trimmed) ? trimmed.replace(",", ".") : trimmed;
}

function plantRow(plant, onRemove) {
  const id = uid("plant");
  const row = h(
    "li",
    { class: "plant-row" },
    h(
      "div",
      { class: "field" },
      h("label", { for: `${id}-source` }, t("plant.source")),
      h(
        "select",
        { id: `${id}-source`, "data-plant": "source" },
        SOURCES.map((source) => h("option", { value: source, selected: source === (plant?.source ?? "pv") }, sourceName(source))),
      ),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: `${id}-kwp` }, t("plant.kwp")),
      h("input", { id: `${id}-kwp`, "data-plant": "peak_power_kwp", inputmode: "decimal", value: plant?.peak_power_kwp ?? "", required: true }),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: `${id}-name` }, t("plant.name")),
      h("input", { id: `${id}-name`, "data-plant": "name", maxlength: 100, value: plant?.name ?? "" }),
    ),
    h("button", { type: "button", class: "secondary", onclick: () => onRemove(row) }, t("plant.remove")),
  );
  return row;
}

/**
 * The form. ``community``: the current values (null: a new one). ``onSubmit(body)`` gets the
 * API body and returns a promise; a refusal shows with its reasons.
 */
export function communityForm(community, { submitLabel, onSubmit }) {
  const editing = community !== null;
  const c = community ?? {};
  const refusal = alertBox("community-form-error");
  const plants = h("ul", { class: "plant-list", id: "plant-list" });
  const removePlant = (row) => row.remove();
  for (const plant of c.plants ?? []) plants.append(plantRow(plant, removePlant));
  const fixedHint = editing ? t("operate.fixed_hint") : t("operate.fixed_warning");
  const submit = h("button", { type: "submit", class: "primary" }, submitLabel);
  const form = h(
    "form",
    { class: "community-form", novalidate: true, "aria-describedby": "community-form-error" },
    text(t("community.name"), "name", { value: c.name, required: true }),
    area(t("community.description"), "description", { value: c.description }),
    h(
      "div",
      { class: "form-columns" },
      choice(t("community.kind"), "kind", KINDS.map((kind) => [kind, kindName(kind)]), {
        value: c.kind ?? "eeg_local",
        disabled: editing,
        hint: fixedHint,
      }),
      choice(t("community.allocation_model"), "allocation_model", MODELS.map((model) => [model, modelName(model)]), {
        value: c.allocation_model ?? "dynamic",
        disabled: editing,
        hint: fixedHint,
      }),
    ),
    h(
      "div",
      { class: "form-columns" },
      text(t("community.grid_operator"), "grid_operator", { value: c.grid_operator, required: true }),
      text(t("community.municipality"), "municipality", { value: c.municipality }),
    ),
    h(
      "div",
      { class: "form-columns" },
      text(t("community.postal_codes"), "postal_codes", {
        value: (c.postal_codes ?? []).join(", "),
        hint: t("operate.postal_codes_hint"),
        maxlength: 2000,
        inputmode: "numeric",
      }),
      text(t("community.area_id"), "area_id", { value: c.area_id ?? "", hint: t("operate.area_id_hint"), maxlength: 64 }),
    ),
    h(
      "div",
      { class: "form-columns three" },
      text(t("operate.consumer_price"), "consumer_price_ct_per_kwh", { value: c.consumer_price_ct_per_kwh, inputmode: "decimal", required: true }),
      text(t("operate.producer_price"), "producer_price_ct_per_kwh", { value: c.producer_price_ct_per_kwh, inputmode: "decimal", required: true }),
      text(t("operate.member_fee"), "member_fee_eur_per_year", { value: c.member_fee_eur_per_year ?? "0", inputmode: "decimal" }),
    ),
    h("p", { class: "hint" }, t("operate.prices_hint")),
    h(
      "fieldset",
      { class: "plants" },
      h("legend", {}, t("community.plants")),
      h("p", { class: "hint" }, t("operate.plants_hint")),
      plants,
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          id: "add-plant",
          onclick: () => {
            const row = plantRow(null, removePlant);
            plants.append(row);
            row.querySelector("select").focus();
          },
        },
        t("plant.add"),
      ),
    ),
    h(
      "fieldset",
      { class: "location" },
      h("legend", {}, t("operate.location")),
      h("p", { class: "hint" }, t("operate.location_hint")),
      h(
        "div",
        { class: "form-columns" },
        text(t("operate.latitude"), "latitude", { value: c.location?.latitude ?? "", inputmode: "decimal", required: true }),
        text(t("operate.longitude"), "longitude", { value: c.location?.longitude ?? "", inputmode: "decimal", required: true }),
      ),
    ),
    h(
      "div",
      { class: "field inline" },
      h("input", { type: "checkbox", id: "community-open", name: "open_for_members", checked: c.open_for_members ?? true }),
      h("label", { for: "community-open" }, t("operate.open_for_members")),
    ),
    area(t("community.statutes"), "statutes", { value: c.statutes, maxlength: 100_000, rows: 8, hint: t("operate.statutes_hint") }),
    refusal,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearRefusal(refusal);
    const data = new FormData(form);
    const coordinate = (name) => {
      const value = decimal(data.get(name));
      return /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
    };
    const body = {
      name: String(data.get("name") ?? ""),
      description: String(data.get("description") ?? ""),
      grid_operator: String(data.get("grid_operator") ?? ""),
      municipality: String(data.get("municipality") ?? ""),
      area_id: String(data.get("area_id") ?? ""),
      postal_codes: String(data.get("postal_codes") ?? "")
        .split(/[\s,;]+/)
        .filter(Boolean),
      consumer_price_ct_per_kwh: decimal(data.get("consumer_price_ct_per_kwh")),
      producer_price_ct_per_kwh: decimal(data.get("producer_price_ct_per_kwh")),
      member_fee_eur_per_year: decimal(data.get("member_fee_eur_per_year")) || "0",
      plants: [...plants.children].map((row) => ({
        source: row.querySelector("[data-plant=source]").value,
        peak_power_kwp: decimal(row.querySelector("[data-plant=peak_power_kwp]").value),
        name: row.querySelector("[data-plant=name]").value,
      })),
      open_for_members: data.get("open_for_members") === "on",
      statutes: String(data.get("statutes") ?? ""),
      location: { latitude: coordinate("latitude"), longitude: coordinate("longitude") },
    };
    if (!editing) {
      body.kind = data.get("kind");
      body.allocation_model = data.get("allocation_model");
    }
    submit.disabled = true;
    try {
      await onSubmit(body);
    } catch (failure) {
      showRefusal(refusal, failure, {
        name: t("operate.invalid_name"),
        postal_codes: t("operate.invalid_postal_codes"),
        consumer_price_ct_per_kwh: t("operate.invalid_price"),
        producer_price_ct_per_kwh: t("operate.invalid_price"),
        member_fee_eur_per_year: t("operate.invalid_fee"),
        peak_power_kwp: t("operate.invalid_kwp"),
        latitude: t("operate.invalid_location"),
        longitude: t("operate.invalid_location"),
        grid_operator: t("operate.invalid_grid_operator"),
      });
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
