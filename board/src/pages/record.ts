// The public record: the log explorer, the role holders, and the moderation and admin actions.
import { json, NotAvailable } from "../api";
import { h, link, table } from "../dom";
import { date, num, t, word } from "../i18n";

interface Entry {
  position: number;
  kind: string;
  server_time: string;
  signer: string;
  payload: string;
  entry_hash: string;
}

function action(entry: Entry): string {
  try {
    return (JSON.parse(entry.payload) as { action: string }).action;
  } catch {
    return "?";
  }
}

function short(key: string): HTMLElement {
  return h("code", { class: "key", title: key }, key.slice(0, 16) + "…");
}

async function explorer(params: URLSearchParams): Promise<HTMLElement> {
  const from = Math.max(0, Number(params.get("from") ?? 0) || 0);
  const signer = params.get("signer") ?? "";
  const wanted = params.get("action") ?? "";
  // The server filters by key and action, reading at most 10,000 entries a request; the board
  // asks again, up to 20 times, until 50 match. "More" goes on from where the reading stopped.
  const filtering = Boolean(signer || wanted);
  const entries: Entry[] = [];
  let next: number | null = from;
  for (let asked = 0; next !== null && asked < (filtering ? 20 : 1) && entries.length < 50; asked++) {
    const query = new URLSearchParams({ from: String(next), limit: String(50 - entries.length) });
    if (signer) query.set("signer", signer);
    if (wanted) query.set("action", wanted);
    const page: { entries: Entry[]; next_from?: number | null } = await json(`/v1/log/entries?${query}`);
    entries.push(...page.entries);
    next = page.next_from ?? null;
  }
  const form = h(
    "form",
    { class: "filters", "data-testid": "log-filters" },
    h("label", { for: "log-from" }, t("from_position")),
    h("input", { id: "log-from", name: "from", type: "number", min: 0, value: from }),
    h("label", { for: "log-signer" }, t("signer_key")),
    h("input", { id: "log-signer", name: "signer", value: signer }),
    h("label", { for: "log-action" }, t("action")),
    h("input", { id: "log-action", name: "action", value: wanted }),
    h("button", { type: "submit" }, t("apply")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    new FormData(form as HTMLFormElement).forEach((value, name) => {
      if (String(value)) chosen.set(name, String(value));
    });
    location.hash = `#/record?${chosen}`;
  });
  const rows = entries.map((e) => [num(e.position), date(e.server_time), word(e.kind), h("code", {}, action(e)), short(e.signer), h("details", {}, h("summary", {}, t("payload")), h("pre", {}, e.payload))]);
  return h(
    "section",
    { "aria-labelledby": "explorer-heading" },
    h("h2", { id: "explorer-heading" }, t("log_explorer")),
    form,
    rows.length ? table(t("log_explorer"), [t("position"), t("server_time"), t("kind"), t("action"), t("signer_key"), t("payload")], rows, "log-entries") : h("p", {}, t("none")),
    next !== null ? link(`#/record?from=${next}${signer ? `&signer=${signer}` : ""}${wanted ? `&action=${wanted}` : ""}`, t("more")) : null,
  );
}

interface RoleView {
  role: string;
  department?: string | null;
  granted_at_position: number;
  granted_at: string;
}

async function guarded(heading: string, id: string, build: () => Promise<HTMLElement>): Promise<HTMLElement> {
  const section = h("section", { "aria-labelledby": id }, h("h2", { id }, heading));
  try {
    section.append(await build());
  } catch (error) {
    section.append(h("p", { class: "unavailable" }, error instanceof NotAvailable ? t("not_available") : t("failed", String(error))));
  }
  return section;
}

async function roles(): Promise<HTMLElement> {
  const holders: { key: string; roles: RoleView[] }[] = [];
  let after: string | null | undefined = undefined;
  do {
    const page: { holders: { key: string; roles: RoleView[] }[]; next_after?: string | null } = await json(`/v1/roles?limit=100${after ? `&after=${after}` : ""}`);
    holders.push(...page.holders);
    after = page.next_after;
  } while (after && holders.length < 5000);
  const rows = holders.flatMap((holder) => holder.roles.map((r) => [word(r.role), r.department ?? "—", short(holder.key), date(r.granted_at), link(`#/record?from=${r.granted_at_position}`, num(r.granted_at_position))]));
  return rows.length ? table(t("roles"), [t("role"), t("department"), t("key"), t("since"), t("position")], rows, "roles") : h("p", {}, t("none"));
}

interface ActionView {
  position: number;
  server_time: string;
  action: string;
  author: string;
  subject: Record<string, string | number>;
  decision?: string | null;
  reason?: string | null;
  role?: string | null;
  department?: string | null;
  district?: string | null;
  related_complaint?: number | null;
  successor?: string | null;
  redacts_content?: boolean;
}

/** What an action did, in words: its subject, then its decision, reason and other details. */
function summary(a: ActionView): string {
  const parts = Object.entries(a.subject).map(([kind, value]) => `${word(kind)} ${typeof value === "number" ? num(value) : String(value).slice(0, 16)}`);
  for (const code of [a.decision, a.reason, a.role]) if (code) parts.push(word(code));
  for (const name of [a.department, a.district]) if (name) parts.push(name);
  if (a.related_complaint !== undefined && a.related_complaint !== null) parts.push(`→ ${word("complaint")} ${num(a.related_complaint)}`);
  if (a.successor) parts.push(`→ ${a.successor.slice(0, 16)}…`);
  if (a.redacts_content) parts.push(word("redacts_content"));
  return parts.join(" · ");
}

async function actions(kind: "moderation" | "admin" | "registrar"): Promise<HTMLElement> {
  const page = await json<{ actions: ActionView[]; next_from?: number | null }>(`/v1/log/actions?kind=${kind}&limit=100`);
  const rows = page.actions.map((a) => [link(`#/record?from=${a.position}`, num(a.position)), date(a.server_time), word(a.action), short(a.author), summary(a)]);
  return rows.length ? table(t(kind), [t("position"), t("time"), t("action"), t("by"), t("note")], rows, `actions-${kind}`) : h("p", {}, t("none"));
}

export async function recordPage(main: HTMLElement, params: URLSearchParams): Promise<void> {
  main.append(h("h1", {}, t("record")), await explorer(params));
  main.append(await guarded(t("roles"), "roles-heading", roles));
  main.append(await guarded(t("moderation"), "moderation-heading", () => actions("moderation")));
  main.append(await guarded(t("admin"), "admin-heading", () => actions("admin")));
  main.append(await guarded(t("registrar"), "registrar-heading", () => actions("registrar")));
}
