// Tiny DOM helpers: elements are built with h()/s(), never from HTML strings, so no server value
// is ever parsed as markup (and the CSP needs no 'unsafe-inline').

export type Child = Node | string | number | null | undefined | false | Child[];
type AttrValue = string | number | boolean | null | undefined | ((ev: Event) => void);
export type Attrs = Record<string, AttrValue>;

function apply(el: Element, attrs: Attrs | null | undefined): void {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === "function") {
      el.addEventListener(k.replace(/^on/, "").toLowerCase(), v as EventListener);
    } else if (k === "value" && el instanceof HTMLInputElement) {
      el.value = String(v);
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
}

function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** An HTML element. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element. */
export function s(tag: string, attrs?: Attrs | null, ...children: Child[]): SVGElement {
  const el = document.createElementNS(SVG, tag);
  apply(el, attrs);
  append(el, children);
  return el as SVGElement;
}

/** Replaces an element's children. */
export function mount(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** "3 s ago", "5 min ago"… */
export function ago(iso: string | null | undefined): string {
  if (!iso) return "never";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 0) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** A timestamp shown as local time, with the ISO value as tooltip. */
export function when(iso: string | null | undefined): HTMLElement {
  if (!iso) return h("span", { class: "muted" }, "never");
  return h("time", { datetime: iso, title: iso }, ago(iso));
}

export function ms(v: number | null | undefined): string {
  return v === null || v === undefined ? "–" : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`;
}

export function rev(r: string | null | undefined): string {
  return r ? r.slice(0, 12) : "–";
}

/** Closed sets arrive as enums (`MIRRORED`) or strings (`Mirrored`, `remote-discovery`) depending
 * on the server version: compare them normalised. */
export function norm(v: unknown): string {
  return String(v ?? "").replace(/[^a-zA-Z]/g, "").toUpperCase();
}

/** A coloured state badge; `tone` is one of ok/warn/bad/unknown/info. */
export function badge(text: string, tone: string): HTMLElement {
  return h("span", { class: `badge ${tone}` }, text);
}

export function table(head: string[], rows: Child[][], attrs?: Attrs): HTMLElement {
  return h(
    "table",
    attrs ?? null,
    h("thead", null, h("tr", null, head.map((c) => h("th", null, c)))),
    h(
      "tbody",
      null,
      rows.length
        ? rows.map((r) => h("tr", null, r.map((c) => h("td", null, c))))
        : h("tr", null, h("td", { colspan: head.length, class: "muted" }, "nothing here")),
    ),
  );
}

export function link(href: string, ...children: Child[]): HTMLAnchorElement {
  return h("a", { href }, ...children);
}
