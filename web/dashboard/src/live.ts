// A minimal graphql-transport-ws client for `topologyEvents` on /graphql/ws. The token goes in
// the `connection_init` payload (a browser cannot set headers on a WebSocket upgrade). Reconnects
// with backoff; the caller refetches what it shows when an event arrives or the link comes back.

import { token } from "./api";

export interface TopologyEvent {
  kind: string;
  link: string | null;
  cluster: string | null;
  namespace: string | null;
  name: string | null;
  state: string | null;
  alive: boolean | null;
  source: string | null;
  revision: string | null;
  result: string | null;
  receivedAt: string;
}

export type LiveStatus = "connecting" | "live" | "offline" | "refused";

const SUBSCRIPTION = `subscription Live { topologyEvents {
  kind link cluster namespace name state alive source revision result receivedAt } }`;

export class Live {
  private ws: WebSocket | null = null;
  private stopped = false;
  private attempt = 0;
  private timer = 0;

  constructor(
    private readonly onEvent: (e: TopologyEvent) => void,
    private readonly onStatus: (s: LiveStatus, detail?: string) => void,
  ) {}

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
    this.ws?.close(1000, "signed out");
    this.ws = null;
  }

  private connect(): void {
    const t = token.get();
    if (!t || this.stopped) return;
    this.onStatus("connecting");
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql/ws`;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, "graphql-transport-ws");
    } catch (e) {
      this.retry(String(e));
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${t}` } }));
    };
    ws.onmessage = (m) => {
      let msg: { type: string; id?: string; payload?: unknown };
      try {
        msg = JSON.parse(String(m.data));
      } catch {
        return;
      }
      switch (msg.type) {
        case "connection_ack":
          this.attempt = 0;
          this.onStatus("live");
          ws.send(JSON.stringify({ id: "topology", type: "subscribe", payload: { query: SUBSCRIPTION } }));
          break;
        case "next": {
          const p = msg.payload as { data?: { topologyEvents?: TopologyEvent } } | undefined;
          if (p?.data?.topologyEvents) this.onEvent(p.data.topologyEvents);
          break;
        }
        case "error":
          this.onStatus("refused", JSON.stringify(msg.payload));
          break;
        case "ping":
          ws.send(JSON.stringify({ type: "pong" }));
          break;
        default:
          break;
      }
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      // 4401/4403: the server refused the token at connection_init.
      if (e.code === 4401 || e.code === 4403 || /unauth|forbidden/i.test(e.reason)) {
        this.onStatus("refused", e.reason || `closed ${e.code}`);
      }
      this.retry(e.reason || `closed ${e.code}`);
    };
  }

  private retry(why: string): void {
    if (this.stopped) return;
    this.onStatus("offline", why);
    const delay = Math.min(15000, 500 * 2 ** this.attempt++);
    this.timer = window.setTimeout(() => this.connect(), delay);
  }
}
