// Reads revocast's Token Status Lists as a Relying Party would, with @sd-jwt/jwt-status-list
// (the list, the reference in the access token) and jose (the list's signature and typ).
// stdin: one JSON object {jwks, pairs: [[access token, Status List Token], ...]}; stdout: one
// JSON array, per pair {status} or {error}.
import { getListFromStatusListJWT, getStatusListFromJWT } from "@sd-jwt/jwt-status-list";
import { createLocalJWKSet, jwtVerify } from "jose";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { jwks, pairs } = JSON.parse(input);
const keys = createLocalJWKSet(jwks);
const answers = [];
for (const [access, list] of pairs) {
  try {
    const reference = getStatusListFromJWT(access);
    const { payload } = await jwtVerify(list, keys, { typ: "statuslist+jwt" });
    if (payload.sub !== reference.uri) throw new Error(`sub ${payload.sub} is not ${reference.uri}`);
    const statusList = getListFromStatusListJWT(list);
    answers.push({ status: statusList.getStatus(reference.idx), bits: statusList.getBitsPerStatus() });
  } catch (error) {
    answers.push({ error: `${error.code ?? error.name}: ${error.message}` });
  }
}
process.stdout.write(JSON.stringify(answers));
