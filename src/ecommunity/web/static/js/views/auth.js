// Sign up and log in.

import { post } from "../api.js";
import { h, uid } from "../dom.js";
import { t } from "../i18n.js";

/** A labelled input; the error element of the form describes it. */
export function field(label, attributes, hint = null) {
  const id = attributes.id ?? uid("field");
  const hintId = hint ? `${id}-hint` : null;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("input", { ...attributes, id, "aria-describedby": hintId }),
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
  );
}

/** The message of a failed API call, in the user's language. */
export function errorMessage(error, messages = {}) {
  if (error.status === 0) return t("error.offline");
  if (error.code in messages) return messages[error.code];
  if (error.status === 429) {
    return t("error.throttled", { seconds: error.retryAfterS ?? 60 });
  }
  if (error.status >= 500) return t("error.server");
  return t("error.generic", { detail: error.detail });
}

function form(title, fields, submitLabel, onSubmit, footer) {
  const errorId = uid("error");
  const error = h("p", { id: errorId, class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, submitLabel);
  const element = h(
    "form",
    { class: "card narrow", novalidate: false, "aria-describedby": errorId },
    h("h1", {}, title),
    fields,
    error,
    submit,
    footer,
  );
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    element.setAttribute("aria-busy", "true");
    try {
      await onSubmit(new FormData(element));
    } catch (failure) {
      error.textContent = failure.userMessage ?? String(failure.message ?? failure);
    } finally {
      submit.disabled = false;
      element.removeAttribute("aria-busy");
    }
  });
  return element;
}

function afterLogin(context) {
  const next = new URLSearchParams(location.search).get("next");
  // Only a path of this app: never an address elsewhere.
  const target = next && next.startsWith("/") && !next.startsWith("//") ? next : "/energy";
  context.navigate(target, { replace: true });
}

async function logIn(context, email, password) {
  try {
    const login = await post("/auth/login", { email, password });
    context.signedIn(login.user, login.csrf_token);
  } catch (error) {
    error.userMessage = errorMessage(error, { not_authenticated: t("login.wrong") });
    throw error;
  }
}

export function renderLogin(main, context) {
  main.append(
    form(
      t("login.title"),
      [
        field(t("field.email"), { name: "email", type: "email", autocomplete: "username", required: true }),
        field(t("field.password"), {
          name: "password",
          type: "password",
          autocomplete: "current-password",
          required: true,
        }),
      ],
      t("login.submit"),
      async (data) => {
        await logIn(context, data.get("email"), data.get("password"));
        afterLogin(context);
      },
      h("p", {}, t("login.no_account"), " ", h("a", { href: `/signup${location.search}`, "data-link": true }, t("signup.link"))),
    ),
  );
}

export function renderSignup(main, context) {
  main.append(
    form(
      t("signup.title"),
      [
        field(t("field.display_name"), {
          name: "display_name",
          type: "text",
          autocomplete: "name",
          required: true,
          maxlength: 100,
        }),
        field(t("field.email"), { name: "email", type: "email", autocomplete: "email", required: true }),
        field(
          t("field.new_password"),
          { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 10 },
          t("signup.password_hint"),
        ),
      ],
      t("signup.submit"),
      async (data) => {
        const email = data.get("email");
        const password = data.get("password");
        try {
          await post("/auth/register", {
            email,
            password,
            display_name: data.get("display_name"),
          });
        } catch (error) {
          error.userMessage = errorMessage(error, {
            conflict: t("signup.taken"),
            invalid_request: t("signup.invalid", { detail: error.detail }),
          });
          throw error;
        }
        await logIn(context, email, password);
        afterLogin(context);
      },
      h("p", {}, t("signup.have_account"), " ", h("a", { href: `/login${location.search}`, "data-link": true }, t("login.link"))),
    ),
  );
}
