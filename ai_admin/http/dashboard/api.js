// The agent's API as the page uses it: every request carries the bearer token, every answer
// is the agent's envelope ({success, action, data} or {success: false, error}).

const TOKEN_KEY = "ai-admin-token";

/** The token: from the URL fragment (#token=...), which is then removed from the address bar
 * and the history, else from this tab's sessionStorage. Null when there is none. */
export function takeToken() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const given = fragment.get("token");
  if (given) {
    sessionStorage.setItem(TOKEN_KEY, given);
    history.replaceState(null, "", window.location.pathname + window.location.search);
    return given;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export function keepToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** A failed answer, as the agent told it: code, message and suggestions. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.code || "HTTP_" + status;
    this.suggestions = error?.suggestions || [];
  }
}

export class Api {
  constructor(token) {
    this.token = token;
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.token}`, Accept: "application/json", ...extra };
  }

  /** One request; resolves to the envelope's data, rejects with an ApiError. */
  async request(method, path, body) {
    const init = { method, headers: this.headers(), cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (cause) {
      throw new ApiError(0, { code: "AGENT_UNREACHABLE", message: "The agent does not answer." });
    }
    let envelope = null;
    try {
      envelope = await response.json();
    } catch {
      envelope = null;
    }
    if (!envelope || envelope.success !== true) {
      throw new ApiError(response.status, envelope?.error);
    }
    return envelope.data;
  }

  /** Run one command message through POST /cmd. */
  command(action, params = {}) {
    return this.request("POST", "/cmd", { action, params });
  }

  stats() {
    return this.request("GET", "/api/stats");
  }

  /** Tasks in any of `statuses`, newest first; of one named queue when `queue` is given. */
  tasks(statuses, limit = 100, queue = null) {
    const query = new URLSearchParams({ limit: String(limit) });
    for (const status of statuses) query.append("status", status);
    if (queue) query.set("queue", queue);
    return this.request("GET", `/api/tasks?${query}`);
  }

  task(taskId) {
    const query = new URLSearchParams({ include_logs: "true", detailed: "true" });
    return this.request("GET", `/api/tasks/${encodeURIComponent(taskId)}?${query}`);
  }

  manage(taskId, action) {
    return this.request("POST", `/api/tasks/${encodeURIComponent(taskId)}/${action}`);
  }

  submit(taskType, params) {
    return this.request("POST", "/api/tasks", { task_type: taskType, params });
  }

  /** Every named queue with its limits, pause state and counts (queue_list). */
  queues() {
    return this.request("GET", "/api/queues");
  }

  /** pause or resume one named queue. */
  queueAction(name, action) {
    return this.request("POST", `/api/queues/${encodeURIComponent(name)}/${action}`);
  }

  /** Every batch, newest first (batch_list). */
  batches() {
    return this.request("GET", "/api/batches");
  }

  batch(batchId) {
    return this.request("GET", `/api/batches/${encodeURIComponent(batchId)}`);
  }

  /** stop, start or cancel a batch (POST .../{action}); remove is DELETE of the batch. */
  batchAction(batchId, action) {
    const path = `/api/batches/${encodeURIComponent(batchId)}`;
    return action === "remove" ? this.request("DELETE", path) : this.request("POST", `${path}/${action}`);
  }

  /** Every schedule with its next and last run (schedule_list). */
  schedules() {
    return this.request("GET", "/api/schedules");
  }

  /** pause or resume a schedule (POST .../{action}); delete is DELETE of the schedule. */
  scheduleAction(scheduleId, action) {
    const path = `/api/schedules/${encodeURIComponent(scheduleId)}`;
    return action === "delete" ? this.request("DELETE", path) : this.request("POST", `${path}/${action}`);
  }

  /** "write" for the operator token, "read" for a read-only one. queue_configure with no
   * params only shows the settings; a read-only token is refused it (AUTH_FORBIDDEN) before
   * anything runs, so this changes nothing either way. */
  async role() {
    try {
      await this.command("queue_configure", {});
      return "write";
    } catch (error) {
      if (error.code === "AUTH_FORBIDDEN") return "read";
      throw error;
    }
  }
}
