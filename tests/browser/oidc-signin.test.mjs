// The profile page signing in through a real OpenID provider (tests/oidc/provider.mjs, the
// npm `oidc-provider`) with the authorization code flow and PKCE, in headless Chromium:
// sign in, upload a picture, see it `ready`, sign out. Driven by ./run.sh, which starts the
// provider and a moocard server configured with its issuer.
//
// Environment: BASE_URL (moocard), ISSUER, EMAIL (the account the provider signs in),
// WORK_DIR, ARTIFACTS_DIR, CHROMIUM.
import { chromium } from 'playwright-core';
import fs from 'node:fs/promises';
import { openBrowser } from './helpers.mjs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const env = (name) => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set; run tests/browser/run.sh`);
  return v;
};
const BASE = env('BASE_URL');
const ISSUER = env('ISSUER');
const EMAIL = env('EMAIL');
const WORK = env('WORK_DIR');
const ARTIFACTS = env('ARTIFACTS_DIR');
const PHOTO = fileURLToPath(new URL('../../fixtures/images/photo-hubble.jpg', import.meta.url));

// Chromium's own favicon probes answer 404; any other console error fails the test.
const { context, page, problems, step, check } = await openBrowser({
  chromium, workDir: WORK, baseURL: BASE,
  allow: (text) => /Failed to load resource: .*status of 404/.test(text),
});
context.setDefaultTimeout(20_000);

let failed = null;
try {
  await step('the page offers the provider, not a dev sign-in', async () => {
    const res = await page.goto('/');
    const csp = res.headers()['content-security-policy'] || '';
    check(csp.includes(`connect-src 'self' ${ISSUER}`), `CSP: ${csp}`);
    await page.locator('#signin-start').waitFor();
    check(await page.locator('#signin-dev').isHidden(), 'dev sign-in shown with an issuer');
    check(await page.locator('#token').count() === 0, 'a token field is still there');
  });

  await step('code flow with PKCE through the provider and back', async () => {
    const [authorize] = await Promise.all([
      page.waitForRequest((r) => r.url().startsWith(`${ISSUER}/auth?`)),
      page.getByRole('button', { name: 'Sign in', exact: true }).click(),
    ]);
    const q = new URL(authorize.url()).searchParams;
    check(q.get('code_challenge_method') === 'S256' && q.get('code_challenge'), 'no PKCE');
    check(q.get('state') && q.get('nonce'), 'no state or nonce');
    check(q.get('redirect_uri') === `${BASE}/`, `redirect_uri ${q.get('redirect_uri')}`);
    await page.locator('#who-email').getByText(EMAIL).waitFor();
    check(new URL(page.url()).search === '', `the code stayed in the URL: ${page.url()}`);
    check(await page.evaluate(() => !!sessionStorage.getItem('moocard.token')), 'token not kept');
    check(await page.evaluate(() => !sessionStorage.getItem('moocard.signin')), 'verifier kept');
  });

  // The server has the small upload limit of run.sh: the 516 KiB photo is downscaled in
  // the browser first, and the server processes the result like any upload.
  await step('upload a photo (downscaled in the browser) and see it ready', async () => {
    await page.locator('#file').setInputFiles(PHOTO);
    await page.getByRole('status').getByText('downscaled here').waitFor();
    await page.getByRole('button', { name: 'Upload picture' }).click();
    await page.locator('#job-state[data-state="ready"], #job-state[data-state="failed"]')
      .waitFor({ timeout: 90_000 });
    const state = await page.locator('#job-state').getAttribute('data-state');
    check(state === 'ready', `processing ended ${state}`);
    await fs.mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'oidc-signed-in.png') });
  });

  await step('sign out', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#signin-start').waitFor();
    check(await page.evaluate(() => !sessionStorage.getItem('moocard.token')), 'token kept');
  });
  check(problems.length === 0, problems.join('\n'));
} catch (e) {
  failed = e;
} finally {
  await context.close();
}
if (failed) {
  console.error(`FAIL ${failed.message}`);
  process.exit(1);
}
console.log('oidc sign-in: all steps passed');
