// Drives the Node example of docs/apps.md (docs/examples/node/app.mjs, copied
// next to tests/e2e/node_modules by run.sh) against a real `via serve`: the
// descriptor flow, renewal after the operator revokes the app's credential
// generation, waiting out a restore, the token file, and an expired token.
//   node apps_example.mjs COPY/app.mjs
// Env: VIA_CONFIG_URL, VIA_WORKLOAD_TOKEN (app notes, release n1), VIA_BIN,
// VIA_TEST_HOME, EXPIRED_TOKEN (a token of notes/n1 that has expired).
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const example = await import(pathToFileURL(process.argv[2]).href);

function check(cond, what) {
  if (!cond) {
    console.error(`apps_example.mjs: FAILED: ${what}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}
function via(args, env = {}) {
  return execFileSync(process.env.VIA_BIN,
                      ["--home", process.env.VIA_TEST_HOME, "--actor", "e2e", "--yes", ...args],
                      { encoding: "utf8", env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "ignore"] });
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The descriptor flow.
const d = await example.fetchDescriptor("DATABASE");
check(d.binding === "DATABASE" && d.app === "notes" && d.release === "n1" && d.provider === "sqlite",
      "fetchDescriptor returns the binding's descriptor");
const db = new example.Database("DATABASE");
await db.execute("CREATE TABLE notes (body TEXT NOT NULL)");
const first = db.descriptor.generation;

// The operator rotates and revokes the generation the app holds: the next
// statement is refused, the app fetches the descriptor again and retries.
via(["addon", "rotate-credentials", "notes-db"]);
via(["addon", "revoke-credentials", "notes-db", "--generation", String(first)]);
await db.execute({ sql: "INSERT INTO notes (body) VALUES (?)", args: ["after revocation"] });
check(db.descriptor.generation === first + 1, `renewed from generation ${first} to ${first + 1}`);
const afterRenewal = await db.execute("SELECT count(*) AS n FROM notes");
check(Number(afterRenewal.rows[0].n) === 1, "the refused insert ran exactly once, after renewal");

// A restore in progress (its process died before the file work): the app
// waits on restore_in_progress and goes on once `via recover` finished it.
const snapshot = JSON.parse(via(["--json", "addon", "snapshot", "notes-db"])).id;
try {
  via(["addon", "restore", "notes-db", "--snapshot", snapshot], { VIA_CRASH_AT: "restore.before_file" });
} catch {
  // the crash point ends the process, as a crash would
}
const started = Date.now();
const pending = db.execute("SELECT count(*) AS n FROM notes");
await sleep(1500);
via(["recover"]);
const afterRestore = await pending;
check(Number(afterRestore.rows[0].n) === 1 && Date.now() - started >= 1000,
      `waited out the restore (${Date.now() - started} ms) and read the restored data`);
db.close();

// The token from a file that the platform rewrites.
const dir = mkdtempSync(join(tmpdir(), "via-apps-"));
writeFileSync(join(dir, "token"), `${process.env.VIA_WORKLOAD_TOKEN}\n`);
process.env.VIA_WORKLOAD_TOKEN_FILE = join(dir, "token");
check((await example.fetchDescriptor("DATABASE")).generation === first + 1,
      "VIA_WORKLOAD_TOKEN_FILE is read on each fetch");

// An expired token is refused with token_expired: only a new token helps.
writeFileSync(join(dir, "token"), process.env.EXPIRED_TOKEN);
let refused = null;
try {
  await example.fetchDescriptor("DATABASE");
} catch (e) {
  refused = e;
}
check(refused instanceof example.ViaError && refused.status === 401 && refused.code === "token_expired",
      "an expired workload token is refused with 401 token_expired");
