// One run (/ui/runs/{execution_id}): its graph drawn with each node's status, live until the run ends; a node's
// executions (inputs, outputs, error, attempts, duration, tokens and cost); stop, resume and pending reviews; the
// status history (GET /executions/{eid}/events).

import { api } from "./api.js";
import { ENDED, badge, between, clear, dollars, h, pretty, seconds, when } from "./dom.js";
import { drawGraph, graphFromNodes, layoutError } from "./graph.js";
import { describe, showReviews } from "./runs.js";

const POLL_MS = 1000;
const SETTLING_POLLS = 20; // after the run ends, while work in flight winds down (a stop lets a running block finish)

export async function showRun(view, ctx, executionId) {
  const parts = skeleton(executionId);
  clear(view).append(parts.root);
  let report = await api.run(executionId);
  if (!ctx.alive()) return;
  const graph = await api.graph(report.graph_id, report.graph_version).catch(() => null);
  const blocks = await ctx.blocks();
  if (!ctx.alive()) return;
  parts.title.textContent = graph ? graph.name : `graph ${report.graph_id}`;
  const byNode = new Map();
  let selected = null;
  let drawing = null;
  const select = (nodeId) => {
    selected = nodeId;
    if (drawing) drawing.select(nodeId);
    showNode(parts.detail, nodeId, byNode.get(nodeId) || []);
  };
  try {
    drawing = await drawGraph(parts.graph, graph ? graph.graph : graphFromNodes(report), blocks, select);
  } catch (error) {
    parts.graph.replaceChildren(layoutError(error));
  }

  let polling = false;
  let settling = 0;
  const refresh = async () => {
    // the history after the report: it then holds at least the status the report shows (the last poll's too)
    const fresh = await api.run(executionId);
    const events = await api.events(executionId);
    if (!ctx.alive()) return;
    report = fresh;
    group(byNode, report.nodes);
    if (drawing) drawing.update(byNode);
    renderHead(parts, report);
    renderTimeline(parts.timeline, events.events);
    renderValues(parts.outputs, report.outputs, "No outputs yet.");
    renderValues(parts.inputs, report.inputs, "No inputs.");
    if (selected) showNode(parts.detail, selected, byNode.get(selected) || []);
    const waiting = report.nodes.some((n) => n.review_id && n.status === "WAITING");
    if (waiting) await showReviews(parts.reviews, ctx, poll, executionId);
    else if (parts.reviews.dataset.ids) {
      parts.reviews.replaceChildren();
      parts.reviews.dataset.ids = "";
    }
  };
  const loop = async () => {
    try {
      await refresh();
    } catch (error) {
      polling = false;
      parts.root.dataset.live = "false";
      return ctx.failed(error);
    }
    if (!ctx.alive()) return;
    const busy = report.nodes.some((n) => n.status === "RUNNING" || n.status === "QUEUED");
    if (ENDED.has(report.status)) settling += 1;
    const live = !ENDED.has(report.status) || (busy && settling <= SETTLING_POLLS);
    parts.root.dataset.live = String(live);
    parts.live.textContent = live ? "live" : "ended: not updating";
    if (live) ctx.later(loop, POLL_MS);
    else polling = false;
  };
  // (re)starts the polling after an action: a resumed run goes on again
  const poll = async () => {
    settling = 0;
    if (polling) return;
    polling = true;
    await loop();
  };
  parts.stop.addEventListener("click", () => act(parts, () => api.stop(executionId), poll, ctx));
  parts.resume.addEventListener("click", () => act(parts, () => api.resume(executionId), poll, ctx));
  await poll();
}

async function act(parts, action, poll, ctx) {
  parts.problem.hidden = true;
  try {
    await action();
  } catch (error) {
    if (error.status === 401) return ctx.failed(error);
    parts.problem.textContent = describe(error);
    parts.problem.hidden = false;
  }
  await poll();
}

function skeleton(executionId) {
  const parts = {
    title: h("span", {}, "run"),
    status: h("span", { id: "run-status" }),
    live: h("span", { id: "live", class: "muted" }),
    stop: h("button", { type: "button", id: "stop-run", class: "danger" }, "Stop"),
    resume: h("button", { type: "button", id: "resume-run" }, "Resume"),
    problem: h("p", { id: "run-error", class: "error", role: "alert", hidden: true }),
    stats: h("dl", { id: "run-stats", class: "stats" }),
    reviews: h("div", { id: "run-reviews" }),
    graph: h("div", { id: "graph", class: "graph" }, h("p", { class: "muted" }, "Drawing the graph…")),
    detail: h("aside", { id: "node-detail", class: "panel" }, h("p", { class: "muted" }, "Click a node to see its executions.")),
    outputs: h("dl", { id: "run-outputs", class: "values" }),
    inputs: h("dl", { id: "run-inputs", class: "values" }),
    timeline: h("ol", { id: "timeline", class: "timeline" }),
  };
  parts.root = h(
    "section",
    { id: "run", "data-execution-id": executionId, "data-status": "", "data-live": "true" },
    h("div", { class: "row run-head" }, h("h1", {}, parts.title), parts.status,
      h("div", { class: "actions" }, parts.stop, parts.resume, parts.live)),
    h("p", { class: "muted" }, "Run ", h("code", {}, executionId)),
    parts.problem,
    parts.stats,
    parts.reviews,
    h("div", { class: "run-body" }, parts.graph, parts.detail),
    h("div", { class: "columns" },
      h("section", { class: "panel" }, h("h2", {}, "Outputs"), parts.outputs),
      h("section", { class: "panel" }, h("h2", {}, "Inputs"), parts.inputs),
      h("section", { class: "panel" }, h("h2", {}, "Status history"), parts.timeline)),
  );
  return parts;
}

function group(byNode, nodes) {
  byNode.clear();
  for (const node of nodes) {
    if (!byNode.has(node.node_id)) byNode.set(node.node_id, []);
    byNode.get(node.node_id).push(node);
  }
  for (const list of byNode.values()) list.sort((a, b) => a.seq - b.seq);
}

function renderHead(parts, report) {
  parts.root.dataset.status = report.status;
  parts.status.replaceChildren(badge(report.status));
  parts.stop.disabled = ENDED.has(report.status);
  parts.resume.disabled = report.status !== "TERMINATED";
  const st = report.stats;
  const items = [
    ["Started", when(report.created_at)],
    ["Duration", seconds(st.duration_s)],
    ["Node executions", st.node_executions],
    ["LLM calls", st.llm_calls],
    ["Tokens in / out", `${st.llm_input_tokens} / ${st.llm_output_tokens}`],
    ["Cost", dollars(st.llm_cost_usd)],
  ];
  if (report.error) items.push(["Error", report.error]);
  if (report.parent_execution_id) {
    const link = h("a", { href: `ui/runs/${encodeURIComponent(report.parent_execution_id)}`, "data-nav": true }, "parent run");
    items.push(["Started by", link]);
  }
  parts.stats.replaceChildren(...items.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function renderTimeline(list, events) {
  list.replaceChildren(
    ...events.map((e) => h("li", { "data-status": e.status }, badge(e.status), " ", h("span", { class: "muted" }, when(e.at)))),
  );
}

function renderValues(list, values, none) {
  const entries = values && typeof values === "object" ? Object.entries(values) : [];
  if (!entries.length) {
    list.replaceChildren(h("p", { class: "muted" }, none));
    return;
  }
  list.replaceChildren(...entries.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, h("pre", {}, pretty(v)))]));
}

// -- one node's executions

function showNode(panel, nodeId, executions) {
  const shown = JSON.stringify(executions);
  if (panel.dataset.nodeId === nodeId && panel.dataset.shown === shown) return; // unchanged: keep the reader's place
  panel.dataset.nodeId = nodeId;
  panel.dataset.shown = shown;
  panel.replaceChildren(
    h("h2", {}, "Node ", h("code", {}, nodeId)),
    executions.length
      ? h("p", { class: "muted" }, `${executions.length} execution(s)`)
      : h("p", { class: "muted" }, "No execution of this node (yet)."),
    ...executions.map(execution),
  );
}

function execution(n) {
  const facts = [
    ["Block", n.block_name || n.block_id],
    ["Attempts", n.attempts],
    ["Started", when(n.started_at)],
    ["Ended", when(n.ended_at)],
    ["Duration", seconds(between(n.started_at, n.ended_at))],
  ];
  if (n.retry_at) facts.push(["Next attempt", when(n.retry_at)]);
  if (n.stats && n.stats.llm_calls) {
    facts.push(["Model", n.stats.model || "–"], ["LLM calls", n.stats.llm_calls]);
    facts.push(["Tokens in / out", `${n.stats.input_tokens} / ${n.stats.output_tokens}`], ["Cost", dollars(n.stats.cost_usd)]);
  }
  if (n.child_execution_id) {
    const link = h("a", { href: `ui/runs/${encodeURIComponent(n.child_execution_id)}`, "data-nav": true }, "child run");
    facts.push(["Sub-agent", link]);
  }
  if (n.review_id) facts.push(["Review", h("code", {}, n.review_id)]);
  const outputs = Object.entries(n.outputs || {});
  return h(
    "article",
    { class: "node-execution", "data-seq": n.seq, "data-status": n.status },
    h("h3", {}, `#${n.seq} `, badge(n.status)),
    h("dl", { class: "stats" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("h4", {}, "Inputs"),
    h("pre", { class: "node-inputs" }, pretty(n.inputs)),
    h("h4", {}, "Outputs"),
    outputs.length
      ? h("dl", { class: "values node-outputs" }, outputs.flatMap(([pin, values]) => [
          h("dt", {}, pin),
          h("dd", { "data-pin": pin }, values.map((v) => h("pre", { class: "output-value" }, pretty(v)))),
        ]))
      : h("p", { class: "muted" }, "none"),
    n.error ? [h("h4", {}, "Error"), h("pre", { class: "node-error error" }, n.error)] : null,
    n.attempt_log && n.attempt_log.length
      ? [h("h4", {}, "Attempts"), h("ol", { class: "attempts" }, n.attempt_log.map(attempt))]
      : null,
  );
}

function attempt(a) {
  const parts = [`attempt ${a.attempt}`];
  if (a.error) parts.push(a.error);
  if (a.retry_in_seconds !== null && a.retry_in_seconds !== undefined) parts.push(`retry in ${seconds(a.retry_in_seconds)}`);
  if (a.deferred_seconds) parts.push(`deferred ${seconds(a.deferred_seconds)}`);
  return h("li", {}, parts.join(" · "), a.ended_at ? h("span", { class: "muted" }, ` (${when(a.ended_at)})`) : null);
}
