// verify.mjs <manifest.json>: verifies recorded webhook deliveries with the
// official libraries a customer would use, and prints one JSON result per
// delivery and secret: {name, secret, workos, standard} where workos and
// standard are "ok" or the library's error message.
//
// The manifest is [{name, body, headers, secrets: [..]}]: body is the path of
// the raw request body, headers of a JSON object of the request headers.
import { readFileSync } from "node:fs";
import { WorkOS } from "@workos-inc/node";
import { Webhook } from "standardwebhooks";

const workos = new WorkOS("sk_test_unused");
const manifest = JSON.parse(readFileSync(process.argv[2], "utf8"));
const results = [];
for (const d of manifest) {
  const body = readFileSync(d.body, "utf8");
  const headers = JSON.parse(readFileSync(d.headers, "utf8"));
  for (const secret of d.secrets) {
    const r = { name: d.name, secret };
    try {
      const ev = await workos.webhooks.constructEvent({
        payload: body,
        sigHeader: headers["workos-signature"],
        secret,
      });
      r.workos = ev && ev.id ? "ok" : "no event";
      r.event_id = ev.id;
      r.event = ev.event;
    } catch (e) {
      r.workos = String(e && e.message ? e.message : e);
    }
    try {
      const payload = new Webhook(secret).verify(body, headers);
      r.standard = payload && payload.id ? "ok" : "no payload";
    } catch (e) {
      r.standard = String(e && e.message ? e.message : e);
    }
    results.push(r);
  }
}
process.stdout.write(JSON.stringify(results));
