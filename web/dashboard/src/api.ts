// The GraphQL client: the token lives in this tab's sessionStorage only and travels in the
// Authorization header, never in a URL.

const KEY = "linkplane.token";

export const token = {
  get: (): string | null => sessionStorage.getItem(KEY),
  set: (t: string): void => sessionStorage.setItem(KEY, t),
  clear: (): void => sessionStorage.removeItem(KEY),
};

export interface GqlError {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string };
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Called once when the server refuses the token (401): the app signs out. */
let unauthenticated: (why: string) => void = () => {};
export function onUnauthenticated(f: (why: string) => void): void {
  unauthenticated = f;
}

export interface Full<T> {
  data: T | null;
  errors: GqlError[];
}

/** Runs a document; answers data and errors as the server sent them (partial results kept). */
export async function gqlFull<T>(query: string, variables?: Record<string, unknown>): Promise<Full<T>> {
  const t = token.get();
  if (!t) throw new ApiError("not signed in", "UNAUTHENTICATED", 401);
  let res: Response;
  try {
    res = await fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${t}` },
      body: JSON.stringify({ query, variables: variables ?? {} }),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(`linkplane does not answer (${(e as Error).message})`, "NETWORK", 0);
  }
  let body: { data?: T | null; errors?: GqlError[] } | null = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const errors = body?.errors ?? [];
  const code = errors[0]?.extensions?.code ?? "";
  if (res.status === 401 || (code === "UNAUTHENTICATED" && !body?.data)) {
    const why = errors[0]?.message ?? "authentication required";
    unauthenticated(`The server refused the token (401: ${why}). Sign in again.`);
    throw new ApiError(why, "UNAUTHENTICATED", 401);
  }
  if (!body || (!res.ok && !body.data)) {
    const msg = errors[0]?.message ?? `HTTP ${res.status} ${res.statusText}`;
    if (res.status === 403 || code === "FORBIDDEN")
      throw new ApiError(`Forbidden (403): ${msg}. Your token's role does not allow this.`, "FORBIDDEN", 403);
    throw new ApiError(msg, code || `HTTP_${res.status}`, res.status);
  }
  return { data: body.data ?? null, errors };
}

/** Runs a document; throws on any error. */
export async function gql<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
  const r = await gqlFull<T>(query, variables);
  if (r.errors.length || !r.data) {
    const e = r.errors[0];
    const code = e?.extensions?.code ?? "ERROR";
    const msg = e?.message ?? "no data";
    if (code === "FORBIDDEN")
      throw new ApiError(`Forbidden (403): ${msg}. Your token's role does not allow this.`, code, 403);
    throw new ApiError(msg, code, 200);
  }
  return r.data;
}

export type Role = "VIEWER" | "OPERATOR" | "ADMIN";

/** What this server's schema offers, so the UI hides what it cannot do. */
export interface Caps {
  queries: Set<string>;
  mutations: Set<string>;
  gitSourceFields: Set<string>;
}

export interface Session {
  role: Role;
  caps: Caps;
}

const CAPS = `{
  __schema { queryType { fields { name } } mutationType { fields { name } } }
  gitSource: __type(name: "GitSource") { fields { name } }
}`;

interface CapsData {
  __schema: { queryType: { fields: { name: string }[] }; mutationType: { fields: { name: string }[] } | null };
  gitSource: { fields: { name: string }[] } | null;
}

const forbidden = (errs: GqlError[]): boolean => errs.some((e) => e.extensions?.code === "FORBIDDEN");

/** Learns the schema's capabilities and the token's role.
 *
 * The API has no `whoami`: the role is derived from guarded fields. `apiTokens` needs admin;
 * `Cluster.credentialsReference` needs operator (a nullable field: a viewer gets null and a
 * FORBIDDEN error). With no cluster at all, the role cannot be told apart from viewer, and the
 * UI stays read-only. If the server grows `whoami { role }`, that is used instead. */
export async function startSession(): Promise<Session> {
  const c = await gql<CapsData>(CAPS);
  const names = (l: { name: string }[] | undefined | null) => new Set((l ?? []).map((f) => f.name));
  const caps: Caps = {
    queries: names(c.__schema.queryType.fields),
    mutations: names(c.__schema.mutationType?.fields),
    gitSourceFields: names(c.gitSource?.fields),
  };
  let role: Role = "VIEWER";
  if (caps.queries.has("whoami")) {
    const r = await gqlFull<{ whoami: { role: string } }>("{ whoami { role } }").catch(() => null);
    const got = r?.data?.whoami?.role?.toUpperCase();
    if (got === "VIEWER" || got === "OPERATOR" || got === "ADMIN") return { role: got, caps };
  }
  // A non-admin gets `data: null` and 403 here (the field is non-null): not an error for us.
  const admin = await gqlFull<{ apiTokens: unknown[] }>("{ apiTokens { id } }").catch((e: ApiError) => {
    if (e.status === 401) throw e;
    return null;
  });
  if (admin && !admin.errors.length && admin.data) {
    role = "ADMIN";
  } else {
    const op = await gqlFull<{ clusters: { nodes: unknown[] } }>(
      "{ clusters(first: 1) { nodes { name credentialsReference } } }",
    );
    if (!forbidden(op.errors) && (op.data?.clusters.nodes.length ?? 0) > 0) role = "OPERATOR";
  }
  return { role, caps };
}

export const atLeast = (have: Role, want: Role): boolean => {
  const order: Role[] = ["VIEWER", "OPERATOR", "ADMIN"];
  return order.indexOf(have) >= order.indexOf(want);
};
