// Account settings: who is signed in, the display name and the password, the language,
// signing out.

import { patch, post } from "../api.js";
import { h, setText } from "../dom.js";
import { LANGUAGE_NAMES, currentLanguage, formatDate, formatNumber, setLanguage, t } from "../i18n.js";
import { errorMessage } from "./auth.js";
import { alertBox, clearRefusal, showRefusal, statusBox } from "./widgets.js";

function nameForm(context, shownName) {
  const refusal = alertBox("name-error");
  const done = statusBox("name-done");
  const form = h(
    "form",
    { class: "settings-form", novalidate: true, "aria-labelledby": "name-title" },
    h("h3", { id: "name-title" }, t("settings.name_title")),
    h(
      "div",
      { class: "field" },
      h("label", { for: "settings-name" }, t("field.display_name")),
      h("input", {
        id: "settings-name",
        name: "display_name",
        autocomplete: "name",
        required: true,
        maxlength: 100,
        value: context.session.user.display_name,
        "aria-describedby": "settings-name-hint",
      }),
      h("p", { class: "hint", id: "settings-name-hint" }, t("settings.name_hint")),
    ),
    refusal,
    done,
    h("button", { type: "submit", class: "secondary" }, t("settings.name_save")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearRefusal(refusal);
    setText(done, "");
    try {
      const me = await patch("/me", { display_name: String(new FormData(form).get("display_name") ?? "") });
      context.session.user = { ...context.session.user, display_name: me.display_name };
      setText(shownName, me.display_name);
      form.elements.display_name.value = me.display_name;
      setText(done, t("settings.name_saved"));
    } catch (failure) {
      showRefusal(refusal, failure, { display_name: t("settings.name_invalid") });
    }
  });
  return form;
}

function passwordForm() {
  const refusal = alertBox("password-error");
  const done = statusBox("password-done");
  const input = (id, name, label, autocomplete, hint = null) =>
    h(
      "div",
      { class: "field" },
      h("label", { for: id }, label),
      h("input", { id, name, type: "password", autocomplete, required: true, maxlength: 1024, "aria-describedby": hint ? `${id}-hint` : null }),
      hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
    );
  const form = h(
    "form",
    { class: "settings-form", novalidate: true, "aria-labelledby": "password-title" },
    h("h3", { id: "password-title" }, t("settings.password_title")),
    h("p", { class: "hint" }, t("settings.password_explain")),
    input("settings-current-password", "current_password", t("settings.current_password"), "current-password"),
    input("settings-new-password", "new_password", t("settings.new_password"), "new-password", t("signup.password_hint")),
    refusal,
    done,
    h("button", { type: "submit", class: "secondary" }, t("settings.password_save")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearRefusal(refusal);
    setText(done, "");
    const data = new FormData(form);
    try {
      const changed = await post("/me/password", {
        current_password: String(data.get("current_password") ?? ""),
        new_password: String(data.get("new_password") ?? ""),
      });
      form.reset();
      setText(done, t("settings.password_saved", { count: formatNumber(changed.revoked_sessions) }));
    } catch (failure) {
      showRefusal(refusal, failure, {
        new_password: t("settings.new_password_invalid"),
        current_password: t("settings.current_password_missing"),
      });
    }
  });
  return form;
}

export function render(main, context) {
  const user = context.session.user;
  const shownName = h("dd", { id: "account-name" }, user.display_name);
  const error = h("p", { class: "form-error", role: "alert" });
  const language = h(
    "select",
    { id: "account-language", onchange: () => setLanguage(language.value) },
    Object.entries(LANGUAGE_NAMES).map(([code, name]) =>
      h("option", { value: code, selected: code === currentLanguage(), lang: code }, name),
    ),
  );
  const signOut = h(
    "button",
    {
      type: "button",
      class: "secondary",
      id: "sign-out",
      onclick: async () => {
        signOut.disabled = true;
        try {
          await post("/auth/logout");
        } catch (failure) {
          // 401: the session had ended anyway.
          if (failure.status !== 401) {
            setText(error, errorMessage(failure));
            signOut.disabled = false;
            return;
          }
        }
        context.signedOut();
      },
    },
    t("account.sign_out"),
  );
  main.append(
    h(
      "section",
      { class: "account" },
      h("h1", { tabindex: "-1" }, t("account.title")),
      h(
        "section",
        { class: "card", "aria-labelledby": "profile-title" },
        h("h2", { id: "profile-title" }, t("account.profile")),
        h(
          "dl",
          {},
          h("dt", {}, t("field.display_name")),
          shownName,
          h("dt", {}, t("field.email")),
          h("dd", { id: "account-email" }, user.email),
          h("dt", {}, t("account.since")),
          h("dd", {}, formatDate(user.created_at, { dateStyle: "long" })),
        ),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "settings-title" },
        h("h2", { id: "settings-title" }, t("account.settings")),
        nameForm(context, shownName),
        passwordForm(),
        h(
          "div",
          { class: "field" },
          h("label", { for: "account-language" }, t("language.label")),
          language,
          h("p", { class: "hint" }, t("account.language_hint")),
        ),
      ),
      h("section", { class: "card", "aria-label": t("account.sign_out") }, error, signOut),
    ),
  );
}
