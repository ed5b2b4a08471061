// Real GitHub webhook payloads from @octokit/webhooks-examples (api.github.com/index.json: one entry per event,
// each { name, description, actions, properties, examples: [payload, ...] }).
//
// As a module: findExample(event, action, index) returns one payload.
// As a command: `node tests/webhooks/examples.mjs EVENT [ACTION] [INDEX]` prints that payload as JSON;
//               `node tests/webhooks/examples.mjs --list` prints each event with its examples' actions.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const require = createRequire(import.meta.url);

export const EXAMPLES_PACKAGE = "@octokit/webhooks-examples";

export function examplesVersion() {
  return require(`${EXAMPLES_PACKAGE}/package.json`).version;
}

export function allExamples() {
  const events = require(EXAMPLES_PACKAGE); // the package's "main": api.github.com/index.json
  if (!Array.isArray(events)) {
    throw new Error(`${EXAMPLES_PACKAGE}: expected an array of events in its index.json`);
  }
  return events;
}

/** The INDEX-th example of EVENT whose `action` is ACTION (any action when ACTION is empty or null). */
export function findExample(event, action = null, index = 0) {
  const entry = allExamples().find((e) => e.name === event);
  if (!entry) {
    throw new Error(`${EXAMPLES_PACKAGE} has no event ${JSON.stringify(event)}`);
  }
  const matching = entry.examples.filter((p) => !action || p.action === action);
  if (index >= matching.length) {
    throw new Error(
      `${EXAMPLES_PACKAGE} has ${matching.length} example(s) of ${event}` +
        (action ? ` with action ${JSON.stringify(action)}` : "") +
        `; asked for #${index}`,
    );
  }
  return matching[index];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [event, action, index] = process.argv.slice(2);
  if (!event) {
    console.error("usage: node examples.mjs EVENT [ACTION] [INDEX] | --list");
    process.exit(2);
  }
  if (event === "--list") {
    for (const e of allExamples()) {
      console.log(`${e.name}: ${e.examples.map((p) => p.action ?? "-").join(", ")}`);
    }
  } else {
    console.log(JSON.stringify(findExample(event, action || null, Number(index ?? 0)), null, 2));
  }
}
