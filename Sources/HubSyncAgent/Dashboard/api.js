// The local API as the dashboard uses it: a session cookie (HttpOnly, set by the sign-in) and
// the session's CSRF token on every request that changes something (protocol/SPEC.md 9).

let csrf = null;

/** A refusal to show instead of the dashboard. */
export class SignInError extends Error {}

/**
 * Signs in: exchanges the one-time code of the address (`#code=…` or `?code=…`) for a session,
 * dropping the code from the address bar first; without a code, resumes the session the cookie
 * names. Throws a SignInError that says what to do.
 */
export async function signIn() {
  const found = /(?:^#|[?&])code=([0-9A-Za-z]+)/.exec(location.hash) || /[?&]code=([0-9A-Za-z]+)/.exec(location.search);
  if (found) {
    history.replaceState(null, '', '/');
    const r = await fetch('/v1/dashboard/session', {
      method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ code: found[1] }),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new SignInError('Sign-in refused: ' + (body.error || `HTTP ${r.status}`));
    csrf = body.csrf_token;
    return;
  }
  const r = await fetch('/v1/dashboard/session', { credentials: 'same-origin' });
  if (!r.ok) {
    throw new SignInError('Not signed in. Run `hubsync dashboard` on this computer and open the link it prints '
      + '(each link works once, for 2 minutes).');
  }
  csrf = (await r.json()).csrf_token;
}

/** Ends the session. */
export async function signOut() {
  await request('DELETE', '/v1/dashboard/session');
  csrf = null;
}

/** An API failure, with the agent's message. */
export class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/**
 * Sends a request and answers the parsed JSON. `body` is sent as JSON, or as it is when it is a
 * Blob (a file to import).
 */
export async function request(method, path, body) {
  const headers = {};
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf || '';
  let payload;
  if (body instanceof Blob) {
    payload = body;
    headers['Content-Type'] = 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  const r = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  const answer = await r.json().catch(() => null);
  if (!r.ok) {
    if (r.status === 401) throw new SignInError('The session ended (the agent restarted, or it expired). Run `hubsync dashboard` again.');
    throw new APIError(r.status, (answer && answer.error) || `the agent answered HTTP ${r.status}`);
  }
  return answer;
}

/** Percent-encodes one path segment. */
export function segment(text) {
  return encodeURIComponent(text);
}
