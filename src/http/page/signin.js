// Sign-in for the profile page (issue 12): the authorization code flow with PKCE as a
// public client against the configured issuer, or, on a dev server, a one-click sign-in.
// No token is ever pasted. The ID token ends in session storage (app.js), as before.
'use strict';

(() => {
  const FLOW_KEY = 'moocard.signin';
  const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const random = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));

  async function json(url, init) {
    const res = await fetch(url, init);
    let data = null;
    try { data = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) {
      const why = data && (data.message || data.error_description || data.error);
      throw new Error(why || `${url} answered ${res.status}`);
    }
    return data;
  }

  // What the server says about sign-in: dev mode or an issuer and client id.
  const config = () => json('/v1/auth/config');

  async function discovery(issuer) {
    const doc = await json(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
    if (!doc.authorization_endpoint || !doc.token_endpoint) {
      throw new Error('The identity provider does not publish its endpoints.');
    }
    return doc;
  }

  const redirectUri = () => `${location.origin}/`;

  // Leaves for the provider's sign-in page; state, nonce and the PKCE verifier stay in
  // this tab's session storage until it comes back.
  async function start(cfg) {
    const doc = await discovery(cfg.issuer);
    const flow = { state: random(16), nonce: random(16), verifier: random(32) };
    const challenge = b64url(await crypto.subtle.digest('SHA-256',
      new TextEncoder().encode(flow.verifier)));
    sessionStorage.setItem(FLOW_KEY, JSON.stringify(flow));
    const url = new URL(doc.authorization_endpoint);
    url.search = new URLSearchParams({
      client_id: cfg.client_id, response_type: 'code', scope: 'openid email',
      redirect_uri: redirectUri(), state: flow.state, nonce: flow.nonce,
      code_challenge: challenge, code_challenge_method: 'S256',
    });
    location.assign(url.href);
  }

  function payload(token) {
    const part = token.split('.')[1] || '';
    return JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/')));
  }

  // Back from the provider with ?code&state: checks state, redeems the code with the
  // verifier, checks the nonce and returns the ID token (null when not a callback).
  async function finish(cfg) {
    const params = new URLSearchParams(location.search);
    if (!params.has('code') && !params.has('error')) return null;
    history.replaceState(null, '', location.pathname);
    const flow = JSON.parse(sessionStorage.getItem(FLOW_KEY) || 'null');
    sessionStorage.removeItem(FLOW_KEY);
    if (params.has('error')) {
      throw new Error(`Sign-in was not completed: ${params.get('error_description') || params.get('error')}`);
    }
    if (!flow || params.get('state') !== flow.state) {
      throw new Error('This sign-in answer does not belong to this tab (state mismatch). Sign in again.');
    }
    const doc = await discovery(cfg.issuer);
    const tokens = await json(doc.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code', code: params.get('code'), redirect_uri: redirectUri(),
        client_id: cfg.client_id, code_verifier: flow.verifier,
      }),
    });
    if (!tokens.id_token) throw new Error('The identity provider sent no ID token.');
    if (payload(tokens.id_token).nonce !== flow.nonce) {
      throw new Error('The ID token is not for this sign-in (nonce mismatch). Sign in again.');
    }
    return tokens.id_token;
  }

  // Dev mode: a token for any email from the dev-only endpoint.
  async function devSignIn(email) {
    const data = await json('/v1/dev/sign-in', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email }),
    });
    return data.id_token;
  }

  window.moocardSignIn = { config, start, finish, devSignIn };
})();
