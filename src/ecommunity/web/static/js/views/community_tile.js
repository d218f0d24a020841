// The "Community covers now" tile of My energy: for a member taking part in a community, the
// share of the members' consumption the community covers in the current quarter hour, from
// the live community view (GET /communities/{id}/live, asked again every minute). It is the
// community's figure, not one computed for the member, and labelled as the API labels it.

import { get } from "../api.js";
import { h, setText } from "../dom.js";
import { formatDate, formatShare, t } from "../i18n.js";

/** How often the snapshot is asked for again. [ms] */
const REFRESH_MS = 60_000;

/** Fill ``tile`` (the tile's <li>) once the user's memberships are known; returns stop(). */
export function communityTile(tile) {
  let timer = null;
  let stopped = false;
  (async () => {
    let mine;
    try {
      mine = await get("/memberships");
    } catch {
      return; // the tile keeps its invitation to join
    }
    const taking = mine.find((m) => m.status === "active" && m.active_from && Date.parse(m.active_from) <= Date.now());
    if (!taking || stopped) return;
    const value = h("p", { class: "tile-value", id: "community-share", elementtiming: "community-share" }, "–");
    const note = h("p", { class: "tile-note", id: "community-now" });
    const link = h("a", { href: "/my-community", "data-link": true }, taking.community_name);
    tile.querySelector("#community-now")?.replaceWith(value, note);
    async function refresh() {
      let snapshot;
      try {
        snapshot = await get(`/communities/${taking.community_id}/live`);
      } catch {
        return; // shown as it was; the next minute tries again
      }
      if (stopped) return;
      const quarter = snapshot.quarter_hour;
      setText(value, formatShare(quarter?.self_sufficiency ?? null));
      note.replaceChildren(
        t(snapshot.estimate ? "tile.community_share_estimate" : "tile.community_share", {
          time: formatDate(snapshot.as_of, { timeStyle: "short" }),
        }),
        " ",
        link,
      );
    }
    await refresh();
    if (!stopped) timer = setInterval(refresh, REFRESH_MS);
  })();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
