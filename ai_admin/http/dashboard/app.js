// The dashboard: asks for the token once, reads the queue, its named queues, batches and
// schedules through the agent's API and keeps them current from the event stream. No polling:
// the lists are read again only when an event says something changed, or when the agent says
// events were lost (`reset`).

import { Api, forgetToken, keepToken, takeToken } from "./api.js";
import { EventStream } from "./events.js";
import {
  ACTIVE, ALLOWED, OBJECT_ACTIONS, TABS, batchCard, batchFinished, detailActionButtons, el, fieldList,
  imageOf, progressBlock, queueCard, scheduleCard, statusBadge, taskRow, timeCell, typeOf,
  formatDuration,
} from "./render.js";

const $ = (id) => document.getElementById(id);
const REFRESH_DELAY_MS = 250; // events that come together cause one read of the lists
const PROGRESS_DELAY_MS = 1000; // a pull's progress reads its batch again at most once a second
const LIST_LIMIT = 200;

const state = {
  api: null,
  role: null,
  stream: null,
  tab: "active",
  queue: "", // the named queue the task list shows; "" for every queue
  rows: new Map(), // task id -> the task's view, as shown in the table
  detailId: null,
  refreshTimer: null,
  loading: null,
};

const canWrite = () => state.role === "write";

// -- token and start -----------------------------------------------------------------------

function showLogin(message) {
  $("dashboard").hidden = true;
  $("sign-out").hidden = true;
  $("role").hidden = true;
  $("login").hidden = false;
  $("login-error").hidden = !message;
  $("login-error").textContent = message || "";
  setConnection("idle", "Not connected");
  $("token-input").focus();
}

async function connect(token) {
  const api = new Api(token);
  let role;
  try {
    role = await api.role();
  } catch (error) {
    if (error.code.startsWith("AUTH_")) {
      forgetToken();
      showLogin(`The agent refused this token (${error.code}).`);
    } else {
      showLogin(`Could not reach the agent: ${error.code}: ${error.message}`);
    }
    return;
  }
  keepToken(token);
  state.api = api;
  state.role = role;
  document.body.dataset.role = role;
  for (const node of document.querySelectorAll(".write-only")) node.hidden = role !== "write";
  $("role").hidden = false;
  $("role").textContent = role === "write" ? "Operator" : "Read-only";
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("sign-out").hidden = false;
  await reloadAll();
  state.stream = new EventStream(() => state.api.headers(), onEvent, onStreamState);
  state.stream.start();
  openFromHash();
}

function signOut() {
  state.stream?.stop();
  state.stream = null;
  state.api = null;
  state.role = null;
  forgetToken();
  showLogin();
}

// -- reading the queue ---------------------------------------------------------------------

async function reloadAll() {
  await Promise.all([
    loadSummary(),
    loadTab(),
    state.detailId ? loadDetail(state.detailId) : null,
    ...Object.values(lists).map((list) => list.load()),
  ]);
}

function scheduleRefresh() {
  if (state.refreshTimer !== null) return;
  state.refreshTimer = setTimeout(async () => {
    state.refreshTimer = null;
    await Promise.all([loadSummary(), loadTab()]);
  }, REFRESH_DELAY_MS);
}

async function loadSummary() {
  let stats;
  try {
    stats = await state.api.stats();
  } catch (error) {
    return showError(error);
  }
  const byStatus = stats.distributions?.status || {};
  const count = (...names) => names.reduce((sum, name) => sum + (byStatus[name] || 0), 0);
  const values = {
    waiting: stats.summary.queue_size,
    running: stats.summary.running,
    completed: count("completed"),
    failed: count("failed", "timeout", "cancelled"),
    merged: count("merged"),
    total: stats.summary.total_tasks,
  };
  for (const [name, value] of Object.entries(values)) {
    document.querySelector(`[data-card="${name}"] [data-value]`).textContent = String(value);
  }
  const paused = stats.queue?.paused;
  $("queue-state").textContent = paused ? "Queue: ‖ paused (nothing new starts)" : "Queue: ▶ running";
  $("queue-state").dataset.paused = String(Boolean(paused));
  $("queue-pause").hidden = Boolean(paused);
  $("queue-resume").hidden = !paused;
}

async function loadTab() {
  const tab = state.tab;
  const load = state.api.tasks(TABS[tab], LIST_LIMIT, state.queue);
  state.loading = load;
  let listed;
  try {
    listed = await load;
  } catch (error) {
    return showError(error);
  }
  if (state.loading !== load || state.tab !== tab) return; // a newer read is on its way
  let tasks = listed.tasks;
  if (tab === "active") tasks = activeOrder(tasks);
  state.rows = new Map(tasks.map((task) => [task.id, task]));
  const body = $("task-rows");
  body.replaceChildren(...tasks.map((task) => taskRow(task, canWrite())));
  $("empty").hidden = tasks.length > 0;
}

/** Running tasks first, then waiting ones in the order they will start, then paused ones. */
function activeOrder(tasks) {
  const rank = (t) => (ACTIVE.includes(t.status) ? 0 : t.status === "pending" ? 1 : 2);
  return [...tasks].sort((a, b) => rank(a) - rank(b) || (a.queue_position ?? 1e9) - (b.queue_position ?? 1e9));
}

// -- live updates --------------------------------------------------------------------------

function onStreamState(stateName, resumed) {
  if (stateName === "live") {
    setConnection("live", "● Live");
    if (!resumed) reloadAll();
  }
  else if (stateName === "reconnecting") setConnection("reconnecting", "○ Reconnecting…");
  else if (stateName === "denied") setConnection("denied", "✖ The agent refused the event stream");
}

function setConnection(name, text) {
  const node = $("connection");
  node.dataset.state = name;
  node.textContent = text;
}

function onEvent(kind, data) {
  if (kind === "reset") {
    reloadAll(); // the agent no longer has the events we missed (it restarted, or we were away too long)
    return;
  }
  if (data.subject === "batch") return lists.batch.refreshSoon(); // its line moves too
  if (data.subject === "schedule") return lists.schedule.refreshSoon();
  if (data.subject === "queue") { // made, configured, paused, resumed or deleted
    if (data.subject_id === "default") loadSummary(); // the bar above shows its pause
    return lists.queue.refreshSoon();
  }
  if (!data.task_id) return; // other things that are not tasks
  onObjectsTaskEvent(kind, data);
  const row = state.rows.get(data.task_id);
  if (row) {
    const statusChanged = row.status !== data.status;
    Object.assign(row, {
      status: data.status,
      progress: data.progress,
      current_step: data.current_step,
      error_code: data.error_code,
      progress_detail: data.progress_detail,
    });
    if (statusChanged && !TABS[state.tab].includes(data.status)) {
      scheduleRefresh(); // it leaves this tab: the counts and lists move together
    } else {
      replaceRow(row);
    }
  }
  if (kind === "status" || (kind === "snapshot" && !row)) scheduleRefresh();
  if (data.task_id === state.detailId) updateDetail(kind, data);
}

function replaceRow(task) {
  const old = document.querySelector(`tr[data-task-id="${CSS.escape(task.id)}"]`);
  if (old) old.replaceWith(taskRow(task, canWrite()));
}

// -- named queues, batches and schedules --------------------------------------------------

/** One list of the agent's objects (named queues, batches or schedules), read whole from the
 * API and drawn as cards: read again soon after an event says it changed (once for several
 * events), after one of its own actions, and whenever the page reads everything again. */
class ObjectList {
  constructor(kind, listId, emptyId, spec) {
    this.kind = kind;
    this.list = $(listId);
    this.empty = $(emptyId);
    Object.assign(this, spec); // read(), idOf(item), card(item, canWrite), run(id, op), question(item, op)
    this.items = [];
    this.timer = null;
    this.loading = null;
    this.list.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-op]");
      if (button) this.act(button.dataset.id, button.dataset.op);
    });
  }

  refreshSoon(delayMs = REFRESH_DELAY_MS) {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.load();
    }, delayMs);
  }

  async load() {
    const read = this.read();
    this.loading = read;
    let items;
    try {
      items = await read;
    } catch (error) {
      return showError(error);
    }
    if (this.loading !== read) return; // a newer read is on its way: it draws the list
    this.items = items;
    this.list.replaceChildren(...items.map((item) => this.card(item, canWrite())));
    this.empty.hidden = items.length > 0;
    this.loaded?.(items);
  }

  /** Draw one object again, as the agent now shows it (read by the caller). */
  redraw(item) {
    const id = this.idOf(item);
    const index = this.items.findIndex((old) => this.idOf(old) === id);
    if (index < 0) return;
    this.items[index] = item;
    const cards = [...this.list.children];
    cards[index]?.replaceWith(this.card(item, canWrite()));
  }

  async act(id, op) {
    const item = this.items.find((one) => this.idOf(one) === id);
    if (!item || !canWrite() || !OBJECT_ACTIONS[this.kind](item).includes(op)) return;
    const question = this.question(item, op);
    if (question && !(await confirmAction(question))) return;
    try {
      await this.run(id, op);
      showNotice(`${this.kind[0].toUpperCase() + this.kind.slice(1)} ${this.nameOf(item)}: ${op} done.`);
    } catch (error) {
      showError(error);
    }
    await this.load();
  }
}

const batchTasks = new Map(); // task id -> the unfinished batch it belongs to
const scheduledTasks = new Set(); // the tasks whose outcome the schedules show
const staleBatches = new Set(); // batches to read again, one by one
let staleTimer = null;

const lists = {
  queue: new ObjectList("queue", "queue-list", "queues-empty", {
    read: async () => (await state.api.queues()).queues,
    idOf: (queue) => queue.name,
    nameOf: (queue) => queue.name,
    card: queueCard,
    question: () => null, // a paused queue only holds new starts: nothing is lost
    async run(name, op) {
      await state.api.queueAction(name, op);
      loadSummary(); // the bar above shows the default queue's pause
    },
    loaded: (queues) => fillQueueChoice(queues.map((queue) => queue.name)),
  }),
  batch: new ObjectList("batch", "batch-list", "batches-empty", {
    read: async () => (await state.api.batches()).batches,
    idOf: (batch) => batch.batch_id,
    nameOf: (batch) => batch.name || batch.batch_id,
    card: batchCard,
    question(batch, op) {
      const name = batch.name || batch.batch_id;
      if (op === "cancel") return `Cancel batch ${name}? Its unfinished tasks are cancelled; running ones are stopped.`;
      if (op !== "remove") return null;
      return batchFinished(batch)
        ? `Remove batch ${name} from the list? The history of its tasks stays.`
        : `Remove batch ${name}? Its unfinished tasks are cancelled; their history stays.`;
    },
    run: (batchId, op) => state.api.batchAction(batchId, op),
    loaded(batches) {
      batchTasks.clear();
      for (const batch of batches.filter((one) => !batchFinished(one))) {
        for (const taskId of batch.task_ids) batchTasks.set(taskId, batch.batch_id);
      }
    },
  }),
  schedule: new ObjectList("schedule", "schedule-list", "schedules-empty", {
    read: async () => (await state.api.schedules()).schedules,
    idOf: (schedule) => schedule.schedule_id,
    nameOf: (schedule) => schedule.name,
    card: scheduleCard,
    question: (schedule, op) => (op === "delete"
      ? `Delete schedule ${schedule.name}? It fires no more; the tasks it submitted stay.`
      : null),
    run: (scheduleId, op) => state.api.scheduleAction(scheduleId, op),
    loaded(schedules) {
      scheduledTasks.clear();
      for (const schedule of schedules) {
        if (schedule.last_task_id) scheduledTasks.add(schedule.last_task_id);
        if (schedule.last_outcome?.merged_into) scheduledTasks.add(schedule.last_outcome.merged_into);
      }
    },
  }),
};

/** A task changed: its queue's counts, its batch's counts and progress, or the outcome a
 * schedule shows may have changed with it. */
function onObjectsTaskEvent(kind, data) {
  if (kind === "status") lists.queue.refreshSoon();
  if (kind === "status" && scheduledTasks.has(data.task_id)) lists.schedule.refreshSoon();
  const batchId = batchTasks.get(data.task_id);
  if (batchId === undefined || (kind !== "status" && kind !== "progress")) return;
  staleBatches.add(batchId);
  if (staleTimer === null) {
    staleTimer = setTimeout(readStaleBatches, kind === "progress" ? PROGRESS_DELAY_MS : REFRESH_DELAY_MS);
  }
}

/** Read the batches whose tasks changed, each alone, and draw them again. */
async function readStaleBatches() {
  staleTimer = null;
  const ids = [...staleBatches];
  staleBatches.clear();
  const listed = lists.batch.loading;
  const read = await Promise.allSettled(ids.map((id) => state.api.batch(id)));
  if (lists.batch.loading !== listed) return; // the whole list was read meanwhile
  for (const result of read) {
    if (result.status === "fulfilled") lists.batch.redraw(result.value);
    else lists.batch.refreshSoon(); // removed meanwhile, or the agent is away
  }
}

// -- the task list's queue ----------------------------------------------------------------

/** The queue choice offers every named queue (and keeps one chosen that has gone, until
 * another is chosen). */
function fillQueueChoice(names) {
  const select = $("task-queue");
  const wanted = ["", ...names];
  if (state.queue && !names.includes(state.queue)) wanted.push(state.queue);
  const shown = [...select.options].map((option) => option.value);
  if (shown.join("\n") === wanted.join("\n")) return;
  select.replaceChildren(
    ...wanted.map((name) => el("option", { value: name, text: name || "every queue" })),
  );
  select.value = state.queue;
}

function chooseQueue(name, focus = false) {
  if (state.queue !== name) {
    state.queue = name;
    if (![...$("task-queue").options].some((option) => option.value === name)) {
      $("task-queue").append(el("option", { value: name, text: name }));
    }
    $("task-queue").value = name;
    $("task-rows").replaceChildren();
    loadTab();
  }
  if (focus) $("task-queue").focus();
}

// -- the detail view -----------------------------------------------------------------------

function openFromHash() {
  const match = /^#task=(.+)$/.exec(window.location.hash);
  if (match && state.api) openDetail(decodeURIComponent(match[1]));
}

async function openDetail(taskId) {
  state.detailId = taskId;
  $("detail").hidden = false;
  await loadDetail(taskId);
  $("detail").focus();
}

function closeDetail() {
  state.detailId = null;
  $("detail").hidden = true;
  if (window.location.hash.startsWith("#task=")) {
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

async function loadDetail(taskId) {
  let summary;
  try {
    summary = await state.api.task(taskId);
  } catch (error) {
    if (state.detailId === taskId) showError(error);
    return;
  }
  if (state.detailId !== taskId) return;
  renderDetail(summary);
}

function renderDetail(summary) {
  const task = summary.task || {};
  const status = summary.status.value;
  $("detail").dataset.taskId = summary.task_id;
  $("detail").dataset.status = status;
  $("detail-title").textContent = `${typeOf(summary.task_type)} ${imageOf(task)}`.trim();
  $("detail-fields").replaceChildren(
    ...fieldList([
      ["Status", el("span", {}, statusBadge(status), ` ${summary.status.description}`)],
      ["Task id", el("code", { text: summary.task_id })],
      ["Priority", summary.priority],
      ["Queue", task.queue],
      ["Position", summary.queue_position],
      ["Step", summary.current_step],
      ["Created", timeCell(summary.timing.created_at)],
      ["Started", timeCell(summary.timing.started_at)],
      ["Ended", timeCell(summary.timing.completed_at)],
      ["Duration", formatDuration(summary.timing.duration)],
      ["Retries", `${summary.retry.retry_count} of ${summary.retry.max_retries ?? 0}`],
    ]),
  );
  $("detail-progress").replaceChildren(progressBlock(summary.task_id, summary.progress, summary.progress_detail, summary.status.value));
  renderMerged(summary);
  renderError(summary.error);
  $("detail-actions").replaceChildren(...detailActionButtons(status, canWrite(), summary.task_id));
  $("detail-logs").textContent = (summary.logs || []).join("\n");
}

function renderMerged(summary) {
  const banner = $("merged-banner");
  const into = summary.merged_into;
  banner.hidden = !into;
  if (!into) return banner.replaceChildren();
  banner.replaceChildren(
    el("strong", { text: "Merged. " }),
    "This request asked for exactly what another task was already going to do, so the agent " +
      "joined it to that task instead of doing the work twice. It ended at once; the task it " +
      "joined does the work and has the outcome: ",
    el("a", { href: `#task=${encodeURIComponent(into)}`, class: "merged-link", text: `task ${into}` }),
    ".",
  );
}

function renderError(error) {
  const box = $("detail-error");
  box.hidden = !error;
  if (!error) return;
  $("detail-error-code").textContent = error.code;
  $("detail-error-message").textContent = error.message || "";
  $("detail-error-description").textContent = error.description || "";
  $("detail-suggestions").replaceChildren(...(error.suggestions || []).map((s) => el("li", { text: s })));
}

function updateDetail(kind, data) {
  if (kind === "log" && data.line !== undefined) {
    const logs = $("detail-logs");
    logs.textContent += (logs.textContent ? "\n" : "") + data.line;
    return;
  }
  if (kind === "progress") {
    $("detail-progress").replaceChildren(progressBlock(data.task_id, data.progress, data.progress_detail, data.status));
    return;
  }
  loadDetail(data.task_id); // a new status: its error, actions and timing change with it
}

// -- actions -------------------------------------------------------------------------------

function confirmAction(text) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  return new Promise((resolve) => {
    const done = (answer) => {
      $("confirm-ok").onclick = null;
      $("confirm-cancel").onclick = null;
      dialog.onclose = null;
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    $("confirm-ok").onclick = () => done(true);
    $("confirm-cancel").onclick = () => done(false);
    dialog.onclose = () => done(false);
    dialog.showModal();
    $("confirm-cancel").focus();
  });
}

async function manage(taskId, action) {
  const task = state.rows.get(taskId);
  const status = task?.status || $("detail").dataset.status;
  if (!ALLOWED[action].includes(status)) return;
  const name = task ? imageOf(task) || taskId : taskId;
  if (action === "cancel" && !(await confirmAction(`Cancel task ${name}? A running task is stopped and its work is lost.`))) return;
  if (action === "pause" && ACTIVE.includes(status) &&
      !(await confirmAction(`Pause task ${name}? It is running: it stops now and starts again from the beginning on resume.`))) return;
  try {
    if (action === "retry" && task && task.can_retry === false) {
      if (!(await confirmAction(`Task ${name} has used all its retries. Retry it anyway?`))) return;
      await state.api.command("queue_manage", { action, task_id: taskId, force: true });
    } else {
      await state.api.manage(taskId, action);
    }
    showNotice(`Task ${name}: ${action} done.`);
  } catch (error) {
    showError(error);
  }
  scheduleRefresh();
  if (taskId === state.detailId) loadDetail(taskId);
}

async function queueAction(action) {
  try {
    if (action === "clear") {
      const ok = await confirmAction(
        "Delete finished tasks from the history? Completed and merged tasks are deleted; waiting and running ones are never touched.",
      );
      if (!ok) return;
      const done = await state.api.command("queue_clear", {});
      showNotice(`Deleted ${done.deleted} finished tasks.`);
    } else {
      await state.api.command(action === "pause" ? "queue_pause" : "queue_resume", {});
      showNotice(action === "pause" ? "Queue paused: nothing new starts." : "Queue resumed.");
    }
  } catch (error) {
    showError(error);
  }
  await Promise.all([loadSummary(), loadTab(), lists.queue.load()]);
}

function formParams(form) {
  const params = {};
  for (const [key, raw] of new FormData(form).entries()) {
    const value = String(raw).trim();
    if (!value) continue;
    params[key] = key === "tags" ? value.split(",").map((t) => t.trim()).filter(Boolean) : value;
  }
  if (params.priority === "normal") delete params.priority;
  return params;
}

async function submitForm(event) {
  event.preventDefault();
  const form = event.target;
  const result = $("submit-result");
  try {
    const done = await state.api.submit(form.dataset.type, formParams(form));
    const id = done.merged_into || done.task_id;
    result.replaceChildren(
      done.merged_into ? "Merged into task " : "Submitted task ",
      el("a", { href: `#task=${encodeURIComponent(id)}`, text: id }),
      ".",
    );
    form.reset();
  } catch (error) {
    result.replaceChildren(`Refused: ${error.code}: ${error.message}`);
  }
  scheduleRefresh();
}

// -- messages ------------------------------------------------------------------------------

function showNotice(text) {
  const notice = $("notice");
  notice.className = "notice";
  notice.textContent = text;
  notice.hidden = false;
}

function showError(error) {
  const notice = $("notice");
  notice.className = "notice notice-error";
  notice.replaceChildren(
    el("strong", { text: "Error " }),
    el("code", { text: error.code }),
    `: ${error.message}`,
    ...(error.suggestions?.length ? [el("ul", {}, ...error.suggestions.map((s) => el("li", { text: s })))] : []),
  );
  notice.hidden = false;
}

// -- wiring --------------------------------------------------------------------------------

function selectTab(tab) {
  state.tab = tab;
  for (const button of document.querySelectorAll("[role=tab]")) {
    const selected = button.dataset.tab === tab;
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    if (selected) $("task-list").setAttribute("aria-labelledby", button.id);
  }
  $("task-rows").replaceChildren();
  loadTab();
}

function wire() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    $("token-input").value = "";
    if (token) connect(token);
  });
  $("sign-out").addEventListener("click", signOut);
  $("task-queue").addEventListener("change", (event) => chooseQueue(event.target.value));
  $("queue-list").addEventListener("click", (event) => {
    const link = event.target.closest("a[data-show-queue]");
    if (!link) return;
    event.preventDefault();
    chooseQueue(link.dataset.showQueue, true);
  });
  $("tabs").addEventListener("click", (event) => {
    const tab = event.target.closest("[role=tab]");
    if (tab) selectTab(tab.dataset.tab);
  });
  $("tabs").addEventListener("keydown", (event) => {
    if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
    const names = Object.keys(TABS);
    const next = names[(names.indexOf(state.tab) + (event.key === "ArrowRight" ? 1 : names.length - 1)) % names.length];
    selectTab(next);
    $(`tab-${next}`).focus();
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) manage(button.dataset.task, button.dataset.action);
  });
  $("detail-close").addEventListener("click", closeDetail);
  window.addEventListener("hashchange", openFromHash);
  $("queue-pause").addEventListener("click", () => queueAction("pause"));
  $("queue-resume").addEventListener("click", () => queueAction("resume"));
  $("queue-clear").addEventListener("click", () => queueAction("clear"));
  for (const form of document.querySelectorAll(".submit-form")) form.addEventListener("submit", submitForm);
}

wire();
const token = takeToken();
if (token) connect(token);
else showLogin();
