// The official Pirsch JS SDK against a local trail. Input: a JSON object in argv[2]
// ({baseUrl, clientId, clientSecret, accessKey, siteId, hostname}); output: one JSON object on
// stdout with what each call returned, for tests/test_pirsch_sdk.py to check.
import { Pirsch } from "pirsch-sdk";

const cfg = JSON.parse(process.argv[2]);
const CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const FIREFOX = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0";
const SAFARI = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
const site = (path) => `https://${cfg.hostname}${path}`;

const oauth = new Pirsch({ baseUrl: cfg.baseUrl, hostname: cfg.hostname, clientId: cfg.clientId, clientSecret: cfg.clientSecret });
const keyed = new Pirsch({ baseUrl: cfg.baseUrl, hostname: cfg.hostname, accessToken: cfg.accessKey });
const out = {};

// Errors come back as values (PirschApiError) or are thrown; record both as {error, code}.
async function call(name, fn) {
  try {
    const value = await fn();
    out[name] = value instanceof Error ? { error: value.message, code: value.code } : (value ?? null);
  } catch (e) {
    out[name] = { error: String(e && e.message), code: e && e.code, thrown: true };
  }
}

const ago = (s) => new Date(Date.now() - s * 1000).toISOString();
// Writes. The oauth client starts without a token: its first POST goes out with an empty
// "Bearer ", gets 401, fetches a token at /token and retries.
await call("oauth_hit", () => oauth.hit({ url: site("/"), ip: "81.2.69.10", user_agent: CHROME, accept_language: "en-US" }));
await call("key_hit", () => keyed.hit({ url: site("/pricing"), ip: "81.2.69.11", user_agent: FIREFOX }));
await call("key_batch", () => keyed.batchHits([
  { url: site("/about"), ip: "81.2.69.12", user_agent: SAFARI, time: ago(60) },
  { url: site("/"), ip: "81.2.69.13", user_agent: CHROME, time: ago(30) },
]));
await call("key_event", () => keyed.event("signup", { url: site("/pricing"), ip: "81.2.69.11", user_agent: FIREFOX }, 30, { plan: "pro" }));
await call("key_session", () => keyed.session({ url: site("/pricing"), ip: "81.2.69.11", user_agent: FIREFOX }));
// An access key is write-only: the SDK itself refuses statistics calls for it.
await call("key_domain", () => keyed.domain());

// Reads, once the rows are sealed (about a second).
const today = new Date(new Date().toISOString().slice(0, 10));
// From the UTC day of the earliest hit (ago(60)): just after midnight that is yesterday.
const first = new Date(new Date(Date.now() - 120 * 1000).toISOString().slice(0, 10));
const filter = { id: cfg.siteId, from: first, to: today, tz: "UTC" };
for (let i = 0; i < 100; i++) {
  const total = await oauth.totalVisitors(filter);
  const events = await oauth.events(filter);
  if (total && total.views >= 4 && Array.isArray(events) && events.length >= 1) break;
  await new Promise((r) => setTimeout(r, 200));
}
await call("domain", () => oauth.domain());
await call("total", () => oauth.totalVisitors(filter));
await call("pages", () => oauth.pages(filter));
await call("visitors", () => oauth.visitors(filter));
await call("events", () => oauth.events(filter));
await call("event_meta", () => oauth.eventMetadata({ ...filter, event: "signup", event_meta_key: "plan" }));
await call("browser", () => oauth.browser(filter));
await call("other_site", () => oauth.totalVisitors({ ...filter, id: cfg.otherSiteId }));
console.log(JSON.stringify(out));
