// Hrana over WebSocket against `via serve`, with unmodified clients:
//   - @libsql/client 0.18.0 with a ws:// URL (it negotiates hrana2);
//   - @libsql/client's hrana-client asked for version 3 (subprotocol hrana3)
//     with @libsql/client's own batch code: getAutocommit, cursors, and the
//     guard (not(is_autocommit)) stopping a batch that a ROLLBACK ended;
//   - then revocation: a generation is revoked (REVOKE_COMMAND) while a
//     WebSocket stream of it holds an open transaction; its next request
//     fails at once and the WebSocket is closed.
// Env: WS_URL (ws://host:port), DB_TOKEN, REVOKE_COMMAND (a JSON argv).
import { createClient } from "@libsql/client";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const wsUrl = process.env.WS_URL;
const authToken = process.env.DB_TOKEN;
const revoke = JSON.parse(process.env.REVOKE_COMMAND);

function check(cond, what) {
  if (!cond) {
    console.error(`hrana_ws.mjs: FAILED: ${what}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}
async function rejects(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return e;
  }
}

// ---- @libsql/client over ws://
const db = createClient({ url: wsUrl, authToken });
await db.execute("CREATE TABLE ws (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
await db.execute({ sql: "INSERT INTO ws (body) VALUES (?)", args: ["one"] });
await db.batch(["INSERT INTO ws (body) VALUES ('two')", "INSERT INTO ws (body) VALUES ('three')"], "write");
const failedBatch = await rejects(db.batch(["INSERT INTO ws (body) VALUES ('x')", "INSERT INTO ws (body) VALUES (NULL)"], "write"));
check(failedBatch !== null, "@libsql/client over ws://: a failing batch rejects");
const tx = await db.transaction("write");
await tx.execute("INSERT INTO ws (body) VALUES ('in-tx')");
const inside = await tx.execute("SELECT count(*) AS c FROM ws");
check(Number(inside.rows[0].c) === 4, "@libsql/client over ws://: a transaction sees its write");
await tx.rollback();
tx.close();
const all = await db.execute("SELECT body FROM ws ORDER BY id");
check(all.rows.map((r) => r.body).join(",") === "one,two,three",
      "@libsql/client over ws://: statements, batch, failed batch and rollback as expected");
db.close();
// libsql:// with tls=0 (@libsql/client 0.18 opens it over HTTP).
const libsqlUrl = wsUrl.replace(/^ws:/, "libsql:") + "?tls=0";
const viaLibsql = createClient({ url: libsqlUrl, authToken });
const one = await viaLibsql.execute("SELECT count(*) AS c FROM ws");
check(Number(one.rows[0].c) === 3, `${libsqlUrl} works (over ${viaLibsql.protocol})`);
viaLibsql.close();

// ---- @libsql/client's hrana-client asked for version 3 (subprotocol hrana3),
// with @libsql/client's own batch code on it (as in hrana3.mjs).
const clientEntry = fileURLToPath(import.meta.resolve("@libsql/client"));
const hranaDir = path.dirname(path.dirname(createRequire(clientEntry).resolve("@libsql/hrana-client")));
const hrana = await import(pathToFileURL(path.join(hranaDir, "lib-esm/index.js")).href);
const { executeHranaBatch, stmtToHrana } = await import(
  pathToFileURL(path.join(path.dirname(clientEntry), "hrana.js")).href);
const hc = hrana.openWs(wsUrl, authToken, 3);
check(await hc.getVersion() === 3, "hrana-client negotiated hrana3 over WebSocket");
const s = hc.openStream();
check(await s.getAutocommit() === true, "getAutocommit over WebSocket: true outside a transaction");
await s.run("BEGIN");
check(await s.getAutocommit() === false, "getAutocommit over WebSocket: false inside BEGIN");
await s.run("ROLLBACK");
await s.run("CREATE TABLE wst (x INTEGER)");
async function batch(stmts, mode) {
  const stream = hc.openStream();
  try {
    return await executeHranaBatch(mode, 3, stream.batch(true), stmts.map(stmtToHrana));
  } finally {
    stream.closeGracefully();
  }
}
const rolledBack = await rejects(batch(
  ["INSERT INTO wst VALUES (1),(2),(3)", "ROLLBACK", "INSERT INTO wst VALUES (4),(5)"], "write"));
check(rolledBack?.code === "TRANSACTION_CLOSED",
      `over WebSocket, the batch with a ROLLBACK stops as the embedded client does (${rolledBack?.code})`);
const n = await s.queryValue("SELECT count(*) FROM wst");
check(Number(n.value) === 0, "nothing of that batch is committed");
const ok = await batch(["INSERT INTO wst VALUES (7)", "SELECT x FROM wst"], "write");
check(ok[1].rows.length === 1 && Number(ok[1].rows[0].x) === 7, "a batch through a WebSocket cursor");
await s.run("DELETE FROM wst");
const rows = await s.query("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 5000) SELECT i FROM c");
check(rows.rows.length === 5000, "a query over WebSocket");
s.close();

// ---- revocation while a WebSocket stream holds a transaction
const r = hc.openStream();
await r.run("BEGIN");
await r.run("INSERT INTO wst VALUES (888)");
execFileSync(revoke[0], revoke.slice(1), { stdio: "ignore" });
const started = Date.now();
const after = await rejects(r.run("COMMIT"));
const ms = Date.now() - started;
check(after !== null && ms < 1000, `the revoked stream's next request fails at once (${ms} ms): ${after?.message}`);
for (let i = 0; i < 100 && !hc.closed; i++) await new Promise((res) => setTimeout(res, 10));
check(hc.closed, "the WebSocket was closed after the revocation");
console.log("hrana_ws.mjs: all checks passed");
