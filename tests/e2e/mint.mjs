// Mints test JWTs with jose, to check that via serve refuses bad ones.
//   node mint.mjs KEY.pem KID SUB AUD EXP_OFFSET_SECONDS
// KEY.pem "random" signs with a fresh key (same kid: a bad signature).
import { SignJWT, importPKCS8, generateKeyPair } from "jose";
import { readFileSync } from "node:fs";

const [keyFile, kid, sub, aud, expOffset] = process.argv.slice(2);
const key = keyFile === "random"
  ? (await generateKeyPair("EdDSA", { crv: "Ed25519" })).privateKey
  : await importPKCS8(readFileSync(keyFile, "utf8"), "EdDSA");
const now = Math.floor(Date.now() / 1000);
const jwt = await new SignJWT({})
  .setProtectedHeader({ alg: "EdDSA", typ: "JWT", kid })
  .setSubject(sub)
  .setAudience(aud)
  .setIssuedAt(now - 7200)
  .setExpirationTime(now + Number(expOffset))
  .setJti(`minted-${now}`)
  .sign(key);
console.log(jwt);
