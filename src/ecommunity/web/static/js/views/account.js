// Account settings: who is signed in, the language, signing out.

import { post } from "../api.js";
import { h, setText } from "../dom.js";
import { LANGUAGE_NAMES, currentLanguage, formatDate, setLanguage, t } from "../i18n.js";
import { errorMessage } from "./auth.js";

export function render(main, context) {
  const user = context.session.user;
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
          h("dd", { id: "account-name" }, user.display_name),
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
