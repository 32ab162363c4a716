// Verifies one Dromos webhook message with the Standard Webhooks reference
// library. Input on stdin, JSON:
//   {"secret": "whsec_...", "headers": {"webhook-id": ...}, "body_base64": "..."}
// Exit 0: verified (the event's type is printed). Exit 1: the library
// refused the message (its reason on stderr). Exit 2: bad input or crash.
import { readFileSync } from "node:fs";
import pkg from "standardwebhooks";

const { Webhook, WebhookVerificationError } = pkg;

let input;
try {
  input = JSON.parse(readFileSync(0, "utf8"));
} catch (err) {
  console.error(`verify.mjs: bad input: ${err.message}`);
  process.exit(2);
}

try {
  const body = Buffer.from(input.body_base64, "base64");
  const event = new Webhook(input.secret).verify(body, input.headers);
  console.log(event.type);
  process.exit(0);
} catch (err) {
  if (err instanceof WebhookVerificationError) {
    console.error(`rejected: ${err.message}`);
    process.exit(1);
  }
  console.error(`verify.mjs: ${err.stack || err}`);
  process.exit(2);
}
