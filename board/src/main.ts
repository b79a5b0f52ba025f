// The board: one page, routed by the location's hash so the server serves one document at `/`.
import { json, NotAvailable, type LogHead } from "./api";
import { h } from "./dom";
import { witness, type Witness } from "./gossip";
import { dictionary, englishWords, language, num, setLanguage, t, type Key } from "./i18n";
import { checkPage } from "./pages/check";
import { complaintList, complaintPage, statisticsPage } from "./pages/complaints";
import { pollList, pollPage } from "./pages/polls";
import { proposalList, proposalPage } from "./pages/proposals";
import { recordPage } from "./pages/record";

const navigation: [string, Key][] = [
  ["#/polls", "nav_polls"],
  ["#/complaints", "nav_complaints"],
  ["#/complaints/list", "nav_complaint_list"],
  ["#/proposals", "nav_proposals"],
  ["#/record", "nav_record"],
  ["#/check", "nav_check"],
];

let witnessed: Witness | null = null;
let current: AbortController | null = null;

function copyable(label: string, note: string, testid: string): HTMLElement {
  const id = "note-" + testid;
  const area = h("textarea", { id, readonly: true, rows: 5, "data-testid": testid }, note) as HTMLTextAreaElement;
  const button = h("button", { type: "button" }, t("copy"));
  button.addEventListener("click", () => {
    area.select();
    void navigator.clipboard?.writeText(note).then(() => (button.textContent = t("copied")));
  });
  return h("div", { class: "note" }, h("label", { for: id }, label), area, button);
}

function banner(result: Witness | null): HTMLElement {
  if (result === null) return h("div", {});
  if (result.kind === "first") return h("p", { class: "witness", "data-testid": "witness", "data-state": "first" }, t("witness_first", num(result.now.size)));
  if (result.kind === "ok") return h("p", { class: "witness", "data-testid": "witness", "data-state": "ok" }, t("witness_ok", num(result.now.size), num(result.before.size)));
  if (result.kind === "rekeyed")
    return h(
      "div",
      { class: "alarm", role: "alert", "data-testid": "witness", "data-state": "rekeyed" },
      h("h2", {}, t("witness_alarm")),
      h("p", {}, t("witness_rekeyed")),
      copyable(t("seen_before"), result.before, "note-before"),
      copyable(t("seen_now"), result.now.note, "note-now"),
    );
  if (result.kind === "bad") return h("div", { class: "alarm", role: "alert", "data-testid": "witness", "data-state": "bad" }, h("h2", {}, t("witness_alarm")), h("p", {}, t("witness_bad")), copyable(t("seen_now"), result.note, "note-now"));
  return h(
    "div",
    { class: "alarm", role: "alert", "data-testid": "witness", "data-state": result.kind },
    h("h2", {}, t("witness_alarm")),
    h("p", {}, t(result.kind === "rewound" ? "witness_rewound" : "witness_forked")),
    h("p", {}, t("witness_copy")),
    copyable(t("seen_before"), result.before.note, "note-before"),
    copyable(t("seen_now"), result.now.note, "note-now"),
  );
}

function layout(): HTMLElement {
  const hash = location.hash.split("?")[0] || "#/polls";
  const switcher = h("button", { type: "button", class: "language", lang: language === "en" ? "ru" : "en", "data-testid": "language" }, language === "en" ? "Русский" : "English");
  switcher.addEventListener("click", () => {
    setLanguage(language === "en" ? "ru" : "en");
    void render();
  });
  return h(
    "header",
    { class: "top" },
    h("a", { href: "#main", class: "skip" }, t("skip")),
    h("p", { class: "brand" }, t("title")),
    h("nav", { "aria-label": t("menu") }, h("ul", {}, ...navigation.map(([href, key]) => h("li", {}, h("a", { href, "aria-current": hash === href ? "page" : undefined }, t(key)))))),
    h("div", { class: "tools" }, h("span", { id: "language-label" }, t("language"), ": "), switcher),
  );
}

async function page(main: HTMLElement, signal: AbortSignal): Promise<void> {
  const [path, query] = (location.hash.slice(1) || "/polls").split("?");
  const parts = path.split("/").filter(Boolean);
  const params = new URLSearchParams(query ?? "");
  const id = Number(parts[1]);
  if (parts[0] === "poll" && Number.isInteger(id)) return pollPage(main, id, signal);
  if (parts[0] === "complaints" && parts[1] === "list") return complaintList(main, params);
  if (parts[0] === "complaints") return statisticsPage(main);
  if (parts[0] === "complaint" && Number.isInteger(id)) return complaintPage(main, id);
  if (parts[0] === "proposals") return proposalList(main, params);
  if (parts[0] === "proposal" && Number.isInteger(id)) return proposalPage(main, id);
  if (parts[0] === "record") return recordPage(main, params);
  if (parts[0] === "check") return checkPage(main);
  return pollList(main);
}

async function render(): Promise<void> {
  current?.abort();
  current = new AbortController();
  const started = performance.now();
  document.title = t("title");
  document.documentElement.lang = language;
  const main = h("main", { id: "main", tabindex: -1 });
  document.body.replaceChildren(layout(), h("div", { id: "witness-slot" }, banner(witnessed)), main);
  main.append(h("p", { class: "loading" }, t("loading")));
  const content = h("div", {});
  try {
    await page(content, current.signal);
  } catch (error) {
    content.append(h("p", { class: "unavailable", role: "alert" }, error instanceof NotAvailable ? t("not_available") : t("failed", String(error))));
  }
  main.replaceChildren(...content.childNodes);
  main.dataset.ready = String(Math.round(performance.now() - started));
}

async function gossip(): Promise<void> {
  try {
    witnessed = await witness(await json<LogHead>("/v1/log"));
  } catch {
    witnessed = null;
  }
  document.getElementById("witness-slot")?.replaceChildren(banner(witnessed));
}

// The translation test reads both dictionaries from here.
(window as unknown as { veche: object }).veche = { dictionary, englishWords };
window.addEventListener("hashchange", () => void render());
void render();
void gossip();
