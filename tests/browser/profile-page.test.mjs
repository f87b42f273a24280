// End-to-end test of the profile page in headless Chromium (driven by ./run.sh, which starts
// the server and mints the token). Walks the whole flow of issue 6 against the real API and
// fails on any error, any CSP violation or any uncaught page error.
//
// Environment: BASE_URL, TOKEN, EMAIL, MAX_UPLOAD_BYTES, WORK_DIR (temp), ARTIFACTS_DIR,
// CHROMIUM (default /usr/bin/chromium). MOCK_AVATAR=1 answers the avatar endpoints from the
// test itself; it exists only to work on the page before those endpoints are deployed.
import { chromium } from 'playwright-core';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { makeJpeg, installAvatarMock, openBrowser } from './helpers.mjs';

const AXE = await fs.readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

// WCAG 2.1 A/AA checks with axe-core. CDP evaluation is not subject to the page's CSP, so
// the page keeps its real policy while axe is injected.
async function audit(label) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
  }));
  const found = result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  check(found.length === 0, `accessibility (${label}):\n  ${found.join('\n  ')}`);
  check(result.passes.length > 10, `axe ran only ${result.passes.length} checks`);
  console.log(`     axe (${label}): ${result.passes.length} rules pass, no violations`);
}

const FIXTURES = fileURLToPath(new URL('../../fixtures/images/', import.meta.url));

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is not set; run tests/browser/run.sh`);
  return v;
};
const BASE = env('BASE_URL');
const TOKEN = env('TOKEN');
const EMAIL = env('EMAIL');
const MAX_UPLOAD = Number(env('MAX_UPLOAD_BYTES'));
const WORK = env('WORK_DIR');
const ARTIFACTS = env('ARTIFACTS_DIR');
const MOCK = process.env.MOCK_AVATAR === '1';

// 4xx answers are provoked on purpose (forged token, bad name) and checked by the steps
// themselves; anything else (CSP violations, script errors, 5xx) is a failure.
const { context, page, problems, step, check, userDataDir } = await openBrowser({
  chromium, workDir: WORK, baseURL: BASE,
  allow: (text) => /Failed to load resource: .*status of 4\d\d/.test(text),
});

const api = (method, p, data) => context.request.fetch(p, {
  method, data, headers: { Authorization: `Bearer ${TOKEN}` },
});
const profilePath = `/v1/profiles/${encodeURIComponent(EMAIL)}`;

try {
  const fixture = await makeJpeg(context, 640, 400);
  await fs.writeFile(path.join(WORK, 'fixture.jpg'), fixture);
  if (MOCK) await installAvatarMock(context, fixture);

  await step('page is served with a strict CSP', async () => {
    const res = await page.goto('/');
    const csp = res.headers()['content-security-policy'] || '';
    check(csp.includes("default-src 'self'") && csp.includes('img-src'), `CSP header is ${csp}`);
    check(!csp.includes('unsafe-inline'), 'CSP allows inline code');
    await page.evaluate(() => document.addEventListener('securitypolicyviolation',
      (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`)));
    await page.locator('#dev-email').waitFor();
    await audit('sign-in');
  });

  await step('a forged token in the session shows the server message', async () => {
    const [h, p] = TOKEN.split('.');
    await page.evaluate((t) => sessionStorage.setItem('moocard.token', t), `${h}.${p}.AAAA`);
    await page.reload();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    check(/sign in again/.test(await alert.textContent()), `alert: ${await alert.textContent()}`);
    check(await page.locator('#app').isHidden(), 'signed in with a forged token');
    check(await page.evaluate(() => !sessionStorage.getItem('moocard.token')), 'forged token kept');
    await fs.mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'profile-page-signin.png') });
  });

  await step('one-click dev sign-in (no token pasting)', async () => {
    check(await page.locator('#signin-oidc').isHidden(), 'provider sign-in shown in dev mode');
    await page.locator('#dev-email').fill(EMAIL);
    await page.getByRole('button', { name: 'Sign in as this email', exact: true }).click();
    await page.locator('#who-email').getByText(EMAIL).waitFor();
    check(await page.getByRole('alert').isHidden(), 'error still shown');
    check(await page.evaluate(() => !!sessionStorage.getItem('moocard.token')), 'token not kept');
  });

  await step('set the display name', async () => {
    await page.getByLabel('Display name').fill('Ada Lovelace');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('#profile-name').getByText('Ada Lovelace').waitFor();
    const body = await (await api('GET', profilePath)).json();
    check(body.display_name === 'Ada Lovelace', `stored display_name ${body.display_name}`);
  });

  await step('a refused display name shows the server message', async () => {
    await page.getByLabel('Display name').fill('Ada\u0007Lovelace');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('alert').getByText('display_name must not contain control characters').waitFor();
    check(await page.locator('#profile-name').textContent() === 'Ada Lovelace', 'name changed');
  });

  await step('session survives a reload', async () => {
    await page.reload();
    await page.locator('#profile-name').getByText('Ada Lovelace').waitFor();
  });

  await step('limits are read from /v1/limits', async () => {
    const limits = await (await context.request.get('/v1/limits')).json();
    check(limits.max_upload_bytes === MAX_UPLOAD, `server limit ${limits.max_upload_bytes}`);
    await page.locator('#limits-help').getByText('KiB').waitFor();
  });

  await step('unsupported file is refused before upload', async () => {
    await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') });
    const alert = page.getByRole('alert');
    await alert.getByText('is not a supported picture').waitFor();
  });

  await step('too-large file (drag and drop) is refused before upload', async () => {
    let sent = false;
    page.on('request', (r) => { if (r.method() === 'PUT') sent = true; });
    const dt = await page.evaluateHandle((n) => {
      const bytes = new Uint8Array(n);
      bytes.set([0xff, 0xd8, 0xff, 0xe0]);
      const t = new DataTransfer();
      t.items.add(new File([bytes], 'huge.jpg', { type: 'image/jpeg' }));
      return t;
    }, MAX_UPLOAD + 1);
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: dt });
    const alert = page.getByRole('alert');
    await alert.getByText('is too large').waitFor();
    const text = await alert.textContent();
    check(text.includes(`${+(MAX_UPLOAD / 1024).toFixed(1)} KiB`), `message lacks the limit: ${text}`);
    check(!sent, 'the too-large file was sent');
    check(await page.locator('#cropper').isHidden(), 'cropper shown for a refused file');
  });

  await step('too many pixels: downscaled in the browser, not refused', async () => {
    const wide = await makeJpeg(context, 2100, 60);
    await page.setInputFiles('#file', { name: 'wide.jpg', mimeType: 'image/jpeg', buffer: wide });
    await page.locator('#crop-readout').getByText('of 2000 × 57.').waitFor();
    check(/downscaled/.test(await page.getByRole('status').textContent()), 'no downscale note');
    check(await page.getByRole('alert').isHidden(), 'error shown for a downscaled picture');
    await page.getByRole('button', { name: 'Cancel' }).click();
  });

  await step('a phone photo over the byte limit is downscaled, not refused', async () => {
    const photo = path.join(FIXTURES, 'photo-hubble.jpg');
    check((await fs.stat(photo)).size > MAX_UPLOAD, 'fixture is not over the limit');
    await page.setInputFiles('#file', photo);
    const status = page.getByRole('status');
    await status.getByText('downscaled here').waitFor();
    check(await page.locator('#cropper').isVisible(), 'cropper hidden');
    check(await page.getByRole('alert').isHidden(), 'error shown for a downscaled photo');
    await page.getByRole('button', { name: 'Cancel' }).click();
  });

  await step('EXIF orientation: the crop works on upright pixels', async () => {
    // Stored 64 x 96 with orientation 6: upright it is 96 x 64, which is what ?crop= means.
    await page.setInputFiles('#file', path.join(FIXTURES, 'orient-6-le.jpg'));
    await page.locator('#crop-readout').getByText('Crop: 64 × 64 pixels from (16, 0) of 96 × 64.').waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    check(await page.locator('#cropper').isHidden(), 'cancel kept the cropper');
  });

  let expected;
  await step('pick a picture and choose the crop with the keyboard', async () => {
    await page.setInputFiles('#file', { name: 'fixture.jpg', mimeType: 'image/jpeg', buffer: fixture });
    const readout = page.locator('#crop-readout');
    await readout.getByText('Crop: 400 × 400 pixels from (120, 0) of 640 × 400.').waitFor();
    check(await page.getByRole('alert').isHidden(), 'error shown for a good file');
    const box = page.locator('#crop-box');
    check(await box.evaluate((el) => el === document.activeElement), 'crop area not focused');
    for (let i = 0; i < 5; i++) await box.press('-'); // 400 -> 360, centred at (320, 200)
    await box.press('Shift+ArrowLeft'); // x 140 -> 100
    await box.press('ArrowUp'); // y 20 -> 16
    expected = { x: 100, y: 16, size: 360 };
    await readout.getByText('Crop: 360 × 360 pixels from (100, 16)').waitFor();
    // The drag handles work as well: a pointer drag moves the square.
    const b = await box.boundingBox();
    await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2);
    await page.mouse.down();
    await page.mouse.move(b.x + b.width / 2 + 400, b.y + b.height / 2, { steps: 4 });
    await page.mouse.up();
    await readout.getByText('Crop: 360 × 360 pixels from (280, 16)').waitFor();
    expected.x = 280;
    await fs.mkdir(ARTIFACTS, { recursive: true });
    await page.locator('#cropper').screenshot({ path: path.join(ARTIFACTS, 'profile-page-crop.png') });
    await audit('crop');
  });

  await step('upload with progress, then queued -> ready', async () => {
    const states = new Set();
    page.on('response', async (r) => {
      if (r.request().method() === 'GET' && r.url().endsWith('/avatar') && r.ok()) {
        states.add((await r.json().catch(() => ({}))).state);
      }
    });
    const [req] = await Promise.all([
      page.waitForRequest((r) => r.method() === 'PUT'),
      page.getByRole('button', { name: 'Upload picture' }).click(),
    ]);
    const url = new URL(req.url());
    const { x, y, size } = expected;
    check(url.searchParams.get('crop') === `${x},${y},${size},${size}`, `crop sent: ${url.search}`);
    check(req.headers()['content-type'] === 'image/jpeg', `content type ${req.headers()['content-type']}`);
    const res = await req.response();
    check(res.status() === 202, `PUT answered ${res.status()}: ${await res.text()}`);
    const state = page.locator('#job-state');
    await page.locator('#job-state[data-state="ready"], #job-state[data-state="failed"]')
      .waitFor({ timeout: 90_000 });
    check(await state.getAttribute('data-state') === 'ready', `processing ended: ${await state.textContent()}`);
    console.log(`     states seen while polling: ${[...states].join(', ')}`);
  });

  await step('the result renders at every size', async () => {
    const limits = await (await context.request.get('/v1/limits')).json();
    const sizes = [...limits.sizes].sort((a, b) => a - b);
    for (const s of sizes) {
      const img = page.locator(`#sizes img[data-size="${s}"]`);
      await img.waitFor();
      await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
      const [w, h] = await img.evaluate((el) => [el.naturalWidth, el.naturalHeight]);
      check(MOCK || (w === s && h === s), `${s} px image is ${w} x ${h}`);
    }
    await page.waitForFunction(() => {
      const el = document.getElementById('current');
      return el.complete && el.naturalWidth > 0;
    });
    await page.locator('#sizes-title').scrollIntoViewIfNeeded();
    await fs.mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'profile-page.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'profile-page-mobile.png'), fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    check(!overflow, 'the page scrolls sideways at 390 px');
    await page.setViewportSize({ width: 1280, height: 900 });
    await audit('result, light');
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: path.join(ARTIFACTS, 'profile-page-dark.png'), fullPage: true });
    await audit('result, dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  await step('the WebP and AVIF variants are listed and decode in the browser', async () => {
    for (const fmt of ['webp', 'avif']) {
      const links = page.locator(`#formats [data-format="${fmt}"] a`);
      await links.first().waitFor();
      const sizes = await links.evaluateAll((as) => as.map((a) => [Number(a.dataset.size), a.href]));
      check(MOCK || sizes.length === 5, `${fmt}: ${sizes.length} links`);
      for (const [size, href] of sizes) {
        // Decoded by Chromium itself: an <img> that loads has the variant's pixel size.
        const [w, h, type] = await page.evaluate(async (src) => {
          const res = await fetch(src);
          const blob = await res.blob();
          const img = new Image();
          img.src = URL.createObjectURL(blob);
          await img.decode();
          return [img.naturalWidth, img.naturalHeight, blob.type];
        }, href);
        check(MOCK || (w === size && h === size), `${fmt} ${size} px decodes as ${w} x ${h}`);
        check(MOCK || type === `image/${fmt}`, `${fmt} ${size} px served as ${type}`);
      }
    }
  });

  await step('a picture that fails processing shows the reason', async () => {
    await page.setInputFiles('#file', path.join(FIXTURES, 'truncated.png'));
    await page.locator('#crop-readout').getByText('of 200 × 200').waitFor();
    await page.getByRole('button', { name: 'Upload picture' }).click();
    const state = page.locator('#job-state');
    await page.locator('#job-state[data-state="failed"]').waitFor({ timeout: 90_000 });
    const text = await state.textContent();
    check(/^Processing failed: \S/.test(text), `failure text: ${text}`);
    console.log(`     ${text}`);
    // The previous picture stays live (API.md: a failed upload keeps the previous avatar).
    check(await page.locator('#sizes img').count() > 0, 'the previous picture is gone');
  });

  await step('delete the picture', async () => {
    await page.getByRole('button', { name: 'Delete picture' }).click();
    await page.locator('#sizes-empty').waitFor();
    const body = await (await api('GET', `${profilePath}/avatar`)).json();
    check(MOCK || body.state === 'none', `avatar state after delete: ${body.state}`);
  });

  await step('delete the profile after confirming', async () => {
    await page.getByRole('button', { name: 'Delete profile…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('status').getByText('Nothing was deleted.').waitFor();
    await page.getByRole('button', { name: 'Delete profile…' }).click();
    await dialog.getByRole('button', { name: 'Delete profile' }).click();
    await page.getByRole('status').getByText('Your profile was deleted.').waitFor();
    const body = await (await api('GET', profilePath)).json();
    check(body.display_name === null, `display_name after delete: ${body.display_name}`);
  });

  check(problems.length === 0, `browser reported problems:\n  ${problems.join('\n  ')}`);
  console.log('PASS profile page end-to-end');
} catch (err) {
  console.error(`FAIL ${err.message}`);
  if (problems.length) console.error(`browser problems:\n  ${problems.join('\n  ')}`);
  await fs.mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'profile-page-failure.png'), fullPage: true })
    .catch(() => {});
  process.exitCode = 1;
} finally {
  await context.close();
  await fs.rm(userDataDir, { recursive: true, force: true });
}
