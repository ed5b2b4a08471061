// The page's entry point: the API key (asked once, kept in sessionStorage; `#key=` taken from the address and
// removed), the two views (/ui: runs; /ui/runs/{id}: one run) and navigation between them without reloading.
// A refused key (401) clears the view: no data stays on the page without a valid key.

import { api, forgetKey, keepKey, pageUrl, storedKey, takeKeyFromFragment } from "./api.js";
import { clear, h, message } from "./dom.js";
import { showRun } from "./run.js";
import { showRuns } from "./runs.js";

const RUN_PATH = /^ui\/runs\/([A-Za-z0-9][A-Za-z0-9_-]{0,99})\/?$/;

const auth = document.getElementById("auth");
const authError = document.getElementById("auth-error");
const authForm = document.getElementById("auth-form");
const authKey = document.getElementById("auth-key");
const view = document.getElementById("view");
const forget = document.getElementById("forget-key");

let generation = 0; // one per view shown: the polling of a view that is gone stops
let blockNames = null;

function askForKey(problem) {
  generation += 1;
  clear(view).hidden = true;
  forget.hidden = true;
  auth.hidden = false;
  authError.textContent = problem || "";
  authError.hidden = !problem;
  authKey.value = "";
  authKey.focus();
}

function refused(error) {
  forgetKey();
  blockNames = null;
  askForKey(`The API key was refused (${error.status} ${error.code || "unauthorized"}): ${error.message}. Enter a valid key.`);
}

function makeContext() {
  const mine = ++generation;
  const alive = () => mine === generation;
  return {
    alive,
    later: (fn, ms) => setTimeout(() => alive() && fn(), ms),
    navigate,
    failed(error) {
      if (!alive()) return;
      if (error && error.status === 401) return refused(error);
      view.append(message(`Something went wrong: ${error && error.message ? error.message : error}`));
    },
    async blocks() {
      if (!blockNames) {
        const { blocks } = await api.blocks();
        blockNames = new Map(blocks.map((b) => [b.id, b.name]));
        for (const b of blocks) blockNames.set(b.name, b.name);
      }
      return blockNames;
    },
  };
}

function relativePath() {
  const root = new URL(document.baseURI).pathname;
  const path = location.pathname;
  return path.startsWith(root) ? path.slice(root.length) : path.replace(/^\//, "");
}

async function render() {
  if (!storedKey()) return askForKey();
  auth.hidden = true;
  forget.hidden = false;
  view.hidden = false;
  const ctx = makeContext();
  const match = RUN_PATH.exec(relativePath());
  try {
    if (match) await showRun(view, ctx, match[1]);
    else await showRuns(view, ctx);
  } catch (error) {
    ctx.failed(error);
  }
}

export function navigate(path) {
  const target = pageUrl(path);
  if (target.href !== location.href) history.pushState(null, "", target);
  render();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-nav]");
  if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});

window.addEventListener("popstate", render);

authForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const key = authKey.value.trim();
  authKey.value = "";
  if (!key) return;
  keepKey(key);
  render();
});

forget.addEventListener("click", () => {
  forgetKey();
  blockNames = null;
  askForKey();
});

takeKeyFromFragment();
render();
