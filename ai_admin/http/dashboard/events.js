// The agent's event stream (GET /api/events) read with fetch, because EventSource cannot send
// the Authorization header. Frames are parsed as server-sent events; after a dropped
// connection the stream is opened again after the agent's `retry:` delay with Last-Event-ID,
// so the agent sends what was missed, or a `reset` event when it no longer has it.

const DEFAULT_RETRY_MS = 2000;

/** Parse server-sent-event frames out of a growing text buffer; returns what is left over. */
export function parseFrames(buffer, onFrame) {
  const normalized = buffer.replace(/\r\n?/g, "\n");
  const blocks = normalized.split("\n\n");
  const rest = blocks.pop();
  for (const block of blocks) {
    const frame = { id: null, event: "message", data: [], retry: null };
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "id") frame.id = value;
      else if (field === "event") frame.event = value;
      else if (field === "data") frame.data.push(value);
      else if (field === "retry" && /^\d+$/.test(value)) frame.retry = Number(value);
    }
    onFrame(frame);
  }
  return rest;
}

export class EventStream {
  /**
   * @param {() => Record<string, string>} headers the request's headers (the bearer token)
   * @param {(event: string, data: object) => void} onEvent each event, in order
   * @param {(state: string, resumed?: boolean) => void} onState "live" (resumed: after the
   *   last event seen, so the agent sends what was missed), "reconnecting", "denied"
   */
  constructor(headers, onEvent, onState) {
    this.headers = headers;
    this.onEvent = onEvent;
    this.onState = onState;
    this.lastEventId = null;
    this.retryMs = DEFAULT_RETRY_MS;
    this.stopped = false;
    this.controller = null;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.controller?.abort();
  }

  async open() {
    if (this.stopped) return;
    this.controller = new AbortController();
    const headers = { ...this.headers(), Accept: "text/event-stream" };
    if (this.lastEventId !== null) headers["Last-Event-ID"] = this.lastEventId;
    try {
      const response = await fetch("/api/events", {
        headers,
        cache: "no-store",
        signal: this.controller.signal,
      });
      if (response.status === 401 || response.status === 403) {
        this.onState("denied");
        return; // a token the agent refuses will not become valid by asking again
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      // Without an id to resume from, what happened before this stream is unknown: the
      // page reads the state again once the stream is open, so nothing falls in between.
      this.onState("live", headers["Last-Event-ID"] !== undefined);
      await this.read(response.body);
    } catch (error) {
      if (this.stopped) return;
    }
    this.again();
  }

  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer = parseFrames(buffer + value, (frame) => this.dispatch(frame));
    }
  }

  dispatch(frame) {
    if (frame.retry !== null) this.retryMs = frame.retry;
    if (frame.id !== null) this.lastEventId = frame.id;
    if (!frame.data.length) return;
    let data;
    try {
      data = JSON.parse(frame.data.join("\n"));
    } catch {
      return;
    }
    this.onEvent(frame.event, data);
  }

  /** The stream ended or broke: open it again after the agent's retry delay. */
  again() {
    if (this.stopped) return;
    this.onState("reconnecting");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), this.retryMs);
  }
}
