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
  const page = await json<{ entries: Entry[]; next_from?: number | null }>(`/v1/log/entries?from=${from}&limit=${signer || wanted ? 1000 : 50}`);
  const entries = page.entries.filter((e) => (!signer || e.signer === signer) && (!wanted || action(e) === wanted));
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
  const rows = entries.map((e) => [num(e.position), date(e.server_time), word(e.kind), action(e), short(e.signer), h("details", {}, h("summary", {}, t("payload")), h("pre", {}, e.payload))]);
  const next = page.next_from ?? null;
  return h(
    "section",
    { "aria-labelledby": "explorer-heading" },
    h("h2", { id: "explorer-heading" }, t("log_explorer")),
    form,
    rows.length ? table(t("log_explorer"), [t("position"), t("server_time"), t("kind"), t("action"), t("signer_key"), t("payload")], rows, "log-entries") : h("p", {}, t("none")),
    next !== null ? link(`#/record?from=${next}${signer ? `&signer=${signer}` : ""}${wanted ? `&action=${wanted}` : ""}`, t("more")) : null,
  );
}

interface Holder {
  key: string;
  role: string;
  department?: string | null;
  since?: string | null;
  since_position?: number | null;
  granted_at?: string | null;
  granted_at_position?: number | null;
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
  const answer = await json<Holder[] | { roles?: Holder[]; holders?: Holder[] }>("/v1/roles");
  const holders = Array.isArray(answer) ? answer : (answer.roles ?? answer.holders ?? []);
  const rows = holders.map((r) => [word(r.role), r.department ?? "—", short(r.key), date(r.since ?? r.granted_at), num(r.since_position ?? r.granted_at_position ?? 0)]);
  return rows.length ? table(t("roles"), [t("role"), t("department"), t("key"), t("since"), t("position")], rows, "roles") : h("p", {}, t("none"));
}

interface ActionView {
  position: number;
  server_time?: string;
  at?: string;
  action: string;
  author?: string;
  signer?: string;
  summary?: string;
  body?: unknown;
}

async function actions(kind: "moderation" | "admin"): Promise<HTMLElement> {
  const answer = await json<ActionView[] | { actions?: ActionView[]; entries?: ActionView[] }>(`/v1/log/actions?kind=${kind}`);
  const list = Array.isArray(answer) ? answer : (answer.actions ?? answer.entries ?? []);
  const rows = list.map((a) => [link(`#/record?from=${a.position}`, num(a.position)), date(a.server_time ?? a.at), word(a.action), short(a.author ?? a.signer ?? ""), a.summary ?? (a.body ? JSON.stringify(a.body) : "")]);
  return rows.length ? table(t(kind), [t("position"), t("time"), t("action"), t("by"), t("note")], rows, `actions-${kind}`) : h("p", {}, t("none"));
}

export async function recordPage(main: HTMLElement, params: URLSearchParams): Promise<void> {
  main.append(h("h1", {}, t("record")), await explorer(params));
  main.append(await guarded(t("roles"), "roles-heading", roles));
  main.append(await guarded(t("moderation"), "moderation-heading", () => actions("moderation")));
  main.append(await guarded(t("admin"), "admin-heading", () => actions("admin")));
}
