// Complaints: the statistics (every rate with its denominator, resolved and confirmed apart),
// the list with the moderator queue's filters, and one complaint's timeline.
import { json } from "../api";
import { barFigure, lineChart } from "../chart";
import { h, link, table } from "../dom";
import { date, num, percent, t, word, type Key } from "../i18n";

export interface Stats {
  filed: number;
  accepted: number;
  rejected: number;
  resolved: number;
  confirmed: number;
  disputed: number;
  resolved_within_sla: number;
  accepted_per_filed: number | null;
  resolved_per_accepted_including_unconfirmed: number | null;
  confirmed_per_accepted: number | null;
  resolved_within_sla_share: number | null;
  resolution_hours_median: number | null;
  resolution_hours_p90: number | null;
}

interface Report {
  overall: Stats;
  by_district: Record<string, Stats>;
  by_category: Record<string, Stats>;
  by_department: Record<string, Stats>;
  by_month: Record<string, Stats>;
}

function rate(value: number | null, numerator: number, denominator: number): HTMLElement {
  const shown = value === null ? t("no_rate") : percent(value);
  return h("span", { class: "num" }, shown, h("small", {}, " (", t("rate_of", num(numerator), num(denominator)), ")"));
}

function hours(value: number | null): string {
  return value === null ? "—" : num(Math.round(value * 10) / 10);
}

const counted: [keyof Stats, Key][] = [
  ["filed", "filed"],
  ["accepted", "accepted"],
  ["resolved", "resolved"],
  ["confirmed", "confirmed"],
  ["disputed", "disputed"],
];

function groupTable(caption: string, groups: Record<string, Stats>, testid: string, label: (name: string) => string): HTMLElement {
  const headers = [t("group"), ...counted.map(([, key]) => t(key)), t("rate_accepted"), t("rate_resolved"), t("rate_confirmed"), t("rate_sla"), t("median_hours"), t("p90_hours")];
  const rows = Object.entries(groups).map(([name, s]) => [
    label(name),
    ...counted.map(([field]) => h("span", { "data-field": field, class: "num" }, num(s[field] as number))),
    rate(s.accepted_per_filed, s.accepted, s.filed),
    rate(s.resolved_per_accepted_including_unconfirmed, s.resolved, s.accepted),
    rate(s.confirmed_per_accepted, s.confirmed, s.accepted),
    rate(s.resolved_within_sla_share, s.resolved_within_sla, s.resolved),
    hours(s.resolution_hours_median),
    hours(s.resolution_hours_p90),
  ]);
  // A wide table scrolls on its own; it takes the focus so a keyboard can scroll it too.
  return h("div", { class: "wide", tabindex: 0, role: "region", "aria-label": caption }, table(caption, headers, rows, testid));
}

function monthChart(months: Record<string, Stats>): HTMLElement {
  const names = Object.keys(months);
  if (names.length === 0) return h("p", {}, t("none"));
  const times = names.map((m) => Date.parse(m + "-01T00:00:00Z") / 1000);
  const fields: [keyof Stats, Key][] = [["filed", "filed"], ["resolved", "resolved"], ["confirmed", "confirmed"]];
  return lineChart(times, fields.map(([field, key]) => ({ label: t(key), values: names.map((m) => months[m][field] as number) }))).element;
}

export async function statisticsPage(main: HTMLElement): Promise<void> {
  const report = await json<Report>("/v1/statistics/complaints");
  const o = report.overall;
  const same = (name: string): string => name;
  main.append(
    h("h1", {}, t("statistics")),
    h("p", { class: "note-text" }, t("resolved_note")),
    groupTable(t("overall"), { [t("overall")]: o }, "stats-overall", same),
    barFigure(t("overall"), t("status"), counted.map(([, key]) => t(key)), counted.map(([field]) => o[field] as number), "overall-chart"),
    groupTable(t("by_district"), report.by_district, "stats-district", same),
    groupTable(t("by_category"), report.by_category, "stats-category", same),
    groupTable(t("by_department"), report.by_department, "stats-department", word),
    h("h2", {}, t("by_month")),
    monthChart(report.by_month),
    groupTable(t("by_month"), report.by_month, "stats-month", same),
  );
}

interface Complaint {
  id: number;
  category: string;
  description: string;
  location: { district: string; address: string; latitude: number; longitude: number };
  status: string;
  department?: string | null;
  filed_at: string;
  sla_breached: boolean;
  answer?: string | null;
  timeline: { position: number; at: string; action: string; actor: string; status: string; note?: string | { text?: string } }[];
}

const filters = ["status", "category", "district", "department"] as const;
// The moderator queue is `filed`; the others follow the complaint's lifecycle.
const statuses = ["filed", "needs_info", "accepted", "in_progress", "resolved", "confirmed", "closed_unconfirmed", "cannot_resolve", "rejected", "merged"];

export async function complaintList(main: HTMLElement, params: URLSearchParams): Promise<void> {
  const query = new URLSearchParams();
  for (const name of filters) if (params.get(name)) query.set(name, params.get(name) ?? "");
  if (params.get("sla_at_risk") === "true") query.set("sla_at_risk", "true");
  // The moderator's "waiting longer than": hours since filing, by the server's clock.
  const olderThan = params.get("older_than_hours") ?? "";
  if (/^[0-9]+$/.test(olderThan)) query.set("older_than_hours", olderThan);
  query.set("limit", "100");
  const page = await json<{ complaints: Complaint[] }>(`/v1/complaints?${query}`);
  const form = h("form", { class: "filters", "data-testid": "complaint-filters" });
  const chosenStatus = params.get("status") ?? "";
  const statusSelect = h("select", { id: "filter-status", name: "status" }, h("option", { value: "" }, t("all")), ...statuses.map((code) => h("option", { value: code, selected: code === chosenStatus }, word(code))));
  form.append(h("label", { for: "filter-status" }, t("status")), statusSelect);
  for (const name of filters.slice(1)) {
    form.append(h("label", { for: `filter-${name}` }, t(name)), h("input", { id: `filter-${name}`, name, value: params.get(name) ?? "" }));
  }
  form.append(h("label", { for: "filter-older" }, t("older_than_hours")), h("input", { id: "filter-older", name: "older_than_hours", type: "number", min: 0, max: 87840, value: olderThan }));
  form.append(h("label", { for: "filter-sla" }, h("input", { id: "filter-sla", name: "sla_at_risk", type: "checkbox", value: "true", checked: params.get("sla_at_risk") === "true" }), " ", t("sla_at_risk")), h("button", { type: "submit" }, t("apply")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    new FormData(form as HTMLFormElement).forEach((value, name) => {
      if (String(value)) chosen.set(name, String(value));
    });
    location.hash = `#/complaints/list?${chosen}`;
  });
  const rows = page.complaints.map((c) => [link(`#/complaint/${c.id}`, num(c.id)), word(c.status), c.category, c.location.district, word(c.department ?? "unrouted"), date(c.filed_at), c.sla_breached ? t("yes") : t("no")]);
  main.append(
    h("h1", {}, t("nav_complaint_list")),
    form,
    rows.length ? table(t("complaints"), [t("complaint"), t("status"), t("category"), t("district"), t("department"), t("filed_at"), t("sla_breached")], rows, "complaints") : h("p", {}, t("none")),
  );
}

const erasedPattern = /^\[erased by entry (\d+)\]$/;

/** Committed text as served, or what happened to it: erased by its author or redacted, why. */
async function content(text: string): Promise<HTMLElement> {
  const erased = erasedPattern.exec(text);
  if (erased) {
    const position = Number(erased[1]);
    const page = await json<{ entries: { payload: string }[] }>(`/v1/log/entries?from=${position}&limit=1`);
    const payload = JSON.parse(page.entries[0].payload) as { action: string; body: { reason?: string } };
    const message = payload.action === "erase_content" ? t("erased", num(position)) : t("redacted", num(position), word(payload.body.reason ?? "spam"));
    return h("em", { class: "erased", "data-testid": "erased" }, h("a", { href: `#/record?from=${position}` }, message));
  }
  if (text.startsWith("[content not held")) return h("em", { class: "erased" }, t("not_held"));
  return h("span", {}, text);
}

function noteText(note: string | { text?: string } | undefined): string | null {
  if (note === undefined) return null;
  return typeof note === "string" ? note : (note.text ?? null);
}

export async function complaintPage(main: HTMLElement, id: number): Promise<void> {
  const c = await json<Complaint>(`/v1/complaints/${id}`);
  const steps = await Promise.all(
    c.timeline.map(async (step) => {
      const note = noteText(step.note);
      return [link(`#/record?from=${step.position}`, num(step.position)), date(step.at), word(step.action), word(step.status), h("code", { class: "key" }, step.actor.slice(0, 12) + "…"), note === null ? "" : await content(note)];
    }),
  );
  main.append(
    h("h1", {}, t("complaint"), " ", num(c.id)),
    h(
      "dl",
      { class: "figures" },
      h("dt", {}, t("status")),
      h("dd", {}, word(c.status)),
      h("dt", {}, t("category")),
      h("dd", {}, c.category),
      h("dt", {}, t("district")),
      h("dd", {}, c.location.district),
      h("dt", {}, t("department")),
      h("dd", {}, word(c.department ?? "unrouted")),
      h("dt", {}, t("description")),
      h("dd", { "data-testid": "description" }, await content(c.description)),
      h("dt", {}, t("address")),
      h("dd", {}, await content(c.location.address)),
      c.answer ? h("dt", {}, t("answer")) : null,
      c.answer ? h("dd", {}, c.answer) : null,
    ),
    table(t("timeline"), [t("position"), t("time"), t("action"), t("status"), t("by"), t("note")], steps, "timeline"),
  );
}
