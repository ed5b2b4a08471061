// A run's graph drawn as SVG. Positions come from dagre (@dagrejs/dagre, installed from npm and served by the
// project: agentflow/api/pages.py); this module only draws what dagre computed, and recolours the nodes as the
// run's node executions change (docs/architecture.md, "The web page").

import { h, s } from "./dom.js";

const NODE_HEIGHT = 58;
const NOT_RUN = "NOT_RUN"; // a node with no node execution yet

let dagreModule = null;

async function loadDagre() {
  if (!dagreModule) dagreModule = (await import("./vendor/dagre.esm.js")).default;
  return dagreModule;
}

export function nodeLabel(node, blockNames) {
  const custom = node.metadata && node.metadata.customized_name;
  const block = blockNames.get(node.block_id) || node.block_id || "";
  const pinName = node.input_default && node.input_default.name;
  const isIo = /^Agent.*(Input|Output)Block$/.test(block);
  return { title: String(custom || (isIo && pinName) || block.replace(/Block$/, "") || node.id), block };
}

function widthOf(title, sub) {
  return Math.max(130, Math.round(Math.max(title.length * 7.6, sub.length * 6.4)) + 40);
}

// a smooth path through dagre's points: quadratic curves through the midpoints
function edgePath(points) {
  let d = `M${points[0].x},${points[0].y}`;
  for (let i = 1; i < points.length - 1; i += 1) {
    const mid = { x: (points[i].x + points[i + 1].x) / 2, y: (points[i].y + points[i + 1].y) / 2 };
    d += ` Q${points[i].x},${points[i].y} ${mid.x},${mid.y}`;
  }
  const last = points[points.length - 1];
  return `${d} L${last.x},${last.y}`;
}

// the arrowhead as its own triangle: a marker's url(#id) would resolve against the page's <base href>
function arrowHead(points) {
  const tip = points[points.length - 1];
  const from = points[points.length - 2] || points[0];
  const angle = Math.atan2(tip.y - from.y, tip.x - from.x);
  const corner = (turn) => `${tip.x - 9 * Math.cos(angle + turn)},${tip.y - 9 * Math.sin(angle + turn)}`;
  return `M${tip.x},${tip.y} L${corner(0.45)} L${corner(-0.45)} Z`;
}

function layout(dagre, nodes, links, blockNames) {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "LR", nodesep: 28, ranksep: 44, edgesep: 14, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of nodes) {
    const label = nodeLabel(node, blockNames);
    g.setNode(node.id, { ...label, width: widthOf(label.title, label.block), height: NODE_HEIGHT });
  }
  links.forEach((link, index) => {
    if (!g.hasNode(link.source_id) || !g.hasNode(link.sink_id)) return;
    const text = `${link.source_name} → ${link.sink_name}`;
    const edge = { text, width: Math.min(220, text.length * 6), height: 14, labelpos: "c" };
    g.setEdge(link.source_id, link.sink_id, edge, `link${index}`);
  });
  dagre.layout(g);
  return g;
}

function drawEdges(g) {
  return g.edges().map((e) => {
    const edge = g.edge(e);
    return s(
      "g",
      { class: "edge" },
      s("path", { class: "edge-line", d: edgePath(edge.points) }),
      s("path", { class: "edge-head", d: arrowHead(edge.points) }),
      s("text", { class: "edge-label", x: edge.x, y: edge.y + 4, "text-anchor": "middle" }, edge.text),
    );
  });
}

function drawNode(id, box, onSelect) {
  const count = s("text", { class: "count-text", x: 0, y: 4, "text-anchor": "middle" }, "0");
  const tip = s("title", {}, `${box.title} (${id})`);
  const element = s(
    "g",
    {
      class: "node",
      "data-node-id": id,
      "data-status": NOT_RUN,
      "data-executions": 0,
      transform: `translate(${box.x - box.width / 2},${box.y - box.height / 2})`,
      tabindex: 0,
      role: "button",
      "aria-label": `${box.title}: no execution yet`,
    },
    tip,
    s("rect", { class: "node-box", width: box.width, height: box.height, rx: 9 }),
    s("text", { class: "node-title", x: 14, y: 24 }, box.title),
    s("text", { class: "node-sub", x: 14, y: 43 }, box.block),
    s("g", { class: "count", transform: `translate(${box.width - 4},4)` }, s("circle", { r: 11 }), count),
  );
  const choose = () => onSelect(id);
  element.addEventListener("click", choose);
  element.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      choose();
    }
  });
  return { element, count, tip, title: box.title };
}

// Draws the graph into `container`; returns an object whose update(report) recolours the nodes.
export async function drawGraph(container, graph, blockNames, onSelect) {
  const dagre = await loadDagre();
  const g = layout(dagre, graph.nodes, graph.links, blockNames);
  const { width, height } = g.graph();
  const drawn = new Map();
  const nodeLayer = s("g", { class: "nodes" });
  for (const id of g.nodes()) {
    const node = drawNode(id, g.node(id), onSelect);
    drawn.set(id, node);
    nodeLayer.append(node.element);
  }
  const svg = s(
    "svg",
    { id: "graph-svg", width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": "the graph" },
    s("g", { class: "edges" }, drawEdges(g)),
    nodeLayer,
  );
  // shrink a wide graph to the panel, down to 80% of its size; past that the panel scrolls (CSSOM: CSP allows it)
  svg.style.maxWidth = `${width}px`;
  svg.style.minWidth = `${Math.round(width * 0.8)}px`;
  container.replaceChildren(svg);
  return {
    update(byNode) {
      for (const [id, node] of drawn) {
        const executions = byNode.get(id) || [];
        const latest = executions[executions.length - 1];
        const status = latest ? latest.status : NOT_RUN;
        node.element.setAttribute("data-status", status);
        node.element.setAttribute("data-executions", executions.length);
        node.count.textContent = String(executions.length);
        const summary = latest ? `${status}, ${executions.length} execution(s)` : "no execution yet";
        node.tip.textContent = `${node.title} (${id}): ${summary}`;
        node.element.setAttribute("aria-label", `${node.title}: ${summary}`);
      }
    },
    select(id) {
      for (const [other, node] of drawn) node.element.classList.toggle("selected", other === id);
    },
  };
}

// a graph that could not be read (deleted): its nodes as the run's node executions name them, no links
export function graphFromNodes(report) {
  const seen = new Map();
  for (const n of report.nodes) if (!seen.has(n.node_id)) seen.set(n.node_id, { id: n.node_id, block_id: n.block_id });
  return { nodes: [...seen.values()], links: [] };
}

export function layoutError(error) {
  return h(
    "p",
    { class: "error", role: "alert" },
    `The graph could not be drawn: the layout library did not load (${error.message}). ` +
      "Run `make setup` (it installs @dagrejs/dagre from npm), or check the deployment's layer.",
  );
}
