// linkplane's GraphiQL: the stock GraphiQL 4 IDE plus a token bar. The page is served without
// a token (it holds no data); every request it makes carries `Authorization: Bearer <token>`
// from the bar, kept in sessionStorage (this tab only, never in a URL).
import React, { useEffect, useMemo, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { parse } from 'graphql';
import { createClient } from 'graphql-ws';
import { setNonce } from 'get-nonce';
import 'graphiql/style.css';
import './token-bar.css';

const KEY = 'linkplane.token';

// GraphiQL's dialogs inject a <style> element (react-remove-scroll); the server's CSP allows
// styles from this origin plus one per-response nonce, handed over in this meta tag.
const nonce = document.querySelector('meta[name="csp-nonce"]');
if (nonce && nonce.content) setNonce(nonce.content);

function stored() {
  try {
    return sessionStorage.getItem(KEY) || '';
  } catch {
    return '';
  }
}

function keep(token) {
  try {
    if (token) sessionStorage.setItem(KEY, token);
    else sessionStorage.removeItem(KEY);
  } catch {
    // Storage disabled: the token lives as long as the page.
  }
}

function endpoints() {
  const http = new URL('/graphql', window.location.href);
  const ws = new URL('/graphql/ws', window.location.href);
  ws.protocol = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return { http: http.toString(), ws: ws.toString() };
}

function TokenBar({ token, onApply }) {
  const [draft, setDraft] = useState(token);
  const submit = (event) => {
    event.preventDefault();
    onApply(draft.trim());
  };
  return (
    <form className="lp-token-bar" onSubmit={submit} autoComplete="off">
      <span className="lp-brand">linkplane</span>
      <label htmlFor="lp-token">API token</label>
      <input
        id="lp-token"
        name="token"
        type="password"
        placeholder="lpt_… (linkplane token create --role viewer --name me)"
        value={draft}
        onChange={(e) => setDraft(e.target.value)}
        spellCheck={false}
      />
      <button type="submit">Use token</button>
      <button
        type="button"
        onClick={() => {
          setDraft('');
          onApply('');
        }}
      >
        Forget
      </button>
      <span className="lp-token-state" role="status">
        {token ? 'requests carry Authorization: Bearer …' : 'no token: the API answers UNAUTHENTICATED'}
      </span>
    </form>
  );
}

function App() {
  const [token, setToken] = useState(stored);
  const { fetcher, socket } = useMemo(() => {
    const { http, ws } = endpoints();
    if (!token) {
      // Every API request needs a token: say so instead of sending one that answers 401.
      const fetcher = async () => ({
        errors: [
          {
            message: 'Enter an API token in the bar above (linkplane token create --role viewer --name me).',
            extensions: { code: 'UNAUTHENTICATED' },
          },
        ],
      });
      return { fetcher, socket: null };
    }
    const auth = { Authorization: `Bearer ${token}` };
    // graphql-transport-ws on /graphql/ws; the token goes in connection_init.
    const socket = createClient({ url: ws, connectionParams: auth, lazy: true });
    const toolkit = createGraphiQLFetcher({ url: http, headers: auth, wsClient: socket });
    // The toolkit sends an operation over the socket only when handed its parsed document:
    // parse it here so subscriptions always go there (and queries and mutations over HTTP).
    const fetcher = (params, opts) => {
      let documentAST = opts && opts.documentAST;
      if (!documentAST) {
        try {
          documentAST = parse(params.query);
        } catch {
          documentAST = undefined;
        }
      }
      return toolkit(params, { ...(opts || {}), documentAST });
    };
    return { fetcher, socket };
  }, [token]);
  useEffect(() => () => socket && socket.dispose(), [socket]);
  const apply = (t) => {
    keep(t);
    setToken(t);
  };
  return (
    <div className="lp-root">
      <TokenBar token={token} onApply={apply} />
      <div className="lp-ide">
        {/* key: a new token re-runs introspection with it */}
        <GraphiQL key={token} fetcher={fetcher} shouldPersistHeaders={false} />
      </div>
    </div>
  );
}

createRoot(document.getElementById('graphiql')).render(<App />);
