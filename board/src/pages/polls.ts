// Polls: the list (open and closed) and one poll's page, whose chart follows the live tally
// over Server-Sent Events.
import { json, type Poll, type Tally } from "../api";
import { barFigure, lineChart } from "../chart";
import { h, link, table } from "../dom";
import { clock, date, num, percent, t, word } from "../i18n";

interface PollPage {
  polls: Poll[];
  next_after?: number | null;
}

async function allPolls(): Promise<Poll[]> {
  const polls: Poll[] = [];
  let after: number | null | undefined = undefined;
  do {
    const query: string = after === undefined || after === null ? "" : `&after=${after}`;
    const page: PollPage = await json<PollPage>(`/v1/polls?limit=100${query}`);
    polls.push(...page.polls);
    after = page.next_after;
  } while (after !== undefined && after !== null && polls.length < 10000);
  return polls;
}

function pollRows(polls: Poll[]): (string | HTMLElement)[][] {
  return polls.map((poll) => [link(`#/poll/${poll.id}`, poll.title), word(poll.status), date(poll.opens_at), date(poll.closes_at)]);
}

export async function pollList(main: HTMLElement): Promise<void> {
  const polls = await allPolls();
  const open = polls.filter((p) => p.status !== "closed").reverse();
  const closed = polls.filter((p) => p.status === "closed").reverse();
  const headers = [t("poll"), t("status"), t("opens"), t("closes")];
  main.append(
    h("h1", {}, t("nav_polls")),
    open.length ? table(t("open_polls"), headers, pollRows(open), "open-polls") : h("p", {}, t("open_polls"), ": ", t("none")),
    closed.length ? table(t("closed_polls"), headers, pollRows(closed), "closed-polls") : h("p", {}, t("closed_polls"), ": ", t("none")),
  );
}

interface ClosePayload {
  body: { final_tally: { counts: number[]; turnout: number; superseded_ballots: number }; checkpoint: { size: number; root: string } };
}

/** The close event's checkpoint, read from the log itself. */
async function closeCheckpoint(position: number): Promise<HTMLElement> {
  const page = await json<{ entries: { payload: string }[] }>(`/v1/log/entries?from=${position}&limit=1`);
  const payload = JSON.parse(page.entries[0].payload) as ClosePayload;
  const checkpoint = payload.body.checkpoint;
  return h(
    "section",
    { "aria-labelledby": "close-heading" },
    h("h2", { id: "close-heading" }, t("close_checkpoint")),
    h("dl", {}, h("dt", {}, t("position")), h("dd", {}, link(`#/record?from=${position}`, num(position))), h("dt", {}, t("size")), h("dd", {}, num(checkpoint.size)), h("dt", {}, t("root")), h("dd", { class: "hash" }, checkpoint.root)),
  );
}

interface TurnoutView {
  districts: { district: string; turnout: number }[];
  unattested: number;
}

async function districtTurnout(poll: number): Promise<HTMLElement> {
  const section = h("section", { "aria-labelledby": "district-heading" }, h("h2", { id: "district-heading" }, t("turnout_by_district")));
  const response = await fetch(`/v1/polls/${poll}/turnout`);
  if (response.status === 403) {
    section.append(h("p", { class: "sealed" }, t("sealed")));
  } else if (response.status === 404 || response.status === 405) {
    section.append(h("p", { class: "unavailable" }, t("not_available")));
  } else if (!response.ok) {
    section.append(h("p", { class: "unavailable" }, t("failed", response.status)));
  } else {
    const view = (await response.json()) as TurnoutView;
    const labels = [...view.districts.map((d) => d.district), t("no_district")];
    const values = [...view.districts.map((d) => d.turnout), view.unattested];
    section.append(barFigure(t("turnout_by_district"), t("district"), labels, values, "district-turnout"));
  }
  return section;
}

function tallyBlock(poll: Poll, tally: Tally): HTMLElement {
  const total = tally.counts.reduce((a, b) => a + b, 0);
  const rows = poll.options.map((option, i) => [option, h("span", { "data-count": i, class: "num" }, num(tally.counts[i] ?? 0)), total ? percent((tally.counts[i] ?? 0) / total) : "—"]);
  return h(
    "div",
    { "data-testid": "tally", "data-log-size": tally.log_size, "data-counts": tally.counts.join(","), "data-turnout": tally.turnout },
    h(
      "dl",
      { class: "figures" },
      h("dt", {}, t("turnout")),
      h("dd", { "data-testid": "turnout" }, num(tally.turnout)),
      h("dt", {}, t("superseded")),
      h("dd", { "data-testid": "superseded" }, num(tally.superseded_ballots)),
      h("dt", {}, t("log_size")),
      h("dd", {}, num(tally.log_size)),
    ),
    barFigure(tally.is_final ? t("final_result") : t("running_tally"), t("option"), poll.options, poll.options.map((_, i) => tally.counts[i] ?? 0), "counts"),
    table(t("share"), [t("option"), t("votes"), t("share")], rows, "shares"),
  );
}

async function readTally(poll: number): Promise<Tally | "sealed"> {
  const response = await fetch(`/v1/polls/${poll}/tally`);
  if (response.status === 403) return "sealed";
  if (!response.ok) throw new Error(`${response.status}`);
  return (await response.json()) as Tally;
}

function header(poll: Poll): HTMLElement {
  const audience = poll.audience.kind === "districts" ? `${word("districts")}: ${(poll.audience.districts ?? []).join(", ")}` : word(poll.audience.kind);
  return h(
    "header",
    {},
    h("h1", {}, poll.title),
    poll.description ? h("p", {}, poll.description) : null,
    h("dl", { class: "figures" }, h("dt", {}, t("status")), h("dd", { "data-testid": "poll-status" }, word(poll.status)), h("dt", {}, t("opens")), h("dd", {}, date(poll.opens_at)), h("dt", {}, t("closes")), h("dd", {}, date(poll.closes_at)), h("dt", {}, t("audience")), h("dd", {}, audience)),
  );
}

/** Follows the tally over SSE, redrawing at most once per animation frame. */
function follow(poll: Poll, holder: HTMLElement, first: Tally, signal: AbortSignal): void {
  const times = [Date.now() / 1000];
  const turnouts = [first.turnout];
  const history = lineChart(times, [{ label: t("turnout"), values: turnouts }]);
  // The chart's table: the last ten changes, newest first.
  const historyTable = (): HTMLElement => {
    const rows = times.map((time, i) => [clock(time), num(turnouts[i])]).slice(-10).reverse();
    return table(t("chart_table") + ": " + t("turnout_history"), [t("time"), t("turnout")], rows, "turnout-history");
  };
  let historyRows = historyTable();
  const historySection = h("section", { "aria-labelledby": "history-heading" }, h("h2", { id: "history-heading" }, t("turnout_history")), h("p", { class: "live" }, t("live")), history.element, historyRows);
  holder.after(historySection);
  let latest = first;
  let scheduled = false;
  const source = new EventSource(`/v1/polls/${poll.id}/tally/stream`);
  signal.addEventListener("abort", () => source.close());
  source.addEventListener("tally", (event) => {
    latest = JSON.parse((event as MessageEvent).data) as Tally;
    // The stream opens with the tally already drawn: the history keeps changes only.
    if (latest.turnout !== turnouts[turnouts.length - 1]) {
      times.push(Date.now() / 1000);
      turnouts.push(latest.turnout);
    }
    if (latest.is_final) source.close();
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      holder.replaceChildren(tallyBlock(poll, latest));
      history.update(times, [{ label: t("turnout"), values: turnouts }]);
      const next = historyTable();
      historyRows.replaceWith(next);
      historyRows = next;
    });
  });
}

export async function pollPage(main: HTMLElement, id: number, signal: AbortSignal): Promise<void> {
  const [poll, tally] = await Promise.all([json<Poll>(`/v1/polls/${id}`), readTally(id)]);
  main.append(header(poll));
  const holder = h("div", {});
  main.append(holder);
  if (tally === "sealed") {
    holder.append(h("p", { class: "sealed", "data-testid": "sealed" }, t("sealed")));
  } else {
    holder.append(tallyBlock(poll, tally));
    if (!tally.is_final) follow(poll, holder, tally, signal);
  }
  main.append(await districtTurnout(id));
  if (poll.closed_at_position !== undefined && poll.closed_at_position !== null) main.append(await closeCheckpoint(poll.closed_at_position));
}
