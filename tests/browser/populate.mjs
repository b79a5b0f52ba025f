// Fills a fresh server with a small city: officials, a moderator, a registrar, residents of
// three districts, polls (open, by district, sealed, closed), complaints through every step
// (one erased by its author, one redacted by a moderator) and proposals with supports.
import { randomBytes } from "node:crypto";
import { commit, Key } from "./lib.mjs";

const districts = ["Riverside", "Old Town", "Station"];
const later = (ms) => new Date(Date.now() + ms).toISOString();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function people(client, admin) {
  const roles = { transport: new Key(), lighting: new Key(), moderator: new Key(), registrar: new Key() };
  for (const key of Object.values(roles)) await client.send("/v1/keys", key, "register_key", {});
  await client.send("/v1/roles", admin, "grant_role", { role: "official", department: "Transport", subject: roles.transport.public });
  await client.send("/v1/roles", admin, "grant_role", { role: "official", department: "Lighting", subject: roles.lighting.public });
  await client.send("/v1/roles", admin, "grant_role", { role: "moderator", subject: roles.moderator.public });
  await client.send("/v1/roles", admin, "grant_role", { role: "registrar", subject: roles.registrar.public });
  const residents = [];
  for (let i = 0; i < 12; i++) {
    const key = new Key();
    const receipt = await client.send("/v1/keys", key, "register_key", {});
    const district = districts[i % districts.length];
    await client.send("/v1/attestations", roles.registrar, "attest_resident", { district, resident_tag: randomBytes(32).toString("hex"), subject: key.public, verified: true });
    residents.push({ key, district, receipt });
  }
  return { roles, residents };
}

function poll(title, options, extra = {}) {
  return {
    audience: { kind: "everyone" },
    choice_kind: "single_choice",
    closes_at: later(3600_000),
    description: "",
    max_choices: 1,
    opens_at: new Date().toISOString(),
    options,
    tally_visibility: "public",
    title,
    vote_changes_allowed: true,
    ...extra,
  };
}

async function polls(client, { roles, residents }) {
  const open = await client.send("/v1/polls", roles.transport, "open_poll", poll("Where should the new tram line go?", ["Along the river", "Through the old town", "Past the station"]));
  const district = await client.send("/v1/polls", roles.transport, "open_poll", poll("Night buses for Riverside and Station", ["Every 30 minutes", "Every hour"], { audience: { kind: "districts", districts: ["Riverside", "Station"] } }));
  const sealed = await client.send("/v1/polls", roles.transport, "open_poll", poll("Sealed: the new bridge's name", ["Pushkin", "Volga"], { tally_visibility: "sealed" }));
  const closing = await client.send("/v1/polls", roles.transport, "open_poll", poll("Closed: more benches on the embankment?", ["Yes", "No"], { closes_at: later(4000) }));
  for (const [i, r] of residents.entries()) {
    await client.send(`/v1/polls/${open.position}/ballots`, r.key, "cast_ballot", { poll: open.position, choices: [i % 3] });
    await client.send(`/v1/polls/${closing.position}/ballots`, r.key, "cast_ballot", { poll: closing.position, choices: [i % 4 === 0 ? 1 : 0] });
    if (r.district !== "Old Town") await client.send(`/v1/polls/${district.position}/ballots`, r.key, "cast_ballot", { poll: district.position, choices: [i % 2] });
    if (i < 5) await client.send(`/v1/polls/${sealed.position}/ballots`, r.key, "cast_ballot", { poll: sealed.position, choices: [i % 2] });
  }
  // A changed vote, so the superseded count is not zero.
  await client.send(`/v1/polls/${open.position}/ballots`, residents[0].key, "cast_ballot", { poll: open.position, choices: [2] });
  return { open: open.position, district: district.position, sealed: sealed.position, closed: closing.position };
}

async function catalogue(client, admin) {
  const base = { confirmation_window_days: 14, proposal_lifetime_days: 90, sla_working_days: 10, support_threshold: 3 };
  await client.send("/v1/categories", admin, "define_category", { ...base, id: "street-lighting", name: "Street lighting", department: "Lighting" });
  await client.send("/v1/categories", admin, "define_category", { ...base, id: "potholes", name: "Potholes", department: "Transport" });
}

async function file(client, resident, category, description) {
  const pieces = [];
  const body = {
    category,
    description: commit(description, pieces),
    location: { address: commit("12 Embankment", pieces), district: resident.district, latitude: 59.939, longitude: 30.314 },
  };
  return (await client.send("/v1/complaints", resident.key, "file_complaint", body, pieces)).position;
}

async function complaints(client, { roles, residents }) {
  const event = (id, key, action, body, pieces) => client.send(`/v1/complaints/${id}/events`, key, action, { complaint: id, ...body }, pieces);
  const ids = [];
  for (let i = 0; i < 9; i++) {
    const resident = residents[i];
    ids.push(await file(client, resident, i % 2 ? "potholes" : "street-lighting", `Complaint ${i + 1}: the lamp or road outside is broken.`));
  }
  const official = (i) => (i % 2 ? roles.transport : roles.lighting);
  for (const i of [0, 1, 2, 3, 4, 5]) await event(ids[i], roles.moderator, "triage_complaint", { decision: { decision: "accept" } });
  for (const i of [0, 1, 2, 3]) await event(ids[i], official(i), "start_work", {});
  for (const i of [0, 1, 2]) await event(ids[i], official(i), "resolve_complaint", { answer: "Fixed by the city crew." });
  await event(ids[0], residents[0].key, "confirm_resolution", {});
  const reason = [];
  await event(ids[1], residents[1].key, "dispute_resolution", { reason: commit("Still dark at night.", reason) }, reason);
  await event(ids[6], roles.moderator, "triage_complaint", { decision: { decision: "reject", rejection: { reason: "spam", redact_content: true } } });
  await event(ids[7], roles.moderator, "triage_complaint", { decision: { decision: "needs_info", question: "Which house number?" } });
  // The author of complaint 9 erases their own words; a moderator redacts complaint 6's.
  await client.send("/v1/commands", residents[8].key, "erase_content", { entry: ids[8] });
  await client.send("/v1/commands", roles.moderator, "redact_content", { entry: ids[5], reason: "third_party_personal_data" });
  return ids;
}

async function proposals(client, { roles, residents }) {
  const ids = [];
  const texts = [["Benches along the river", "street-lighting", "Riverside"], ["A crossing at the school", "potholes", "Old Town"], ["Lights in the park", "street-lighting", null]];
  for (const [i, [title, category, district]] of texts.entries()) {
    const pieces = [];
    const body = { category, title: commit(title, pieces), body: commit(`${title}: the details of proposal ${i + 1}.`, pieces) };
    if (district) body.district = district;
    ids.push((await client.send("/v1/proposals", residents[i].key, "submit_proposal", body, pieces)).position);
  }
  const event = (id, key, action, body = {}) => client.send(`/v1/proposals/${id}/events`, key, action, { proposal: id, ...body });
  await event(ids[0], roles.moderator, "moderate_proposal", { decision: { decision: "publish" } });
  await event(ids[1], roles.moderator, "moderate_proposal", { decision: { decision: "publish" } });
  for (const r of residents.slice(3, 6)) await event(ids[0], r.key, "support_proposal");
  await event(ids[1], residents[6].key, "support_proposal");
  await event(ids[0], roles.lighting, "answer_proposal", { answer: "Benches will be installed in spring.", outcome: "accepted" });
  return ids;
}

export async function populate(client, admin) {
  const cast = await people(client, admin);
  const pollIds = await polls(client, cast);
  await catalogue(client, admin);
  const complaintIds = await complaints(client, cast);
  const proposalIds = await proposals(client, cast);
  // The short poll closes 4 s after it opened; the server appends its close event when due.
  for (let i = 0; i < 100; i++) {
    const view = await client.get(`/v1/polls/${pollIds.closed}`);
    if (view.status === "closed") break;
    await sleep(200);
  }
  return { cast, polls: pollIds, complaints: complaintIds, proposals: proposalIds, receipt: cast.residents[0].receipt };
}
