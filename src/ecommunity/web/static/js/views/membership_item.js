// One application or membership as its member sees it: the state, the metering point, the
// participation factor, the dates and the rejection reason; withdrawing or leaving.

import { h, uid } from "../dom.js";
import { formatDate, formatDecimal, formatPercent, t } from "../i18n.js";
import { facts, roleName, statusBadge } from "./widgets.js";

const DAY = { dateStyle: "long" };
const OPEN = new Set(["applied", "approved", "active"]);

/** ``withCommunity``: name the community (the member's list over all of them). */
export function membershipItem(membership, { onLeave = null, withCommunity = false } = {}) {
  const titleId = uid("membership");
  const factor = membership.pending_participation_factor
    ? t("membership.tf_pending", {
        now: formatPercent(membership.participation_factor),
        next: formatPercent(membership.pending_participation_factor),
        from: formatDate(membership.pending_from, DAY),
      })
    : formatPercent(membership.participation_factor);
  const leaveLabel = membership.status === "active" ? t("membership.leave") : t("membership.withdraw");
  return h(
    "li",
    {
      class: "membership",
      "aria-labelledby": titleId,
      "data-membership-id": membership.id,
      "data-status": membership.status,
    },
    h(
      "div",
      { class: "membership-head" },
      h(
        "h3",
        { id: titleId },
        withCommunity
          ? h("a", { href: `/communities/${membership.community_id}`, "data-link": true }, membership.community_name)
          : t("membership.point_title", { role: roleName(membership.role) }),
      ),
      statusBadge(membership.status),
    ),
    h("p", { class: "status-explain" }, statusExplanation(membership)),
    facts([
      [t("membership.metering_point"), h("span", { class: "mono" }, membership.metering_point)],
      withCommunity ? [t("membership.role"), roleName(membership.role)] : null,
      [t("membership.tf"), factor],
      membership.static_key !== null ? [t("membership.static_key"), formatDecimal(membership.static_key, 0, 9)] : null,
      [t("membership.applied_at"), formatDate(membership.applied_at)],
      membership.decided_at ? [t("membership.decided_at"), formatDate(membership.decided_at)] : null,
      membership.rejection_reason ? [t("membership.rejection_reason"), membership.rejection_reason] : null,
      membership.active_from ? [t("membership.active_from"), formatDate(membership.active_from, DAY)] : null,
      membership.active_until ? [t("membership.active_until"), formatDate(membership.active_until, DAY)] : null,
      membership.left_at ? [t("membership.left_at"), formatDate(membership.left_at)] : null,
    ]),
    onLeave && OPEN.has(membership.status)
      ? h("button", { type: "button", class: "danger", "aria-describedby": titleId, onclick: onLeave }, leaveLabel)
      : null,
  );
}

function statusExplanation(membership) {
  switch (membership.status) {
    case "applied":
      return t("membership.explain_applied");
    case "approved":
      return t("membership.explain_approved");
    case "rejected":
      return t("membership.explain_rejected");
    case "active":
      return t("membership.explain_active");
    case "left":
      return t("membership.explain_left");
    default:
      return "";
  }
}
