// Verifies many Dromos webhook messages in one run with the Standard
// Webhooks reference library. Input on stdin, a JSON array of
//   {"secret": "whsec_...", "headers": {"webhook-id": ...}, "body_base64": "..."}
// Output on stdout, a JSON array in the same order of
//   {"ok": true, "type": "connection.active"} or {"ok": false, "error": "..."}
// Exit 2 on bad input or a crash.
import { readFileSync } from "node:fs";
import pkg from "standardwebhooks";

const { Webhook, WebhookVerificationError } = pkg;

let input;
try {
  input = JSON.parse(readFileSync(0, "utf8"));
} catch (err) {
  console.error(`verify-all.mjs: bad input: ${err.message}`);
  process.exit(2);
}

const out = input.map((m) => {
  try {
    const body = Buffer.from(m.body_base64, "base64");
    const event = new Webhook(m.secret).verify(body, m.headers);
    return { ok: true, type: event.type };
  } catch (err) {
    if (err instanceof WebhookVerificationError) {
      return { ok: false, error: err.message };
    }
    console.error(`verify-all.mjs: ${err.stack || err}`);
    process.exit(2);
  }
});
console.log(JSON.stringify(out));
