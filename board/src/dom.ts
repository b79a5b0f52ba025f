// A small element builder: the board writes text with textContent only, never HTML, so nothing
// a resident wrote can become markup.
type Child = Node | string | number | null | undefined | false;
type Attributes = Record<string, string | number | boolean | EventListener | undefined>;

export function h(tag: string, attributes: Attributes = {}, ...children: Child[]): HTMLElement {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}

/** Numbers are right-aligned so their digits line up; words stay left. */
function numeric(cell: Child): boolean {
  if (typeof cell === "number") return true;
  if (typeof cell === "string") return /^[-—\d\s\u00a0\u202f.,%/]+$/.test(cell);
  return cell instanceof HTMLElement && cell.classList.contains("num");
}

/** A table with a caption, header cells and rows; `testid` names it for the tests. */
export function table(caption: string, headers: string[], rows: Child[][], testid?: string): HTMLElement {
  return h(
    "table",
    { "data-testid": testid },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ...headers.map((text) => h("th", { scope: "col" }, text)))),
    h("tbody", {}, ...rows.map((row) => h("tr", {}, ...row.map((cell, i) => (i === 0 ? h("th", { scope: "row" }, cell) : h("td", { class: numeric(cell) ? "num" : undefined }, cell)))))),
  );
}

export function link(href: string, text: string): HTMLElement {
  return h("a", { href }, text);
}
