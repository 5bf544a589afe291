// An app that uses its DATABASE binding through Via, with an unmodified
// libSQL client (docs/apps.md). Run: npm install, then
//   VIA_CONFIG_URL=http://127.0.0.1:7600 VIA_WORKLOAD_TOKEN=$(via workload token --app notes --release n1) node app.mjs
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { createClient } from "@libsql/client";

// The app's identity: a workload token (JWT) that the platform issues with
// `via workload token` and replaces before it expires. Read it on every use:
// from VIA_WORKLOAD_TOKEN_FILE when set (a file the platform rewrites), else
// from VIA_WORKLOAD_TOKEN.
function workloadToken() {
  const file = process.env.VIA_WORKLOAD_TOKEN_FILE;
  return file ? readFileSync(file, "utf8").trim() : process.env.VIA_WORKLOAD_TOKEN;
}

// A refusal from Via: the HTTP status, Via's stable code and how long to wait.
export class ViaError extends Error {
  constructor(message, status, code, retryAfterS) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterS = retryAfterS;
  }
}

// Step 1: the descriptor of a binding, fetched with the workload token:
// {binding, provider, addon_id, url, auth_token, generation, app, release}.
export async function fetchDescriptor(binding) {
  const response = await fetch(`${process.env.VIA_CONFIG_URL}/v1/descriptors/${binding}`, {
    headers: { Authorization: `Bearer ${workloadToken()}` },
  });
  const body = await response.json();
  if (response.status !== 200) {
    // 401 token refused (token_expired: get a new token), 403 binding not
    // claimed by this release, 404 no such binding, 409 the add-on is not
    // usable (body.remediation says what the operator must do).
    const retryAfterS = Number(response.headers.get("retry-after") ?? 0);
    throw new ViaError(`${binding}: ${body.error.code}: ${body.error.message}`, response.status,
                       body.error.code, retryAfterS);
  }
  return body;
}

// Step 2: a client on the descriptor's url with its auth_token (Hrana over
// HTTP). Credentials have no expiry of their own: they work until the
// operator revokes their generation. Then the SQL proxy refuses with
// credential_revoked before running anything, and fetching the descriptor
// again gives the newest generation. During a restore or a repair, or when
// the proxy has too many open streams, it answers 503 with Retry-After
// (restore_in_progress, repair_in_progress, too_many_streams): wait and retry.
const RENEW = new Set(["credential_revoked"]);
const WAIT = new Set(["restore_in_progress", "repair_in_progress", "too_many_streams"]);

export class Database {
  constructor(binding) {
    this.binding = binding;
    this.descriptor = null;
    this.client = null;
  }

  async connect() {
    this.descriptor = await fetchDescriptor(this.binding);
    this.client = createClient({ url: this.descriptor.url, authToken: this.descriptor.auth_token });
  }

  // Runs fn(client), renewing the credential or waiting when Via says so. Only
  // for work that may run again from the start: a refused request did not run,
  // but an interactive transaction whose credential was revoked is rolled back
  // and must be redone as a whole.
  async run(fn, attempts = 5) {
    for (let attempt = 1; ; attempt++) {
      try {
        if (!this.client) await this.connect();
        return await fn(this.client);
      } catch (e) {
        if (attempt >= attempts) throw e;
        if (RENEW.has(e.code)) {
          this.close();  // the next attempt fetches the descriptor again
        } else if (WAIT.has(e.code)) {
          await new Promise((resolve) => setTimeout(resolve, 1000 * (e.retryAfterS || 1)));
        } else {
          throw e;
        }
      }
    }
  }

  execute(statement) {
    return this.run((client) => client.execute(statement));
  }

  close() {
    this.client?.close();
    this.client = null;
  }
}

// The app itself: count a visit.
async function main() {
  const db = new Database("DATABASE");
  await db.execute("CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY, at TEXT NOT NULL)");
  await db.execute({ sql: "INSERT INTO visits (at) VALUES (?)", args: [new Date().toISOString()] });
  const { rows } = await db.execute("SELECT count(*) AS n FROM visits");
  console.log(`visits: ${rows[0].n} (add-on ${db.descriptor.addon_id}, generation ${db.descriptor.generation})`);
  db.close();
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
