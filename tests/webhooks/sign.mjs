// Sign webhook bodies with @octokit/webhooks-methods, an implementation independent of agentflow's ingress.
//
// Reads JSON lines on stdin, one request each, and writes one JSON line per request on stdout, in order.
// A request names the secret and exactly one source of the body:
//   {"secret": "...", "example": {"event": "pull_request", "action": "opened", "index": 0}}  a real GitHub payload
//   {"secret": "...", "payload": {...}}    any JSON value, serialized here with JSON.stringify
//   {"secret": "...", "text": "..."}       a body sent as is (e.g. one that is not JSON)
// and optionally "id" (echoed back). The body is serialized ONCE, here; the answer carries its exact UTF-8 bytes
// (base64) and the signature `sign(secret, body)` computed over them, so the sender must send those bytes verbatim:
//   {"id": ..., "body_b64": "...", "bytes": N, "signature": "sha256=<hex>", "signer": "@octokit/webhooks-methods@V"}
// A request {"verify": {"secret": "...", "body_b64": "...", "signature": "..."}} answers {"id": ..., "valid": bool}
// with `verify` from the same package (to check another signer against this one).
// `node sign.mjs --version` prints the versions of both packages as JSON.
import { Buffer } from "node:buffer";
import { createInterface } from "node:readline";
import { sign, verify } from "@octokit/webhooks-methods";
import { EXAMPLES_PACKAGE, examplesVersion, findExample } from "./examples.mjs";

const SIGNER = `@octokit/webhooks-methods@${sign.VERSION}`;

function bodyOf(request) {
  const sources = ["example", "payload", "text"].filter((k) => k in request);
  if (sources.length !== 1) {
    throw new Error(`give exactly one of example, payload, text (got ${sources.join(", ") || "none"})`);
  }
  if ("text" in request) {
    if (typeof request.text !== "string") throw new Error("text must be a string");
    return request.text;
  }
  if ("payload" in request) return JSON.stringify(request.payload);
  const { event, action = null, index = 0 } = request.example;
  return JSON.stringify(findExample(event, action, index));
}

async function answer(request) {
  if ("verify" in request) {
    const { secret, body_b64, signature } = request.verify;
    const body = Buffer.from(body_b64, "base64").toString("utf8");
    return { valid: await verify(secret, body, signature), signer: SIGNER };
  }
  if (typeof request.secret !== "string" || !request.secret) throw new Error("secret must be a non-empty string");
  const body = bodyOf(request);
  const bytes = Buffer.from(body, "utf8"); // what createHmac(...).update(body) hashes
  const signature = await sign(request.secret, body);
  return { body_b64: bytes.toString("base64"), bytes: bytes.length, signature, signer: SIGNER };
}

if (process.argv[2] === "--version") {
  console.log(JSON.stringify({ signer: SIGNER, examples: `${EXAMPLES_PACKAGE}@${examplesVersion()}` }));
} else {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let failed = false;
  for await (const line of lines) {
    if (!line.trim()) continue;
    let request = {};
    try {
      request = JSON.parse(line);
      process.stdout.write(JSON.stringify({ id: request.id ?? null, ...(await answer(request)) }) + "\n");
    } catch (error) {
      failed = true;
      process.stdout.write(JSON.stringify({ id: request.id ?? null, error: String(error?.message ?? error) }) + "\n");
    }
  }
  process.exitCode = failed ? 1 : 0;
}
