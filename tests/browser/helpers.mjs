// Helpers for the browser test: a fixture JPEG drawn by Chromium itself (so the test needs
// no image tooling), and an optional mock of the avatar endpoints for page development.

/** Draws a `w` x `h` landscape picture and returns it as JPEG bytes. */
export async function makeJpeg(context, w, h) {
  const page = await context.newPage();
  try {
    const bytes = await page.evaluate(async ([w, h]) => {
      const c = new OffscreenCanvas(w, h);
      const g = c.getContext('2d');
      const sky = g.createLinearGradient(0, 0, 0, h);
      sky.addColorStop(0, '#2f6fdb');
      sky.addColorStop(1, '#a9d3ff');
      g.fillStyle = sky;
      g.fillRect(0, 0, w, h);
      g.fillStyle = '#ffd23f';
      g.beginPath();
      g.arc(w * 0.78, h * 0.25, h * 0.12, 0, Math.PI * 2);
      g.fill();
      g.fillStyle = '#3a9d4a';
      g.beginPath();
      g.ellipse(w * 0.35, h * 1.05, w * 0.6, h * 0.45, 0, 0, Math.PI * 2);
      g.fill();
      // A cow-ish face, so the crop is visibly a crop.
      g.fillStyle = '#ffffff';
      g.beginPath();
      g.ellipse(w * 0.5, h * 0.55, h * 0.22, h * 0.26, 0, 0, Math.PI * 2);
      g.fill();
      g.fillStyle = '#222';
      g.beginPath();
      g.ellipse(w * 0.45, h * 0.45, h * 0.07, h * 0.09, 0.4, 0, Math.PI * 2);
      g.fill();
      g.fillStyle = '#f4a6b8';
      g.beginPath();
      g.ellipse(w * 0.5, h * 0.7, h * 0.14, h * 0.09, 0, 0, Math.PI * 2);
      g.fill();
      g.fillStyle = '#222';
      for (const dx of [-0.04, 0.04]) {
        g.beginPath();
        g.arc(w * (0.5 + dx), h * 0.7, h * 0.02, 0, Math.PI * 2);
        g.fill();
        g.beginPath();
        g.arc(w * (0.5 + dx * 1.6), h * 0.5, h * 0.025, 0, Math.PI * 2);
        g.fill();
      }
      const blob = await c.convertToBlob({ type: 'image/jpeg', quality: 0.9 });
      return Array.from(new Uint8Array(await blob.arrayBuffer()));
    }, [w, h]);
    return Buffer.from(bytes);
  } finally {
    await page.close();
  }
}

/**
 * Answers PUT/GET/DELETE `.../avatar`, `/images/*` and `/avatar/*` from the test, walking
 * queued -> processing -> ready like the real worker, and patches `avatar` into profile
 * reads. Only for MOCK_AVATAR=1 runs; the real test uses the server.
 */
export async function installAvatarMock(context, fixture) {
  let avatar = { state: 'none', error: null, urls: null, updated_at: null };
  let polls = 0;
  let fail = false;
  const ready = () => ({
    state: 'ready', error: null, updated_at: new Date().toISOString(),
    urls: Object.fromEntries([32, 64, 128, 256, 512].map((s) => [String(s), `/images/mock-${s}`])),
  });
  const json = (route, status, body) => route.fulfill({
    status, contentType: 'application/json', body: JSON.stringify(body),
  });
  await context.route(/\/v1\/profiles\/[^/]+\/avatar(\?.*)?$/, async (route) => {
    const method = route.request().method();
    if (method === 'PUT') {
      // A PNG upload (the truncated fixture) fails, like the real worker would.
      fail = route.request().headers()['content-type'] === 'image/png';
      avatar = { ...avatar, state: 'queued', error: null };
      polls = 0;
      return json(route, 202, { job: 'mock-job', state: 'queued' });
    }
    if (method === 'DELETE') {
      avatar = { state: 'none', error: null, urls: null, updated_at: null };
      return route.fulfill({ status: 204 });
    }
    polls += 1;
    if (avatar.state === 'queued' && polls > 1) avatar = { ...avatar, state: 'processing' };
    else if (avatar.state === 'processing' && polls > 3) {
      avatar = fail
        ? { ...avatar, state: 'failed', error: { code: 'undecodable_image', message: 'mock: the PNG is truncated' } }
        : ready();
    }
    return json(route, 200, avatar);
  });
  await context.route(/\/v1\/profiles\/[^/]+$/, async (route) => {
    if (route.request().method() !== 'GET') return route.fallback();
    const res = await route.fetch();
    const body = await res.json();
    return json(route, res.status(), res.ok() ? { ...body, avatar } : body);
  });
  await context.route(/\/(images|avatar)\//, (route) => route.fulfill({
    status: 200, contentType: 'image/jpeg', body: fixture,
  }));
}

/**
 * Headless Chromium with a throw-away profile, and `step`/`check` that name the failing
 * step. `problems` collects page errors and console errors (`allow` filters expected ones).
 */
export async function openBrowser({ chromium, workDir, baseURL, allow = () => false }) {
  const fs = await import('node:fs/promises');
  const path = await import('node:path');
  const userDataDir = await fs.mkdtemp(path.join(workDir, 'chromium-profile-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
    baseURL,
  });
  context.setDefaultTimeout(15_000);
  const page = context.pages()[0] || await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !allow(m.text())) problems.push(`console: ${m.text()}`);
  });
  let stepName = '';
  const step = async (name, fn) => {
    stepName = name;
    const t = Date.now();
    await fn();
    console.log(`ok   ${name} (${Date.now() - t} ms)`);
  };
  const check = (cond, message) => {
    if (!cond) throw new Error(`${stepName}: ${message}`);
  };
  return { context, page, problems, step, check, userDataDir };
}
