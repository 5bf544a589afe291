// Point selects against `via serve` from one Node process, for the WebSocket
// row of tools/bench_runtime/run.sh. wrk speaks no WebSocket, so the row is
// compared with /v2 JSON measured by this same harness (mode http), not with
// wrk's figures.
//
//   node ws_point_select.mjs MODE BASE AUTH_TOKEN SECONDS CONNS ROWS
//   MODE ws    Hrana 3 JSON over WebSocket (subprotocol hrana3): per
//              connection one hello, one stream, then one execute request
//              in flight at a time;
//   MODE http  POST /v2/pipeline with execute + close, as wrk's proxy row
//              sends it, on CONNS keep-alive connections (node:http).
// Every answer is checked (a row "value-..." and no error). Prints one line
// in wrk's RESULT format (non2xx counts HTTP statuses other than 200 and
// WebSocket error responses; sockerr counts connections that failed).
// The ws module comes from tests/e2e/node_modules (npm ci in tools/setup.sh).

import http from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../../tests/e2e/node_modules/"));
const WebSocket = require("ws");

const [mode, base, authToken, secondsText, connsText, rowsText] = process.argv.slice(2);
if (!["ws", "http"].includes(mode) || !base || !authToken) {
  console.error("usage: node ws_point_select.mjs ws|http BASE AUTH_TOKEN SECONDS CONNS ROWS");
  process.exit(2);
}
const seconds = Number(secondsText);
const conns = Number(connsText);
const rows = Number(rowsText);
const sql = "SELECT v FROM t WHERE id = ?";
const randomId = () => 1 + Math.floor(Math.random() * rows);

const latencies = [];
let requests = 0;
let non2xx = 0;
let sockerr = 0;
let bad = 0;
let checked = 0;
let firstBad = "";
const noteBad = (what) => {
  bad += 1;
  if (!firstBad) firstBad = String(what).slice(0, 200);
};

const deadline = performance.now() + seconds * 1000;

function wsWorker() {
  return new Promise((resolve) => {
    const ws = new WebSocket(base.replace(/^http/, "ws"), ["hrana3"]);
    const pending = new Map();
    let nextId = 1;
    const send = (request) =>
      new Promise((done) => {
        const id = nextId++;
        pending.set(id, done);
        ws.send(JSON.stringify({ type: "request", request_id: id, request }));
      });
    ws.on("message", (data) => {
      const msg = JSON.parse(data.toString());
      if (msg.type === "hello_ok" || msg.type === "hello_error") {
        pending.get(0)?.(msg);
        pending.delete(0);
        return;
      }
      const done = pending.get(msg.request_id);
      pending.delete(msg.request_id);
      done?.(msg);
    });
    ws.on("error", () => {
      sockerr += 1;
      resolve();
    });
    ws.on("open", async () => {
      const hello = await new Promise((done) => {
        pending.set(0, done);
        ws.send(JSON.stringify({ type: "hello", jwt: authToken }));
      });
      if (hello.type !== "hello_ok") {
        noteBad(JSON.stringify(hello));
        ws.close();
        return resolve();
      }
      const opened = await send({ type: "open_stream", stream_id: 1 });
      if (opened.type !== "response_ok") {
        noteBad(JSON.stringify(opened));
        ws.close();
        return resolve();
      }
      while (performance.now() < deadline) {
        const start = performance.now();
        const reply = await send({
          type: "execute",
          stream_id: 1,
          stmt: { sql, args: [{ type: "integer", value: String(randomId()) }], want_rows: true },
        });
        latencies.push(performance.now() - start);
        requests += 1;
        checked += 1;
        if (reply.type !== "response_ok") {
          non2xx += 1;
          noteBad(JSON.stringify(reply));
        } else {
          const row = reply.response?.result?.rows?.[0]?.[0];
          if (!row || typeof row.value !== "string" || !row.value.startsWith("value-")) {
            noteBad(JSON.stringify(reply));
          }
        }
      }
      ws.close();
      resolve();
    });
  });
}

// node:http with a keep-alive agent (one socket per worker, no Nagle delay),
// the request written in one piece as wrk writes it.
const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
const target = new URL(`${base}/v2/pipeline`);
function post(body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: "POST",
        headers: {
          Authorization: `Bearer ${authToken}`,
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    req.on("socket", (socket) => socket.setNoDelay(true));
    req.on("error", reject);
    req.end(body);
  });
}

async function httpWorker() {
  while (performance.now() < deadline) {
    const body = JSON.stringify({
      baton: null,
      requests: [
        { type: "execute", stmt: { sql, args: [{ type: "integer", value: String(randomId()) }] } },
        { type: "close" },
      ],
    });
    const start = performance.now();
    let response;
    try {
      response = await post(body);
    } catch (e) {
      sockerr += 1;
      return;
    }
    latencies.push(performance.now() - start);
    requests += 1;
    checked += 1;
    if (response.status !== 200) {
      non2xx += 1;
      noteBad(`${response.status} ${response.text}`);
    } else if (!response.text.includes('"value-') || response.text.includes('"type":"error"')) {
      noteBad(response.text);
    }
  }
}

const began = performance.now();
const workers = [];
for (let i = 0; i < conns; i += 1) workers.push(mode === "ws" ? wsWorker() : httpWorker());
await Promise.all(workers);
agent.destroy();
const durationUs = Math.round((performance.now() - began) * 1000);
latencies.sort((a, b) => a - b);
const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] * 1000 : 0);
console.log(
  `RESULT requests=${requests} duration_us=${durationUs} p50_us=${pct(50).toFixed(1)} ` +
    `p99_us=${pct(99).toFixed(1)} non2xx=${non2xx} sockerr=${sockerr} bad=${bad} checked=${checked}`,
);
if (firstBad) console.log(`FIRST_BAD ${firstBad}`);
