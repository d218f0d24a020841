// The live community view's socket (WS /api/v1/communities/{id}/live): a snapshot
// ("type": "community_live") at least every minute. Reconnects with back-off unless the server
// said no for good; while the socket is down, the snapshot is asked for over HTTP instead.

import { API, get } from "./api.js";

const CLOSE_UNAUTHORIZED = 4401;
const FINAL_CLOSES = new Set([4400, 4403, 4404]);
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;

export function communityLiveUrl(communityId) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${API}/communities/${communityId}/live`;
}

export class LiveCommunity {
  /**
   * onSnapshot(snapshot): each "community_live" message (or HTTP answer).
   * onState(state): "connecting", "open", "retrying", "unauthenticated", "refused".
   * onError(error): an HTTP refusal of the snapshot.
   */
  constructor(communityId, { onSnapshot, onState, onError }) {
    this.communityId = communityId;
    this.onSnapshot = onSnapshot;
    this.onState = onState;
    this.onError = onError;
    this.socket = null;
    this.stopped = false;
    this.retryMs = RETRY_MIN_MS;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    // The first snapshot over HTTP: on screen at once, whatever the socket does.
    this.fetch();
    this.connect();
    return this;
  }

  async fetch() {
    try {
      const snapshot = await get(`/communities/${this.communityId}/live`);
      if (!this.stopped) this.onSnapshot(snapshot);
    } catch (error) {
      if (!this.stopped) this.onError(error);
    }
  }

  connect() {
    this.onState("connecting");
    const socket = new WebSocket(communityLiveUrl(this.communityId));
    this.socket = socket;
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "community_live") {
        this.retryMs = RETRY_MIN_MS;
        this.onState("open");
        this.onSnapshot(message);
      }
    });
    socket.addEventListener("close", (event) => {
      if (this.stopped || socket !== this.socket) return;
      if (event.code === CLOSE_UNAUTHORIZED) {
        this.onState("unauthenticated");
      } else if (FINAL_CLOSES.has(event.code)) {
        this.onState("refused");
      } else {
        this.onState("retrying");
        this.fetch();
        this.timer = setTimeout(() => this.connect(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
      }
    });
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "leaving");
    this.socket = null;
  }
}
