// Notifications: every change of an application or membership, for the member and for the
// operator (GET /notifications; mark read). The navigation shows how many are unread.

import { get, post } from "../api.js";
import { h, setText, uid } from "../dom.js";
import { formatDate, formatNumber, t } from "../i18n.js";
import { alertBox, showRefusal } from "./widgets.js";

/** How often the unread count is asked for while signed in. [ms] */
const UNREAD_REFRESH_MS = 30_000;
/** The API answers at most this many at once. */
const PAGE = 100;

const KIND_TEXT = {
  membership_applied: "notification.membership_applied",
  membership_approved: "notification.membership_approved",
  membership_rejected: "notification.membership_rejected",
  membership_activated: "notification.membership_activated",
  membership_left: "notification.membership_left",
  participation_factor_changed: "notification.participation_factor_changed",
  static_key_changed: "notification.static_key_changed",
};

function kindTitle(kind) {
  return kind in KIND_TEXT ? t(KIND_TEXT[kind]) : kind;
}

/** The count beside "Notifications" in the navigation; refresh() asks the API again. */
export function unreadBadge(element) {
  let timer = null;
  let asking = false;
  async function refresh() {
    if (!timer) timer = setInterval(refresh, UNREAD_REFRESH_MS);
    if (asking) return;
    asking = true;
    try {
      const unread = await get(`/notifications?unread=true&limit=${PAGE}`);
      const count = unread.length;
      element.hidden = count === 0;
      setText(element, count >= PAGE ? `${formatNumber(PAGE - 1)}+` : formatNumber(count));
      element.parentElement?.setAttribute(
        "aria-label",
        count ? t("notifications.nav_unread", { count: formatNumber(count) }) : t("nav.notifications"),
      );
    } catch {
      // Not signed in any more, or offline: the count stays as it was.
    } finally {
      asking = false;
    }
  }
  return {
    refresh,
    stop() {
      clearInterval(timer);
      timer = null;
      element.hidden = true;
    },
  };
}

export function render(main, context) {
  const error = alertBox("notifications-error");
  const list = h("ul", { class: "notification-list", id: "notification-list", "aria-live": "polite" });
  const onlyUnread = h("input", { type: "checkbox", id: "only-unread", onchange: () => refresh() });
  const markAll = h("button", { type: "button", class: "secondary", id: "mark-all-read", onclick: () => readAll() }, t("notifications.mark_all"));
  main.append(
    h(
      "section",
      { class: "notifications" },
      h("h1", { tabindex: "-1" }, t("notifications.title")),
      h(
        "div",
        { class: "toolbar" },
        h("div", { class: "field inline" }, onlyUnread, h("label", { for: "only-unread" }, t("notifications.only_unread"))),
        markAll,
      ),
      error,
      list,
    ),
  );
  let shown = [];
  let stopped = false;

  async function refresh() {
    try {
      shown = await get(`/notifications?limit=${PAGE}${onlyUnread.checked ? "&unread=true" : ""}`);
    } catch (failure) {
      if (!stopped) showRefusal(error, failure);
      return;
    }
    if (stopped) return;
    markAll.disabled = !shown.some((note) => note.read_at === null);
    if (!shown.length) {
      list.replaceChildren(h("li", { class: "empty" }, t("notifications.none")));
      return;
    }
    list.replaceChildren(...shown.map(item));
  }

  async function markRead(note) {
    try {
      await post(`/notifications/${note.id}/read`);
    } catch (failure) {
      showRefusal(error, failure);
    }
  }

  async function readAll() {
    markAll.disabled = true;
    for (const note of shown.filter((each) => each.read_at === null)) await markRead(note);
    context.notificationsChanged();
    refresh();
  }

  function item(note) {
    const titleId = uid("note");
    const unread = note.read_at === null;
    return h(
      "li",
      { class: `notification${unread ? " unread" : ""}`, "aria-labelledby": titleId, "data-notification-id": note.id, "data-kind": note.kind },
      h(
        "div",
        { class: "notification-head" },
        h("h2", { id: titleId }, kindTitle(note.kind)),
        unread ? h("span", { class: "badge badge-unread" }, t("notifications.unread")) : null,
      ),
      h("p", { class: "notification-message" }, note.message),
      h(
        "p",
        { class: "hint" },
        h("time", { datetime: note.created_at }, formatDate(note.created_at)),
        note.community_id ? [" · ", h("a", { href: `/communities/${note.community_id}`, "data-link": true }, t("notifications.to_community"))] : null,
      ),
      unread
        ? h(
            "button",
            {
              type: "button",
              class: "secondary",
              "aria-describedby": titleId,
              onclick: async () => {
                await markRead(note);
                context.notificationsChanged();
                refresh();
              },
            },
            t("notifications.mark_read"),
          )
        : null,
    );
  }

  refresh();
  return () => {
    stopped = true;
  };
}
