// The runs view (/ui): start a run from a form built from the graph's inputs, the reviews waiting for a decision,
// and the user's runs of every graph, newest first, filterable by status. The list is composed from the per-graph
// listings (GET /graphs/{id}/executions); duration and cost come from each run's report.

import { api } from "./api.js";
import { ENDED, badge, clear, dollars, h, message, pretty, seconds, when } from "./dom.js";

const STATUSES = ["RUNNING", "QUEUED", "REVIEW", "INCOMPLETE", "COMPLETED", "FAILED", "TERMINATED"];
const PER_GRAPH = 20; // runs listed per graph
const DETAILED = 50; // runs whose report is read for duration and cost
const REFRESH_MS = 2500; // while a listed run is unfinished
const reports = new Map(); // execution id -> report of an ended run (it no longer changes)

export async function showRuns(view, ctx) {
  const filter = h("select", { id: "status-filter", "aria-label": "status" }, h("option", { value: "" }, "all"));
  for (const status of STATUSES) filter.append(h("option", { value: status }, status));
  const body = h("tbody", { id: "runs-body" });
  const empty = h("p", { id: "runs-empty", class: "muted", hidden: true }, "No runs to show.");
  const reviews = h("div", { id: "reviews" });
  const start = h("section", { class: "panel", id: "start" });
  clear(view).append(
    h("h1", {}, "Runs"),
    start,
    reviews,
    h(
      "section",
      { class: "panel", id: "runs" },
      h("div", { class: "row" }, h("h2", {}, "Your runs"), h("label", {}, "Status ", filter)),
      h(
        "table",
        { id: "runs-table" },
        h("thead", {}, h("tr", {}, ["Graph", "Status", "Started", "Duration", "Cost", "Run"].map((t) => h("th", {}, t)))),
        body,
      ),
      empty,
    ),
  );
  const graphs = (await api.graphs()).graphs;
  if (!ctx.alive()) return;
  startForm(start, graphs, ctx);
  const state = { runs: [], names: new Map(graphs.map((g) => [g.graph_id, g.name])) };
  const render = () => renderRows(body, empty, state, filter.value, ctx);
  filter.addEventListener("change", render);

  const refresh = async () => {
    if (!ctx.alive()) return;
    try {
      await Promise.all([loadRuns(state, graphs), showReviews(reviews, ctx, refresh)]);
    } catch (error) {
      ctx.failed(error);
      return;
    }
    if (!ctx.alive()) return;
    render();
    if (state.runs.some((r) => !ENDED.has(r.status))) ctx.later(refresh, REFRESH_MS);
  };
  await refresh();
}

async function loadRuns(state, graphs) {
  const pages = await Promise.all(graphs.map((g) => api.runsOf(g.graph_id, PER_GRAPH)));
  const runs = pages.flatMap((p) => p.executions);
  runs.sort((a, b) => String(b.created_at || "").localeCompare(String(a.created_at || "")));
  await Promise.all(
    runs.slice(0, DETAILED).map(async (run) => {
      if (reports.has(run.execution_id)) return;
      const report = await api.run(run.execution_id);
      run.report = report;
      if (ENDED.has(report.status)) reports.set(run.execution_id, report);
    }),
  );
  for (const run of runs) run.report = run.report || reports.get(run.execution_id);
  state.runs = runs;
}

function renderRows(body, empty, state, status, ctx) {
  const shown = state.runs.filter((r) => !status || r.status === status);
  body.replaceChildren(
    ...shown.map((run) => {
      const stats = run.report ? run.report.stats : null;
      const link = h("a", { href: `ui/runs/${encodeURIComponent(run.execution_id)}`, "data-nav": true }, "open");
      const row = h(
        "tr",
        { class: "run-row", "data-execution-id": run.execution_id, "data-status": run.status },
        h("td", {}, state.names.get(run.graph_id) || run.graph_id, h("span", { class: "muted" }, ` v${run.graph_version}`)),
        h("td", {}, badge(run.status)),
        h("td", {}, when(run.created_at)),
        h("td", {}, stats ? seconds(stats.duration_s) : "–"),
        h("td", {}, stats ? dollars(stats.llm_cost_usd) : "–"),
        h("td", {}, link, " ", h("code", { class: "muted" }, run.execution_id.slice(0, 8))),
      );
      row.addEventListener("click", (event) => {
        if (event.target.closest("a")) return;
        ctx.navigate(`ui/runs/${encodeURIComponent(run.execution_id)}`);
      });
      return row;
    }),
  );
  empty.hidden = shown.length > 0;
}

// -- the start form: one field per graph input (AgentInputBlock nodes name them)

function startForm(section, graphs, ctx) {
  const select = h("select", { id: "start-graph", name: "graph" });
  for (const g of graphs) select.append(h("option", { value: g.graph_id }, g.name));
  const fields = h("div", { id: "start-inputs", class: "fields" });
  const problem = h("p", { id: "start-error", class: "error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", id: "start-button" }, "Start run");
  const form = h("form", { id: "start-form" }, h("label", {}, "Graph ", select), fields, button, problem);
  section.replaceChildren(h("h2", {}, "Start a run"));
  if (!graphs.length) {
    section.append(h("p", { class: "muted" }, "You have no graphs yet: create one with POST /graphs."));
    return;
  }
  section.append(form, h("p", { class: "muted hint" }, "Values are read as JSON when they parse as JSON, else as text."));
  let inputs = [];
  let asked = null; // the graph whose fields are shown or on their way: never rebuilt under the person typing
  const load = async () => {
    const graphId = select.value;
    if (graphId === asked) return;
    asked = graphId;
    problem.hidden = true;
    const graph = await api.graph(graphId);
    if (select.value !== graphId || !ctx.alive()) return; // another graph was chosen meanwhile
    inputs = inputNodes(graph);
    fields.replaceChildren(...inputs.map(inputField));
    fields.dataset.graphId = graphId;
  };
  select.addEventListener("change", () => load().catch(ctx.failed));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      const started = await api.start(select.value, collect(inputs));
      ctx.navigate(`ui/runs/${encodeURIComponent(started.execution_id)}`);
    } catch (error) {
      if (error.status === 401) return ctx.failed(error);
      problem.textContent = describe(error);
      problem.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  load().catch(ctx.failed);
}

function inputNodes(graph) {
  const names = new Set(graph.input_names);
  const required = new Set(graph.required_inputs);
  const seen = new Set();
  const found = [];
  for (const node of graph.graph.nodes) {
    const defaults = node.input_default || {};
    if (!names.has(defaults.name) || seen.has(defaults.name)) continue;
    seen.add(defaults.name);
    const textual = /Text|String/.test(String(node.block_id)) || typeof defaults.value === "string";
    found.push({ name: defaults.name, defaults, textual, required: required.has(defaults.name) });
  }
  return found;
}

function inputField(input) {
  const value = input.defaults.value === undefined ? "" : pretty(input.defaults.value);
  const attrs = { name: input.name, "data-input-name": input.name, required: input.required };
  const control = input.defaults.secret
    ? h("input", { ...attrs, type: "password", autocomplete: "off" })
    : h("textarea", { ...attrs, rows: value.includes("\n") ? 4 : 1 });
  if (!input.defaults.secret) control.value = value;
  input.control = control;
  return h(
    "label",
    { class: "field" },
    h("span", {}, input.name, input.required ? " *" : ""),
    control,
    input.defaults.description ? h("small", { class: "muted" }, input.defaults.description) : null,
  );
}

function collect(inputs) {
  const values = {};
  for (const input of inputs) {
    const raw = input.control.value;
    if (raw === "" && !input.required) continue;
    values[input.name] = input.textual ? raw : parseLoose(raw);
  }
  return values;
}

function parseLoose(raw) {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

export function describe(error) {
  const details = Array.isArray(error.details)
    ? error.details.map((d) => [d.node_id, d.pin || d.field, d.message].filter(Boolean).join(": ")).join("; ")
    : "";
  return details ? `${error.message} (${details})` : error.message;
}

// -- reviews waiting for a decision (GET /reviews), here and on a run's page

export async function showReviews(container, ctx, after, executionId) {
  const all = (await api.reviews()).reviews;
  const reviews = executionId ? all.filter((r) => r.execution_id === executionId) : all;
  if (!ctx.alive()) return;
  const ids = reviews.map((r) => r.id).join(" ");
  if (container.dataset.ids === ids) return; // the same reviews: keep what the reader typed
  container.dataset.ids = ids;
  if (!reviews.length) {
    container.replaceChildren();
    return;
  }
  container.replaceChildren(
    h(
      "section",
      { class: "panel reviews" },
      h("h2", {}, "Reviews waiting"),
      h("ul", { class: "review-list" }, reviews.map((r) => reviewItem(r, ctx, after))),
    ),
  );
}

function reviewItem(review, ctx, after) {
  const note = h("input", { type: "text", class: "review-message", placeholder: "message (optional)", maxlength: 2000 });
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  const decide = (approved) => async () => {
    try {
      await api.decide(review.id, approved, note.value.trim());
      await after();
    } catch (error) {
      if (error.status === 401) return ctx.failed(error);
      problem.textContent = describe(error);
      problem.hidden = false;
    }
  };
  const run = `ui/runs/${encodeURIComponent(review.execution_id)}`;
  return h(
    "li",
    { class: "review", "data-review-id": review.id, "data-execution-id": review.execution_id },
    h("p", {}, h("strong", {}, review.instructions), " · node ", h("code", {}, review.node_id), " · ",
      h("a", { href: run, "data-nav": true }, "run")),
    h("pre", { class: "payload" }, pretty(review.payload)),
    h("div", { class: "row" }, note,
      h("button", { type: "button", class: "approve", onclick: decide(true) }, "Approve"),
      h("button", { type: "button", class: "reject danger", onclick: decide(false) }, "Reject")),
    problem,
  );
}
