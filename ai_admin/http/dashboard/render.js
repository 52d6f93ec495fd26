// Building the page's parts from the agent's views of tasks, named queues, batches and
// schedules: plain DOM, text set as text (never as HTML), so nothing they carry can become
// markup.

export const ACTIVE = ["running", "validating", "preparing", "uploading", "downloading", "building", "pulling"];
export const TABS = {
  active: ["pending", "paused", ...ACTIVE],
  completed: ["completed"],
  failed: ["failed", "cancelled", "timeout"],
  merged: ["merged"],
};

// The agent's state machine (ai_admin/queue/states.py): from which statuses each action may go.
const PAUSABLE = ["pending", ...ACTIVE];
export const ALLOWED = {
  pause: PAUSABLE,
  resume: ["paused"],
  retry: ["failed", "cancelled", "timeout"],
  cancel: [...PAUSABLE, "paused"],
};

// A symbol and a word for every status: the state never rests on colour alone.
const ICONS = {
  pending: "◷", paused: "‖", running: "▶", validating: "▶", preparing: "▶", uploading: "⇡",
  downloading: "⇣", building: "⚒", pulling: "⇣", completed: "✔", failed: "✖", cancelled: "⊘",
  timeout: "⌛", merged: "⇄",
  // batches, schedules
  queued: "◷", stopped: "■", active: "▶", done: "✔",
};

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

/** Unix seconds as a <time>: the local time shown, the full moment in its datetime. */
export function timeCell(unixSeconds) {
  if (!unixSeconds) return "";
  const date = new Date(unixSeconds * 1000);
  return el("time", { dateTime: date.toISOString(), title: date.toLocaleString() }, date.toLocaleTimeString());
}

export function statusBadge(status) {
  return el(
    "span",
    { class: `status status-${status}`, "data-status": status },
    el("span", { class: "status-icon", "aria-hidden": "true", text: ICONS[status] || "•" }),
    el("span", { class: "status-word", text: status }),
  );
}

/** What a task works on: the image (with its tag), or a build's tags or context. */
export function imageOf(task) {
  const p = task.params || {};
  if (p.image_name) return p.tag ? `${p.image_name}:${p.tag}` : p.image_name;
  if (Array.isArray(p.tags) && p.tags.length) return p.tags.join(", ");
  if (p.context_path) return p.context_path;
  return p.dockerfile ? "(Dockerfile text)" : "";
}

export function typeOf(taskType) {
  return String(taskType || "").replace(/^docker_/, "");
}

/** The progress bar, with bytes done of the total, and while the task runs its rate, time
 * left and phase, when the agent knows them. */
export function progressBlock(taskId, progress, detail, status) {
  const percent = Math.max(0, Math.min(100, Number(progress) || 0));
  const parts = [`${Math.floor(percent)}%`];
  if (detail) {
    if (detail.bytes_done !== null && detail.bytes_done !== undefined) {
      parts.push(detail.bytes_total ? `${formatBytes(detail.bytes_done)} / ${formatBytes(detail.bytes_total)}` : formatBytes(detail.bytes_done));
    }
    if (ACTIVE.includes(status)) {
      if (detail.rate_bps) parts.push(`${formatBytes(detail.rate_bps)}/s`);
      if (detail.eta_s !== null && detail.eta_s !== undefined) parts.push(`ETA ${formatDuration(detail.eta_s)}`);
      if (detail.phase) parts.push(detail.phase);
    }
  }
  return el(
    "div",
    { class: "progress" },
    el("progress", { max: 100, value: percent, "aria-label": `Progress of task ${taskId}` }),
    el("span", { class: "progress-text", text: parts.join(" · ") }),
  );
}

export function allowedActions(status) {
  return Object.keys(ALLOWED).filter((action) => ALLOWED[action].includes(status));
}

function actionButtons(task, canWrite) {
  if (!canWrite) return [];
  return allowedActions(task.status).map((action) =>
    el("button", {
      type: "button",
      class: action === "cancel" ? "danger small" : "small",
      "data-action": action,
      "data-task": task.id,
      text: action[0].toUpperCase() + action.slice(1),
      "aria-label": `${action} task ${task.id}`,
    }),
  );
}

/** One table row: every cell labelled for the narrow layout, where rows become cards. */
export function taskRow(task, canWrite) {
  const cell = (label, ...content) => el("td", { "data-label": label }, ...content);
  const link = el("a", { href: `#task=${encodeURIComponent(task.id)}`, class: "task-link", title: task.id }, imageOf(task) || task.id.slice(0, 8));
  return el(
    "tr",
    { "data-task-id": task.id, "data-status": task.status },
    cell("Status", statusBadge(task.status)),
    cell("Type", typeOf(task.task_type)),
    cell("Image", link),
    cell("Priority", task.priority),
    cell("Queue", task.queue || ""),
    cell("Position", task.queue_position ?? ""),
    cell("Progress", progressBlock(task.id, task.progress, task.progress_detail, task.status)),
    cell("Step", task.current_step || ""),
    cell("Started", timeCell(task.started_at)),
    cell("Ended", timeCell(task.completed_at)),
    cell("Error", task.error_code ? el("code", { class: "error-code", text: task.error_code }) : ""),
    el("td", { "data-label": "Actions" }, el("div", { class: "row-actions" }, ...actionButtons(task, canWrite))),
  );
}

/** The detail view's fields: name -> value (text or a node). */
export function fieldList(pairs) {
  const nodes = [];
  for (const [name, value] of pairs) {
    if (value === "" || value === null || value === undefined) continue;
    nodes.push(el("dt", { text: name }), el("dd", {}, value));
  }
  return nodes;
}

export function detailActionButtons(status, canWrite, taskId) {
  return actionButtons({ status, id: taskId }, canWrite);
}

// -- named queues, batches and schedules: one card each --------------------------------------

const FINISHED_BATCH = ["completed", "failed", "cancelled"];

// The agent's rules (ai_admin/queue/batch_control.py): from which batch states each action may go.
export const BATCH_ALLOWED = {
  stop: ["queued", "running"],
  start: ["stopped"],
  cancel: ["queued", "running", "stopped"],
  remove: ["queued", "stopped", ...FINISHED_BATCH],
};

export const batchFinished = (batch) => FINISHED_BATCH.includes(batch.state);

/** The actions each kind of object allows in its present state. */
export const OBJECT_ACTIONS = {
  queue: (queue) => (queue.paused ? ["resume"] : ["pause"]),
  batch: (batch) => Object.keys(BATCH_ALLOWED).filter((op) => BATCH_ALLOWED[op].includes(batch.state)),
  schedule: (schedule) => (schedule.paused ? ["resume", "delete"] : schedule.done ? ["delete"] : ["pause", "delete"]),
};
const DANGEROUS = ["cancel", "remove", "delete"];

/** The buttons of one object (none for a read-only token): data-op names the action,
 * data-id the object. */
function objectButtons(kind, id, name, item, canWrite) {
  if (!canWrite) return [];
  return OBJECT_ACTIONS[kind](item).map((op) =>
    el("button", {
      type: "button",
      class: DANGEROUS.includes(op) ? "danger small" : "small",
      "data-op": op,
      "data-id": id,
      text: op[0].toUpperCase() + op.slice(1),
      "aria-label": `${op} ${kind} ${name}`,
    }),
  );
}

/** Unix seconds as a <time>: the time of day when it is today, else the date too. */
function momentCell(unixSeconds) {
  if (!unixSeconds) return "";
  const date = new Date(unixSeconds * 1000);
  const today = date.toDateString() === new Date().toDateString();
  const shown = today ? date.toLocaleTimeString() : date.toLocaleString();
  return el("time", { dateTime: date.toISOString(), title: date.toLocaleString() }, shown);
}

/** name, field, value triples as a <dl>; each value carries data-field (its key in the API). */
function facts(triples) {
  const list = el("dl", { class: "facts" });
  for (const [name, field, value] of triples) {
    if (value === "" || value === null || value === undefined) continue;
    list.append(el("dt", { text: name }), el("dd", { "data-field": field }, value));
  }
  return list;
}

function objectCard(attrs, title, state, triples, ...rest) {
  return el(
    "li",
    { class: "object", ...attrs },
    el("div", { class: "object-head" }, el("h3", { class: "object-name", text: title }), statusBadge(state)),
    facts(triples),
    ...rest,
  );
}

function taskLink(taskId) {
  if (!taskId) return "";
  return el("a", { href: `#task=${encodeURIComponent(taskId)}`, class: "task-link", title: taskId, text: taskId });
}

/** A named queue: its limits ("own" where it sets one itself rather than taking the agent's),
 * its counts, pause or resume, and a link that shows its tasks in the task list. */
export function queueCard(queue, canWrite) {
  const limits = queue.limits || {};
  const own = new Set(queue.own_limits || []);
  const limit = (key, text) => (own.has(key) ? `${text} (own)` : text);
  return objectCard(
    { "data-queue": queue.name, "data-paused": String(Boolean(queue.paused)) },
    queue.name,
    queue.paused ? "paused" : "running",
    [
      ["Running", "running", `${queue.running} of ${limit("max_concurrent", String(limits.max_concurrent))}`],
      ["Waiting", "waiting", `${queue.waiting} of ${limit("max_queue_size", String(limits.max_queue_size))}`],
      ["Timeout", "default_timeout_s", limit("default_timeout_s", formatDuration(limits.default_timeout_s))],
      ["Retries", "max_retries", limit("max_retries", String(limits.max_retries))],
    ],
    el(
      "div",
      { class: "row-actions object-actions" },
      ...objectButtons("queue", queue.name, queue.name, queue, canWrite),
      el("a", { href: "#tasks-title", class: "show-tasks", "data-show-queue": queue.name, text: "Show its tasks" }),
    ),
  );
}

/** A batch: its queue, place in line, tasks by status, one progress bar and its actions. */
export function batchCard(batch, canWrite) {
  const name = batch.name || batch.batch_id;
  const counts = Object.entries(batch.counts || {}).map(([status, n]) => `${n} ${status}`).join(" · ");
  const position = batch.position === null || batch.position === undefined
    ? ""
    : batch.position === 1 ? "1 (runs next)" : String(batch.position);
  return objectCard(
    { "data-batch-id": batch.batch_id, "data-state": batch.state },
    batch.name || "(no name)",
    batch.state,
    [
      ["Queue", "queue", batch.queue],
      ["In line", "position", position],
      ["Order", "serial", batch.serial ? "serial: one batch at a time" : "beside the line"],
      ["Tasks", "counts", `${batch.task_ids.length}: ${counts}`],
      ["Created", "created_at", momentCell(batch.created_at)],
      ["Started", "started_at", momentCell(batch.started_at)],
      ["Finished", "finished_at", momentCell(batch.finished_at)],
      ["Batch id", "batch_id", el("code", { text: batch.batch_id })],
    ],
    el(
      "div",
      { class: "progress" },
      el("progress", { max: 100, value: clampPercent(batch.progress), "aria-label": `Progress of batch ${name}` }),
      el("span", { class: "progress-text", text: `${Math.floor(clampPercent(batch.progress))}%` }),
    ),
    el("div", { class: "row-actions object-actions" }, ...objectButtons("batch", batch.batch_id, name, batch, canWrite)),
  );
}

function clampPercent(value) {
  return Math.max(0, Math.min(100, Number(value) || 0));
}

/** A schedule: when it fires, what it submits, its next and last run, the last task (a link to
 * its detail) with its outcome, runs, missed firings and its actions. */
export function scheduleCard(schedule, canWrite) {
  const state = schedule.paused ? "paused" : schedule.done ? "done" : "active";
  const last = schedule.last_outcome;
  const command = schedule.command || {};
  return objectCard(
    { "data-schedule-id": schedule.schedule_id, "data-state": state },
    schedule.name,
    state,
    [
      ["Fires", "trigger", triggerText(schedule)],
      ["Submits", "command", `${typeOf(command.action)} ${imageOf({ params: command.params })}`.trim()],
      ["Next run", "next_run_at", schedule.next_run_at ? momentCell(schedule.next_run_at) : "none"],
      ["Last run", "last_run_at", momentCell(schedule.last_run_at)],
      ["Last task", "last_task_id", taskLink(schedule.last_task_id)],
      ["Outcome", "last_outcome", last ? el(
        "span",
        {},
        statusBadge(last.status),
        ...(last.error_code ? [" ", el("code", { class: "error-code", text: last.error_code })] : []),
        ...(last.merged_into ? [" into ", taskLink(last.merged_into)] : []),
      ) : ""],
      ["Runs", "runs", String(schedule.runs)],
      ["Missed", "missed", String(schedule.missed)],
      ["Last error", "last_error", schedule.last_error ? el(
        "span",
        {},
        el("code", { class: "error-code", text: schedule.last_error.code }),
        ` ${schedule.last_error.message}`,
      ) : ""],
      ["Schedule id", "schedule_id", el("code", { text: schedule.schedule_id })],
    ],
    el("div", { class: "row-actions object-actions" }, ...objectButtons("schedule", schedule.schedule_id, schedule.name, schedule, canWrite)),
  );
}

function triggerText(schedule) {
  const zone = schedule.timezone || "UTC";
  if (schedule.cron) return `cron ${schedule.cron} (${zone})`;
  if (schedule.interval_s) return `every ${formatDuration(schedule.interval_s)}`;
  if (schedule.at) return `once, at ${schedule.at} (${zone})`;
  return "";
}
