// Hrana 3 over HTTP with unmodified clients, against `via serve`:
//   - libsql-stateless-easy 1.8.0 (Hrana 3 JSON only: POST /v3/pipeline);
//   - @libsql/client 0.18.0's batch and transaction code on its hrana-client
//     asked for protocol version 3 (see below): /v3-protobuf pipelines and
//     cursors;
//   - that hrana-client itself for getAutocommit, describe, sequence, store_sql.
// The rollback cases of issue 18 must stop as the embedded client does and
// commit nothing after the rollback. A batch over 100,000 rows must not grow
// the server's resident memory by anything near the size of its result.
// Prints "ok ..." lines; exits non-zero at the first failed check.
//
// Env: DB_URL (http://...), DB_TOKEN (the add-on credential), SERVER_PID.
import { createClient as createStatelessClient, libsqlServerCompatCheck } from "libsql-stateless-easy";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const url = process.env.DB_URL;
const authToken = process.env.DB_TOKEN;
const serverPid = process.env.SERVER_PID;

function check(cond, what) {
  if (!cond) {
    console.error(`hrana3.mjs: FAILED: ${what}`);
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

// ---- libsql-stateless-easy over /v3/pipeline
const easy = createStatelessClient({ url, authToken });
check(await libsqlServerCompatCheck({ url, authToken }), "libsql-stateless-easy: GET /v3 says the server speaks Hrana 3");
await easy.execute("CREATE TABLE easy (id INTEGER PRIMARY KEY, body TEXT NOT NULL, n REAL)");
const ins = await easy.execute({ sql: "INSERT INTO easy (body, n) VALUES (?, ?)", args: ["one", 1.5] });
check(ins.rowsAffected === 1 && Number(ins.lastInsertRowid) === 1, "libsql-stateless-easy: insert");
const easyBatch = await easy.batch([
  { sql: "INSERT INTO easy (body, n) VALUES (:b, :n)", args: { b: "two", n: 2 } },
  "INSERT INTO easy (body) VALUES ('three')",
  "SELECT count(*) AS c FROM easy",
], "write");
check(easyBatch.length === 3 && Number(easyBatch[2].rows[0].c) === 3, "libsql-stateless-easy: batch in a transaction");
const failed = await rejects(easy.batch([
  "INSERT INTO easy (body) VALUES ('doomed')",
  "INSERT INTO easy (body) VALUES (NULL)",
], "write"));
check(failed !== null, "libsql-stateless-easy: a failing batch rejects");
const easyRows = await easy.execute("SELECT id, body, n FROM easy ORDER BY id");
check(easyRows.rows.length === 3 && easyRows.rows[0].body === "one" && easyRows.rows[1].n === 2,
      "libsql-stateless-easy: the failed batch left nothing; values read back");

// ---- @libsql/client (0.18.0) with its hrana-client asked for Hrana 3:
// createClient() always opens its hrana-client at version 2, so the test
// opens the same hrana-client (resolved from @libsql/client) with
// protocolVersion 3 and runs @libsql/client's own batch and transaction code
// on it: executeHranaBatch (lib-esm/hrana.js) as client.batch() does, and
// the exported HttpTransaction as client.transaction() does. The hrana-client
// probes GET /v3-protobuf and then speaks protobuf; batches and transaction
// steps of a version-3 client run as cursors (/v3-protobuf/cursor).
const clientEntry = fileURLToPath(import.meta.resolve("@libsql/client"));
const clientRequire = createRequire(clientEntry);
// The ESM build, the very module instance lib-esm/hrana.js imports.
const hranaDir = path.dirname(path.dirname(clientRequire.resolve("@libsql/hrana-client")));
const hrana = await import(pathToFileURL(path.join(hranaDir, "lib-esm/index.js")).href);
const { executeHranaBatch, stmtToHrana } = await import(
  pathToFileURL(path.join(path.dirname(clientEntry), "hrana.js")).href);
const { HttpTransaction } = await import("@libsql/client/http");
const hc = hrana.openHttp(url, authToken, undefined, undefined, 3);
check(await hc.getVersion() === 3, "hrana-client asked for version 3 negotiated Hrana 3 (GET /v3-protobuf)");

async function batch(stmts, mode, useCursor = false) {
  const stream = hc.openStream();
  try {
    return await executeHranaBatch(mode, 3, stream.batch(useCursor), stmts.map(stmtToHrana));
  } finally {
    stream.closeGracefully();
  }
}
async function transaction(mode) {
  return new HttpTransaction(hc.openStream(), mode, 3);
}
async function count(sql) {
  const [rs] = await batch([sql], "read");
  return Number(rs.rows[0][0]);
}

await batch(["CREATE TABLE t (x INTEGER)", "CREATE TABLE u (id INTEGER PRIMARY KEY)", "INSERT INTO u VALUES (1)"], "write");
const rolledBack = await rejects(batch([
  "INSERT INTO t VALUES (1),(2),(3)",
  "ROLLBACK",
  "INSERT INTO t VALUES (4),(5)",
], "write"));
check(rolledBack !== null, `batch with a ROLLBACK rejects (${rolledBack?.code})`);
check(rolledBack?.code === "TRANSACTION_CLOSED", "... as the embedded client does (TRANSACTION_CLOSED)");
let n = await count("SELECT count(*) FROM t");
check(n === 0, `nothing of that batch is committed, not even after the ROLLBACK (count ${n})`);
const viaCursor = await rejects(batch(["INSERT INTO t VALUES (1)", "ROLLBACK", "INSERT INTO t VALUES (4)"], "write", true));
n = await count("SELECT count(*) FROM t");
check(viaCursor?.code === "TRANSACTION_CLOSED" && n === 0, "the same batch through a cursor stops the same way");

const tx = await transaction("write");
const first = await rejects(tx.execute("INSERT OR ROLLBACK INTO u VALUES (1)"));
check(first !== null, `INSERT OR ROLLBACK fails in the transaction (${first?.code})`);
const next = await rejects(tx.execute("INSERT INTO t VALUES (9)"));
check(next !== null && next.code === "TRANSACTION_CLOSED",
      `the next statement of the rolled-back transaction does not run (${next?.code})`);
await rejects(tx.commit());
tx.close();
n = await count("SELECT count(*) FROM t");
check(n === 0, `nothing was committed after the rollback (count ${n})`);

// A transaction across several requests (batons; each step is a cursor).
const tx2 = await transaction("write");
await tx2.execute("INSERT INTO t VALUES (10)");
await tx2.execute("INSERT INTO t VALUES (11)");
const inside = await tx2.execute("SELECT count(*) AS c FROM t");
check(Number(inside.rows[0].c) === 2, "the transaction sees its own writes across requests");
check(await count("SELECT count(*) FROM t") === 0, "... which others do not see before the commit");
await tx2.commit();
tx2.close();
check(await count("SELECT count(*) FROM t") === 2, "the committed transaction's writes are there");

// getAutocommit, describe, sequence and store_sql over /v3-protobuf.
const stream = hc.openStream();
check(await stream.getAutocommit() === true, "getAutocommit is true outside a transaction");
await stream.run("BEGIN");
check(await stream.getAutocommit() === false, "getAutocommit is false inside BEGIN");
await stream.run("ROLLBACK");
check(await stream.getAutocommit() === true, "getAutocommit is true after ROLLBACK");
const described = await stream.describe("SELECT x AS y FROM t WHERE x > ?");
check(described.paramNames.length === 1 && described.columns[0].name === "y" && described.isReadonly,
      "describe over /v3-protobuf");
await stream.sequence("CREATE TABLE seq1 (a); CREATE TABLE seq2 (b);");
const seqRows = await stream.query("SELECT count(*) FROM sqlite_schema WHERE name LIKE 'seq_'");
check(Number(seqRows.rows[0][0]) === 2, "sequence over /v3-protobuf");
const stored = stream.storeSql("SELECT ? + 1");
const sum = await stream.queryValue([stored, [41]]);
check(Number(sum.value) === 42, "store_sql over /v3-protobuf");
stream.close();

// ---- a batch over 100,000 rows: streamed, the server's memory bounded
function rssKb() {
  const status = readFileSync(`/proc/${serverPid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}
await batch(["CREATE TABLE big (i INTEGER, pad TEXT)",
  "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000) " +
  "INSERT INTO big SELECT i, printf('%0300d', i) FROM c"], "write");
// Warm-up: the same query over a few rows, so connections and caches exist.
await batch(["SELECT i, pad FROM big LIMIT 10"], "read", true);
const before = rssKb();
let peak = before;
const sampler = setInterval(() => { peak = Math.max(peak, rssKb()); }, 5);
const big = await batch(["SELECT i, pad FROM big ORDER BY i"], "read", true);
clearInterval(sampler);
peak = Math.max(peak, rssKb());
const rows = big[0].rows;
check(rows.length === 100000 && Number(rows[99999].i) === 100000 && rows[5].pad.length === 300,
      "a batch over 100,000 rows (30 MB of text) arrives whole");
const grewMb = (peak - before) / 1024;
check(grewMb < 12, `the server's resident memory grew ${grewMb.toFixed(1)} MB while sending 30 MB`);
hc.close();
console.log("hrana3.mjs: all checks passed");
