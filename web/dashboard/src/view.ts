// What every page gets, and the paging control shared by the list pages.

import type { Session } from "./api";
import { h, mount } from "./dom";
import type { TopologyEvent } from "./live";

export interface Ctx {
  session: Session;
  /** Path segments after the page name, e.g. `["east"]` for `#/clusters/east`. */
  rest: string[];
  /** Query of the hash route, e.g. `#/mirrors?cluster=west`. */
  params: URLSearchParams;
  /** Shows a message in the page's banner. */
  notify: (msg: string, tone?: "ok" | "bad" | "info") => void;
}

export interface View {
  el: HTMLElement;
  /** Called (debounced) after live events, and on the periodic refresh. */
  refresh?: () => void;
  /** Every event, before the debounced refresh. */
  onEvent?: (e: TopologyEvent) => void;
  dispose?: () => void;
}

export interface PageInfo {
  hasNextPage: boolean;
  endCursor: string | null;
}

/** Forward paging with a cursor stack (Relay `first`/`after`): never a full list. */
export class Pager {
  private stack: (string | null)[] = [];
  after: string | null = null;
  readonly el = h("nav", { class: "pager" });

  constructor(
    readonly first: number,
    private readonly reload: () => void,
  ) {}

  reset(): void {
    this.stack = [];
    this.after = null;
  }

  show(info: PageInfo, shown: number): void {
    const page = this.stack.length + 1;
    const from = this.stack.length * this.first + (shown ? 1 : 0);
    mount(
      this.el,
      h(
        "button",
        {
          type: "button",
          class: "prev",
          disabled: this.stack.length === 0,
          onclick: () => {
            this.after = this.stack.pop() ?? null;
            this.reload();
          },
        },
        "‹ Previous",
      ),
      h("span", { class: "muted" }, `page ${page} · rows ${from}–${this.stack.length * this.first + shown}`),
      h(
        "button",
        {
          type: "button",
          class: "next",
          disabled: !info.hasNextPage,
          onclick: () => {
            this.stack.push(this.after);
            this.after = info.endCursor;
            this.reload();
          },
        },
        "Next ›",
      ),
    );
  }
}

export function section(title: string, ...body: (Node | string | null)[]): HTMLElement {
  return h("section", { class: "card" }, h("h2", null, title), ...body);
}

export function failed(el: HTMLElement, e: unknown): void {
  mount(el, h("p", { class: "error", role: "alert" }, (e as Error).message ?? String(e)));
}

/** Remembers the last answer a page drew: `fresh(data)` is false when nothing changed, so the
 * periodic refresh leaves the DOM (focus, selection, a half-typed input) alone. */
export function changes(): (data: unknown) => boolean {
  let last = "";
  return (data) => {
    const sig = JSON.stringify(data);
    if (sig === last) return false;
    last = sig;
    return true;
  };
}
