// Runs as an app would against `via serve`, with unmodified clients only:
// verifies the workload JWT with jose against the published JWKS, fetches the
// DATABASE descriptor, then uses @libsql/client (Hrana over HTTP, v2) for
// DDL, parameterized writes and reads, a batch transaction and a rolled-back
// interactive transaction. Prints one JSON summary line; exits non-zero on
// the first failed check.
//
// Env: VIA_CONFIG_URL, VIA_WORKLOAD_TOKEN, EXPECT_APP, EXPECT_RELEASE.
import { createClient } from "@libsql/client";
import { createLocalJWKSet, jwtVerify } from "jose";

const base = process.env.VIA_CONFIG_URL;
const token = process.env.VIA_WORKLOAD_TOKEN;
const app = process.env.EXPECT_APP ?? "api";
const release = process.env.EXPECT_RELEASE ?? "v1";

function check(cond, what) {
  if (!cond) {
    console.error(`app.mjs: FAILED: ${what}`);
    process.exit(1);
  }
}

const jwksResponse = await fetch(`${base}/.well-known/jwks.json`);
check(jwksResponse.status === 200, "JWKS answers 200");
const jwks = createLocalJWKSet(await jwksResponse.json());
const { payload, protectedHeader } = await jwtVerify(token, jwks, {
  audience: "via-config",
  algorithms: ["EdDSA"],
});
check(protectedHeader.alg === "EdDSA", "alg is EdDSA");
check(payload.sub === `spiffe://via.local/app/${app}/release/${release}`, `sub names ${app}/${release}`);
check(typeof payload.jti === "string" && payload.jti.length > 0, "jti present");

const descriptorResponse = await fetch(`${base}/v1/descriptors/DATABASE`, {
  headers: { Authorization: `Bearer ${token}` },
});
check(descriptorResponse.status === 200, `descriptor answers 200 (got ${descriptorResponse.status})`);
const d = await descriptorResponse.json();
for (const field of ["binding", "provider", "addon_id", "url", "auth_token", "generation", "app", "release"]) {
  check(field in d, `descriptor has ${field}`);
}
check(d.binding === "DATABASE" && d.provider === "sqlite" && d.app === app && d.release === release,
      "descriptor names the binding, provider, app and release");

const db = createClient({ url: d.url, authToken: d.auth_token });

await db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, n REAL)");
const inserted = await db.execute({ sql: "INSERT INTO notes (body, n) VALUES (?, ?)", args: ["hello", 1.5] });
check(inserted.rowsAffected === 1, "insert affects one row");
await db.execute({ sql: "INSERT INTO notes (body, n) VALUES (:body, :n)", args: { body: "named", n: 2 } });
const rows = await db.execute("SELECT id, body, n FROM notes ORDER BY id");
check(rows.rows.length === 2 && rows.rows[0].body === "hello" && rows.rows[1].n === 2, "select reads both rows");
check(rows.columns.join(",") === "id,body,n", "columns are named");

// A batch is one transaction: all of it or nothing.
await db.batch([
  { sql: "INSERT INTO notes (body) VALUES (?)", args: ["batch-1"] },
  { sql: "INSERT INTO notes (body) VALUES (?)", args: ["batch-2"] },
], "write");
let failed = false;
try {
  await db.batch([
    { sql: "INSERT INTO notes (body) VALUES (?)", args: ["doomed"] },
    { sql: "INSERT INTO notes (body) VALUES (NULL)", args: [] },  // NOT NULL: fails
  ], "write");
} catch (e) {
  failed = true;
}
check(failed, "a failing batch throws");
const afterBatch = await db.execute("SELECT count(*) AS c FROM notes");
check(Number(afterBatch.rows[0].c) === 4, `failed batch left nothing behind (count ${afterBatch.rows[0].c})`);

// An interactive transaction spans several requests (batons) and rolls back.
const tx = await db.transaction("write");
await tx.execute({ sql: "INSERT INTO notes (body) VALUES (?)", args: ["in-tx"] });
const inside = await tx.execute("SELECT count(*) AS c FROM notes");
check(Number(inside.rows[0].c) === 5, "the transaction sees its own write");
await tx.rollback();
tx.close();
const afterRollback = await db.execute("SELECT count(*) AS c FROM notes WHERE body = 'in-tx'");
check(Number(afterRollback.rows[0].c) === 0, "rollback discarded the write");

// And one that commits.
const tx2 = await db.transaction("write");
await tx2.execute({ sql: "INSERT INTO notes (body) VALUES (?)", args: ["committed"] });
await tx2.commit();
const afterCommit = await db.execute("SELECT count(*) AS c FROM notes");
check(Number(afterCommit.rows[0].c) === 5, "commit kept the write");
db.close();

console.log(JSON.stringify({ ok: true, addon_id: d.addon_id, generation: d.generation, rows: 5 }));
