// Building the page's parts from the agent's task views: plain DOM, text set as text (never
// as HTML), so nothing a task carries can become markup.

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
