// Proposals: counts by status, district and category with the list, and one proposal with its
// support history.
import { json } from "../api";
import { barFigure, lineChart } from "../chart";
import { h, link, table } from "../dom";
import { date, num, t, word, type Key } from "../i18n";

interface Proposal {
  id: number;
  title: string;
  body: string;
  category: string;
  district?: string | null;
  status: string;
  department: string;
  submitted_at: string;
  support_threshold: number;
  supports: number;
  support_history: { position: number; at: string; supports: number }[];
  answer?: { outcome: string; answer: string } | null;
  rejection_reason?: string | null;
}

async function allProposals(query: URLSearchParams): Promise<Proposal[]> {
  const found: Proposal[] = [];
  let cursor: string | null | undefined = undefined;
  do {
    const page: { proposals: Proposal[]; next_cursor?: string | null } = await json(`/v1/proposals?${query}&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    found.push(...page.proposals);
    cursor = page.next_cursor;
  } while (cursor && found.length < 2000);
  return found;
}

function countBy(proposals: Proposal[], pick: (p: Proposal) => string): [string[], number[]] {
  const counts = new Map<string, number>();
  for (const p of proposals) counts.set(pick(p), (counts.get(pick(p)) ?? 0) + 1);
  const names = [...counts.keys()].sort();
  return [names, names.map((n) => counts.get(n) ?? 0)];
}

const proposalStatuses = ["submitted", "published", "under_review", "accepted", "declined", "implemented", "rejected", "withdrawn", "expired"];

const filters: [string, Key][] = [
  ["status", "status"],
  ["district", "district"],
  ["category", "category"],
];

export async function proposalList(main: HTMLElement, params: URLSearchParams): Promise<void> {
  const query = new URLSearchParams();
  for (const [name] of filters) if (params.get(name)) query.set(name, params.get(name) ?? "");
  const proposals = await allProposals(query);
  const form = h("form", { class: "filters" });
  const chosenStatus = params.get("status") ?? "";
  form.append(h("label", { for: "p-status" }, t("status")), h("select", { id: "p-status", name: "status" }, h("option", { value: "" }, t("all")), ...proposalStatuses.map((code) => h("option", { value: code, selected: code === chosenStatus }, word(code)))));
  for (const [name, key] of filters.slice(1)) form.append(h("label", { for: `p-${name}` }, t(key)), h("input", { id: `p-${name}`, name, value: params.get(name) ?? "" }));
  form.append(h("button", { type: "submit" }, t("apply")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    new FormData(form as HTMLFormElement).forEach((value, name) => {
      if (String(value)) chosen.set(name, String(value));
    });
    location.hash = `#/proposals?${chosen}`;
  });
  const [statuses, byStatus] = countBy(proposals, (p) => p.status);
  const [districts, byDistrict] = countBy(proposals, (p) => p.district ?? "—");
  const [categories, byCategory] = countBy(proposals, (p) => p.category);
  const rows = proposals.map((p) => [link(`#/proposal/${p.id}`, p.title), word(p.status), p.category, p.district ?? "—", `${num(p.supports)} / ${num(p.support_threshold)}`, date(p.submitted_at)]);
  main.append(
    h("h1", {}, t("proposals")),
    form,
    barFigure(t("by_status"), t("status"), statuses.map(word), byStatus, "proposals-status"),
    barFigure(t("by_district"), t("district"), districts, byDistrict, "proposals-district"),
    barFigure(t("by_category"), t("category"), categories, byCategory, "proposals-category"),
    rows.length ? table(t("proposals"), [t("proposal"), t("status"), t("category"), t("district"), t("supports") + " / " + t("threshold"), t("filed_at")], rows, "proposals") : h("p", {}, t("none")),
  );
}

export async function proposalPage(main: HTMLElement, id: number): Promise<void> {
  const p = await json<Proposal>(`/v1/proposals/${id}`);
  const history = p.support_history;
  main.append(
    h("h1", {}, p.title),
    h("p", {}, p.body),
    h("dl", { class: "figures" }, h("dt", {}, t("status")), h("dd", {}, word(p.status)), h("dt", {}, t("category")), h("dd", {}, p.category), h("dt", {}, t("district")), h("dd", {}, p.district ?? "—"), h("dt", {}, t("supports")), h("dd", { "data-testid": "supports" }, num(p.supports)), h("dt", {}, t("threshold")), h("dd", {}, num(p.support_threshold))),
    p.answer ? h("p", {}, h("strong", {}, t("answer"), ": "), p.answer.answer) : "",
    h("h2", {}, t("support_history")),
    history.length ? lineChart(history.map((s) => Date.parse(s.at) / 1000), [{ label: t("supports"), values: history.map((s) => s.supports) }]).element : h("p", {}, t("none")),
    table(t("support_history"), [t("position"), t("time"), t("supports")], history.map((s) => [link(`#/record?from=${s.position}`, num(s.position)), date(s.at), num(s.supports)]), "support-history"),
  );
}
