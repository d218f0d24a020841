// The live socket onto one meter (WS /api/v1/live?meter=id): each reading as the cloud stores
// it. Reconnects with back-off unless the server said no for good (signed out, no such meter).

import { liveUrl } from "./api.js";

const CLOSE_UNAUTHORIZED = 4401;
const FINAL_CLOSES = new Set([4400, 4403, 4404]);
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;

export class LiveMeter {
  /**
   * onReading(reading): each {"type": "reading", ...} message.
   * onState(state): "connecting", "open" (readings flow), "retrying", "unauthenticated", "refused".
   */
  constructor(meterId, { onReading, onState }) {
    this.meterId = meterId;
    this.onReading = onReading;
    this.onState = onState;
    this.socket = null;
    this.stopped = false;
    this.retryMs = RETRY_MIN_MS;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this.connect();
    return this;
  }

  connect() {
    this.onState("connecting");
    const socket = new WebSocket(liveUrl(this.meterId));
    this.socket = socket;
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "watching") {
        this.retryMs = RETRY_MIN_MS;
        this.onState("open");
      } else if (message.type === "reading") {
        this.onReading(message);
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
