// "Operate": the communities you run, with the applications waiting in each, and creating a
// new one.

import { get, post } from "../api.js";
import { h, uid } from "../dom.js";
import { formatNumber, t } from "../i18n.js";
import { communityForm } from "./community_form.js";
import { alertBox, facts, kindName, modelName, showRefusal } from "./widgets.js";

export function render(main, context) {
  const error = alertBox("operate-error");
  const list = h("ul", { class: "operated-list", id: "operated-list", "aria-live": "polite" });
  main.append(
    h(
      "section",
      { class: "operate" },
      h(
        "div",
        { class: "view-header" },
        h("h1", { tabindex: "-1" }, t("operate.title")),
        h("a", { href: "/operate/new", "data-link": true, class: "button primary", id: "new-community" }, t("operate.new")),
      ),
      h("p", {}, t("operate.explain")),
      error,
      list,
    ),
  );
  let stopped = false;
  (async () => {
    let operated;
    try {
      operated = await get("/me/communities");
    } catch (failure) {
      if (!stopped) showRefusal(error, failure);
      return;
    }
    if (stopped) return;
    if (!operated.length) {
      list.replaceChildren(h("li", { class: "empty card" }, t("operate.none")));
      return;
    }
    list.replaceChildren(
      ...operated.map((community) => {
        const titleId = uid("operated");
        return h(
          "li",
          { class: "card operated", "aria-labelledby": titleId, "data-community-id": community.id },
          h("h2", { id: titleId }, h("a", { href: `/operate/${community.id}`, "data-link": true }, community.name)),
          h("p", { class: "hint" }, `${kindName(community.kind)} · ${modelName(community.allocation_model)}`),
          facts([
            [t("operate.waiting_applications"), formatNumber(community.applied), `operated-${community.id}-applied`],
            [t("operate.waiting_activation"), formatNumber(community.approved), `operated-${community.id}-approved`],
            [t("operate.active_points"), formatNumber(community.active), `operated-${community.id}-active`],
            [t("community.members"), formatNumber(community.member_count), `operated-${community.id}-members`],
          ]),
        );
      }),
    );
  })();
  return () => {
    stopped = true;
  };
}

export function renderNew(main, context) {
  main.append(
    h(
      "section",
      { class: "operate-new" },
      h("h1", { tabindex: "-1" }, t("operate.new_title")),
      h("p", {}, t("operate.new_explain")),
      h(
        "div",
        { class: "card" },
        communityForm(null, {
          submitLabel: t("operate.create"),
          onSubmit: async (body) => {
            const created = await post("/communities", body);
            context.navigate(`/operate/${created.id}`);
          },
        }),
      ),
    ),
  );
}
