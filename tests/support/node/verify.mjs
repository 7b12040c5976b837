// Verifies revocast access tokens with Node's `jose` (jwtVerify, default options).
// argv: JWKS JSON, issuer, audience. Reads one token per line on stdin, answers one line
// each: "ok <sub>" or "refused <code>", at once, so a token is checked right after login.
import { createInterface } from "node:readline";
import { createLocalJWKSet, jwtVerify } from "jose";

const [jwks, issuer, audience] = process.argv.slice(2);
const keys = createLocalJWKSet(JSON.parse(jwks));
for await (const line of createInterface({ input: process.stdin })) {
  try {
    const { payload } = await jwtVerify(line.trim(), keys, { issuer, audience });
    process.stdout.write(`ok ${payload.sub}\n`);
  } catch (error) {
    process.stdout.write(`refused ${error.code ?? error.name}\n`);
  }
}
