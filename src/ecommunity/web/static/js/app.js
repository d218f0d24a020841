// The app: who is signed in, which screen shows (the path decides: /energy, /gateways, ...),
// the language switch, the unread notifications and the service worker.

import { get, onReachability, onUnauthenticated, setCsrfToken } from "./api.js";
import { h } from "./dom.js";
import { LANGUAGE_NAMES, currentLanguage, setLanguage, t, translateShell } from "./i18n.js";
import * as account from "./views/account.js";
import * as auth from "./views/auth.js";
import * as communities from "./views/communities.js";
import * as community from "./views/community.js";
import * as compare from "./views/compare.js";
import * as energy from "./views/energy.js";
import * as gateways from "./views/gateways.js";
import * as myCommunity from "./views/my_community.js";
import * as notifications from "./views/notifications.js";
import * as operate from "./views/operate.js";
import * as operateCommunity from "./views/operate_community.js";

const ROUTES = {
  "/login": { render: auth.renderLogin, title: "login.title", public: true },
  "/signup": { render: auth.renderSignup, title: "signup.title", public: true },
  "/energy": { render: energy.render, title: "energy.title" },
  "/gateways": { render: gateways.render, title: "gateways.title" },
  "/pair": { render: gateways.render, title: "gateways.title", nav: "/gateways" },
  "/account": { render: account.render, title: "account.title" },
  "/communities": { render: communities.render, title: "find.title" },
  "/communities/compare": { render: compare.render, title: "compare.title", nav: "/communities" },
  "/my-community": { render: myCommunity.render, title: "mine.title" },
  "/notifications": { render: notifications.render, title: "notifications.title" },
  "/operate": { render: operate.render, title: "operate.title" },
  "/operate/new": { render: operate.renderNew, title: "operate.new_title", nav: "/operate" },
};
/** Screens of one community: the id is the path's last part. */
const ID_ROUTES = [
  { pattern: /^\/communities\/(\d{1,10})$/, render: community.render, title: "community.title", nav: "/communities" },
  { pattern: /^\/operate\/(\d{1,10})$/, render: operateCommunity.render, title: "operate.title", nav: "/operate" },
];

function routeOf(path) {
  if (ROUTES[path]) return { entry: ROUTES[path], params: {} };
  for (const entry of ID_ROUTES) {
    const found = entry.pattern.exec(path);
    if (found) return { entry, params: { id: Number(found[1]) } };
  }
  return null;
}

const session = { user: null };
const main = document.getElementById("main");
const nav = document.getElementById("nav");
let cleanup = null;
let firstRoute = true;

/** Answers asked for before the screen needed them (see start()), each used once. */
const early = new Map();

const context = {
  session,
  navigate,
  takeEarly(path) {
    const answer = early.get(path) ?? null;
    early.delete(path);
    return answer;
  },
  rerender: () => route(),
  signedIn(user, csrfToken) {
    session.user = user;
    setCsrfToken(csrfToken);
  },
  signedOut() {
    session.user = null;
    setCsrfToken(null);
    unread.stop();
    navigate("/login", { replace: true });
  },
  /** The unread count in the navigation changed (a notification was marked read). */
  notificationsChanged: () => unread.refresh(),
};

/** The number of unread notifications beside "Notifications" in the navigation. */
const unread = notifications.unreadBadge(document.getElementById("unread-count"));

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  route();
}

function route() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  const path = location.pathname;
  const found = routeOf(path);
  const entry = found?.entry;
  if (!entry) {
    navigate(session.user ? "/energy" : "/login", { replace: true });
    return;
  }
  if (!entry.public && !session.user) {
    navigate(`/login?next=${encodeURIComponent(path + location.search)}`, { replace: true });
    return;
  }
  if (entry.public && session.user) {
    navigate("/energy", { replace: true });
    return;
  }
  nav.hidden = !session.user;
  for (const link of nav.querySelectorAll("a")) {
    const current = link.pathname === path || link.pathname === entry.nav;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${t(entry.title)} · eCommunity`;
  main.replaceChildren();
  cleanup = entry.render(main, context, found.params) || null;
  if (session.user) unread.refresh();
  if (!firstRoute) {
    // Screen readers hear the new screen's heading; keyboards start from there.
    (main.querySelector("h1") || main).focus({ preventScroll: false });
  }
  firstRoute = false;
}

function followLinks() {
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-link]");
    if (!link || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(link.getAttribute("href"));
  });
  window.addEventListener("popstate", () => route());
}

function languageSwitch() {
  const select = document.getElementById("language");
  select.setAttribute("aria-label", t("language.label"));
  select.replaceChildren(
    ...Object.entries(LANGUAGE_NAMES).map(([code, name]) =>
      h("option", { value: code, lang: code, selected: code === currentLanguage() }, name),
    ),
  );
  select.addEventListener("change", () => setLanguage(select.value));
  document.addEventListener("languagechange", () => {
    select.value = currentLanguage();
    select.setAttribute("aria-label", t("language.label"));
    translateShell();
    route();
  });
}

function offlineBanner() {
  // The browser's own idea of being online, and whether the server answers at all.
  const banner = document.getElementById("offline");
  let answered = true;
  const show = () => {
    banner.hidden = navigator.onLine && answered;
  };
  window.addEventListener("online", show);
  window.addEventListener("offline", show);
  onReachability((ok) => {
    answered = ok;
    show();
  });
  show();
}

function renderUnreachable() {
  main.replaceChildren(
    h(
      "section",
      { class: "card narrow" },
      h("h1", {}, t("app.unreachable_title")),
      h("p", {}, t("app.unreachable")),
      h("button", { type: "button", class: "primary", onclick: () => start() }, t("app.retry")),
    ),
  );
}

async function start() {
  if (location.pathname === "/energy") {
    // "My energy" needs the meters next: ask now, alongside the session (a 401 if signed out).
    const meters = get("/meters");
    meters.catch(() => {});
    early.set("/meters", meters);
  }
  try {
    const me = await get("/me");
    context.signedIn(me, me.csrf_token);
  } catch (error) {
    early.clear();
    if (error.status !== 401) {
      renderUnreachable();
      return;
    }
  }
  route();
}

function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  // After the first screen: installing the shell must not compete with it.
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
  });
}

onUnauthenticated(() => {
  if (session.user) context.signedOut();
});
translateShell();
languageSwitch();
followLinks();
offlineBanner();
registerServiceWorker();
start();
