// A real OpenID provider (oidc-provider, a certified implementation) for moocard's tests.
//
// Listens on 127.0.0.1 (PORT, default 0 = any free port) and prints one JSON line
// {"issuer": "http://127.0.0.1:PORT"} when ready. One public client, `moocard-page`
// (code flow with PKCE, no secret), and accounts for any email: the interaction step
// signs in the `login_hint` email with email_verified true, so tests need no HTML forms.
//
// Test-only endpoints (never part of a real provider):
//   GET  /test/token?email=E  runs the whole code flow with PKCE as the client would and
//                             answers {"id_token": "..."}
//   POST /test/rotate         starts signing with a new key (the old one stays published)
import { createServer } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const CLIENT_ID = process.env.CLIENT_ID || 'moocard-page';
const REDIRECT_URI = process.env.REDIRECT_URI || 'http://127.0.0.1:8080/';
const EXTRA_REDIRECTS = (process.env.EXTRA_REDIRECTS || '').split(',').filter(Boolean);

let keys = [];
let provider;

async function newKey() {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: `k${keys.length + 1}-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
}

function build(issuer) {
  const p = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      token_endpoint_auth_method: 'none',
      redirect_uris: [REDIRECT_URI, ...EXTRA_REDIRECTS],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    jwks: { keys },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    // Put the email in the ID token itself (moocard reads it from there).
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: { keys: ['moocard-test-only'] },
    async findAccount(ctx, id) {
      return { accountId: id, claims: () => ({ sub: id, email: id, email_verified: true }) };
    },
    // The page runs on any loopback port in the tests.
    clientBasedCORS: () => true,
    ttl: { IdToken: 600, AccessToken: 600, Interaction: 600, Grant: 600, Session: 600 },
  });
  // The issuer is http://127.0.0.1 in the tests; moocard allows that on loopback only.
  p.proxy = false;
  return p;
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const accountId = details.params.login_hint || 'ada@example.org';
  const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope('openid email');
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } },
    { mergeWithLastSubmission: false });
}

// The code flow with PKCE, as a browser would run it, with a small cookie jar.
async function codeFlow(issuer, email) {
  const jar = new Map();
  const go = async (url) => {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const r = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const c of r.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
    return r;
  };
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(8).toString('hex');
  const auth = new URL('/auth', issuer);
  auth.search = new URLSearchParams({
    client_id: CLIENT_ID, response_type: 'code', scope: 'openid email', redirect_uri: REDIRECT_URI,
    code_challenge: challenge, code_challenge_method: 'S256', state, nonce: state, login_hint: email,
  });
  let r = await go(auth);
  for (let hops = 0; hops < 10 && r.status >= 300 && r.status < 400; hops++) {
    const next = new URL(r.headers.get('location'), issuer);
    if (next.href.startsWith(REDIRECT_URI)) {
      if (next.searchParams.get('state') !== state) throw new Error('state mismatch');
      const code = next.searchParams.get('code');
      if (!code) throw new Error(`no code: ${next.search}`);
      const t = await fetch(new URL('/token', issuer), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI,
          client_id: CLIENT_ID, code_verifier: verifier }),
      });
      const body = await t.json();
      if (!body.id_token) throw new Error(`token endpoint: ${JSON.stringify(body)}`);
      return body.id_token;
    }
    r = await go(next);
  }
  throw new Error(`the flow stopped at ${r.status}: ${await r.text()}`);
}

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (url.pathname.startsWith('/interaction/')) return await interaction(req, res);
    if (url.pathname === '/test/token') {
      const token = await codeFlow(issuer, url.searchParams.get('email') || 'ada@example.org');
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ id_token: token }));
    }
    if (url.pathname === '/test/rotate' && req.method === 'POST') {
      keys = [await newKey(), ...keys];
      provider = build(issuer);
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ kid: keys[0].kid }));
    }
    return provider.callback()(req, res);
  } catch (e) {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(String(e && e.stack || e));
  }
});

let issuer;
server.listen(Number(process.env.PORT || 0), '127.0.0.1', async () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  keys = [await newKey()];
  provider = build(issuer);
  process.stdout.write(`${JSON.stringify({ issuer, kid: keys[0].kid })}\n`);
});
