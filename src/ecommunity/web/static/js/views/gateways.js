// "Gateways": pair one by typing the code it shows (RFC 8628: POST /devices/activate), the list
// of paired gateways with their status, and revoking one (after a confirmation).

import { del, get, post } from "../api.js";
import { h, setText, uid } from "../dom.js";
import { formatAgo, formatDate, t } from "../i18n.js";
import { errorMessage, field } from "./auth.js";

/** How often the list is fetched again while it is shown. [ms] */
const LIST_REFRESH_MS = 15_000;

function pairForm(onPaired) {
  const code = new URLSearchParams(location.search).get("code") ?? "";
  const message = h("p", { class: "form-error", role: "alert", id: uid("pair-error") });
  const done = h("p", { class: "form-ok", role: "status" });
  const submit = h("button", { type: "submit", class: "primary" }, t("pair.submit"));
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "pair-title", "aria-describedby": message.id },
    h("h2", { id: "pair-title" }, t("pair.title")),
    h("p", {}, t("pair.explain")),
    field(
      t("pair.code"),
      {
        name: "user_code",
        id: "pair-code",
        required: true,
        value: code,
        autocomplete: "off",
        autocapitalize: "characters",
        spellcheck: "false",
        inputmode: "text",
        maxlength: 32,
        placeholder: "ABCD-EFGH",
        class: "code",
      },
      t("pair.code_hint"),
    ),
    field(t("pair.name"), { name: "name", id: "pair-name", required: true, maxlength: 100, value: t("pair.name_default") }),
    message,
    done,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    setText(message, "");
    setText(done, "");
    submit.disabled = true;
    try {
      const device = await post("/devices/activate", {
        user_code: String(data.get("user_code")).trim(),
        name: String(data.get("name")).trim(),
      });
      setText(done, t("pair.done", { name: device.name }));
      form.elements.user_code.value = "";
      onPaired();
    } catch (error) {
      setText(
        message,
        errorMessage(error, {
          not_found: t("pair.unknown"),
          user_code_expired: t("pair.expired"),
          user_code_used: t("pair.used"),
          invalid_request: t("pair.invalid"),
        }),
      );
      form.elements.user_code.focus();
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function statusOf(device) {
  if (device.revoked) return ["revoked", t("gateway.revoked")];
  if (device.online) return ["online", t("gateway.online")];
  return ["offline", t("gateway.offline")];
}

function lastData(device) {
  if (!device.last_seen_at) return t("gateway.never");
  const ageS = Math.max(0, (Date.now() - Date.parse(device.last_seen_at)) / 1000);
  return `${formatAgo(ageS)} (${formatDate(device.last_seen_at)})`;
}

export function render(main) {
  const list = h("ul", { class: "gateway-list", id: "gateway-list", "aria-live": "polite" });
  const listError = h("p", { class: "form-error", role: "alert" });
  const dialog = confirmDialog();
  main.append(
    h(
      "section",
      { class: "gateways" },
      h("h1", { tabindex: "-1" }, t("gateways.title")),
      pairForm(() => refresh()),
      h(
        "section",
        { class: "card", "aria-labelledby": "list-title" },
        h("h2", { id: "list-title" }, t("gateways.list")),
        listError,
        list,
      ),
      dialog.element,
    ),
  );

  async function refresh() {
    let devices;
    try {
      devices = await get("/devices");
    } catch (error) {
      if (error.status !== 401) setText(listError, errorMessage(error));
      return;
    }
    setText(listError, "");
    if (devices.length === 0) {
      list.replaceChildren(h("li", { class: "empty" }, t("gateways.none")));
      return;
    }
    // Newest first: the one just paired is on top.
    list.replaceChildren(...devices.reverse().map((device) => item(device)));
  }

  function item(device) {
    const [state, label] = statusOf(device);
    const nameId = uid("gateway");
    return h(
      "li",
      { class: `gateway gateway-${state}`, "aria-labelledby": nameId, "data-device-id": device.id },
      h(
        "div",
        { class: "gateway-head" },
        h("h3", { id: nameId }, device.name),
        h("span", { class: `badge badge-${state}` }, label),
      ),
      h(
        "dl",
        {},
        h("dt", {}, t("gateway.last_data")),
        h("dd", {}, lastData(device)),
        h("dt", {}, t("gateway.paired")),
        h("dd", {}, formatDate(device.created_at)),
        h("dt", {}, t("gateway.hardware_id")),
        h("dd", { class: "mono" }, device.hardware_id),
      ),
      device.revoked
        ? null
        : h(
            "button",
            {
              type: "button",
              class: "danger",
              "aria-describedby": nameId,
              onclick: async () => {
                if (!(await dialog.ask(device.name))) return;
                try {
                  await del(`/devices/${device.id}`);
                } catch (error) {
                  if (error.status !== 401) setText(listError, errorMessage(error));
                }
                refresh();
              },
            },
            t("gateway.revoke"),
          ),
    );
  }

  refresh();
  const timer = setInterval(refresh, LIST_REFRESH_MS);
  return () => clearInterval(timer);
}

/** A modal confirmation (the native <dialog>: focus stays inside, Escape cancels). */
function confirmDialog() {
  const text = h("p", { id: uid("confirm-text") });
  const cancel = h("button", { type: "button", value: "cancel", class: "secondary" }, t("dialog.cancel"));
  const confirm = h("button", { type: "button", value: "confirm", class: "danger" }, t("gateway.revoke"));
  const titleId = uid("confirm-title");
  const element = h(
    "dialog",
    { class: "confirm", "aria-labelledby": titleId, "aria-describedby": text.id },
    h("h2", { id: titleId }, t("revoke.title")),
    text,
    h("div", { class: "dialog-buttons" }, cancel, confirm),
  );
  let settle = null;
  const close = (answer) => {
    if (element.open) element.close();
    settle?.(answer);
    settle = null;
  };
  cancel.addEventListener("click", () => close(false));
  confirm.addEventListener("click", () => close(true));
  element.addEventListener("close", () => close(false));
  return {
    element,
    ask(name) {
      setText(text, t("revoke.text", { name }));
      element.showModal();
      cancel.focus();
      return new Promise((resolve) => {
        settle = resolve;
      });
    },
  };
}
