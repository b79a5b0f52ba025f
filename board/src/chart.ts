// Charts, each drawn beside a table of the same numbers (the table is what a screen reader and
// the tests read). Colours are the Okabe–Ito palette, readable with every common colour-vision
// deficiency, and series also differ by dash, so no meaning rests on colour alone.
import uPlot from "uplot";
import { h, table } from "./dom";
import { date, language, num, t } from "./i18n";

export const palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

const SVG = "http://www.w3.org/2000/svg";

function svg(tag: string, attributes: Record<string, string | number>): SVGElement {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

/** Horizontal bars, one per label, with the values written at their ends. */
export function barsSvg(labels: string[], values: number[]): SVGElement {
  const rowHeight = 28;
  const labelWidth = 220;
  const width = 640;
  const max = Math.max(1, ...values);
  const root = svg("svg", { viewBox: `0 0 ${width} ${rowHeight * labels.length + 4}`, role: "img", "aria-hidden": "true", class: "bars" });
  labels.forEach((label, i) => {
    const y = i * rowHeight + 2;
    const length = Math.round(((width - labelWidth - 80) * values[i]) / max);
    const name = svg("text", { x: labelWidth - 8, y: y + 18, "text-anchor": "end" });
    // Long labels are cut to fit the label column; the table beside the chart has them whole.
    name.textContent = label.length > 26 ? label.slice(0, 25) + "…" : label;
    const bar = svg("rect", { x: labelWidth, y: y + 4, width: length, height: rowHeight - 8, fill: palette[i % palette.length] });
    const value = svg("text", { x: labelWidth + length + 6, y: y + 18 });
    value.textContent = num(values[i]);
    root.append(name, bar, value);
  });
  return root;
}

/** A figure: a bar chart and its table; `testid` names the table for the tests. */
export function barFigure(caption: string, header: string, labels: string[], values: number[], testid: string): HTMLElement {
  const rows = labels.map((label, i) => [label, num(values[i])]);
  return h(
    "figure",
    { class: "chart" },
    h("figcaption", {}, caption),
    barsSvg(labels, values),
    table(t("chart_table") + ": " + caption, [header, t("count")], rows, testid),
  );
}

/** Time axis labels in the reader's locale (uPlot's own are English): seconds for a live
 * span, dates for months. */
function timeTicks(ticks: number[]): string[] {
  const span = ticks.length > 1 ? ticks[ticks.length - 1] - ticks[0] : 0;
  const options: Intl.DateTimeFormatOptions = span < 3600 ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : span < 5 * 86400 ? { day: "numeric", hour: "2-digit", minute: "2-digit" } : { year: "numeric", month: "short", day: "numeric" };
  const format = new Intl.DateTimeFormat(language, options);
  return ticks.map((v) => format.format(new Date(v * 1000)));
}

export interface Series {
  label: string;
  values: (number | null)[];
}

/** A time series drawn with uPlot; `times` are seconds since 1970. */
export function lineChart(times: number[], series: Series[], width = 640): { element: HTMLElement; update: (times: number[], series: Series[]) => void } {
  const element = h("div", { class: "uplot-holder", "aria-hidden": "true" });
  const options: uPlot.Options = {
    width,
    height: 240,
    legend: { show: series.length > 1 },
    cursor: { show: false },
    series: [
      { label: t("time"), value: (_u: uPlot, v: number) => (v === null ? "—" : date(new Date(v * 1000).toISOString())) },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: palette[i % palette.length],
        width: 2,
        dash: i % 2 === 1 ? [6, 4] : undefined,
        points: { show: times.length < 40 },
      })),
    ],
    axes: [{ values: (_u: uPlot, ticks: number[]) => timeTicks(ticks) }, { values: (_u: uPlot, ticks: number[]) => ticks.map((v) => num(v)) }],
    // One instant alone (a single month, say) would stretch the axis over years: give it a day
    // either side instead.
    scales: { x: { time: true, range: (_u: uPlot, min: number, max: number): uPlot.Range.MinMax => (min === max ? [min - 86400, max + 86400] : [min, max]) } },
  };
  const plot = new uPlot(options, [times, ...series.map((s) => s.values)] as uPlot.AlignedData, element);
  return {
    element,
    update: (nextTimes, nextSeries) => plot.setData([nextTimes, ...nextSeries.map((s) => s.values)] as uPlot.AlignedData),
  };
}
