// moocard profile page: sign in, edit the display name, upload and crop a picture, watch it
// being processed, delete. No framework and no build step; served with a strict CSP, so
// nothing here may rely on inline script or style attributes set from markup.
'use strict';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'moocard.token';
const POLL_MS = 700;
const POLL_GIVE_UP_MS = 3 * 60 * 1000;

const state = { token: null, email: null, limits: null, profile: null, picked: null, crop: null, poll: null };

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// ---- messages -------------------------------------------------------------------------

function say(text) {
  $('status').textContent = text;
}

function showError(err) {
  const box = $('error');
  box.textContent = typeof err === 'string' ? err : err.message;
  box.hidden = false;
  say('');
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

// Every API failure ends up here: show the server's own sentence (API.md §Errors).
function handle(err) {
  if (err instanceof ApiError && err.code === 'invalid_token') {
    signOut();
    showError(`Please sign in again: ${err.message}`);
    return;
  }
  showError(err);
}

// ---- API --------------------------------------------------------------------------------

function errorFrom(status, data) {
  if (data && typeof data.message === 'string') return new ApiError(status, data.code || 'error', data.message);
  return new ApiError(status, 'error', `The server answered with status ${status}. Please try again.`);
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'The server could not be reached. Check your connection and try again.');
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) throw errorFrom(res.status, data);
  return data;
}

const profilePath = () => `/v1/profiles/${encodeURIComponent(state.email)}`;
const avatarPath = () => `${profilePath()}/avatar`;

// ---- sign-in ----------------------------------------------------------------------------

// Reads the email from the token's payload for display; the server verifies the signature.
function tokenEmail(token) {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('That is not an ID token: it should be three parts separated by dots.');
  let claims;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(parts[1].length / 4) * 4, '=');
    claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))));
  } catch {
    throw new Error('That token could not be read. Copy the whole token and try again.');
  }
  if (typeof claims.email !== 'string' || !claims.email) throw new Error('That token has no email in it.');
  if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now()) {
    throw new Error('That token has expired. Get a new one and sign in again.');
  }
  // API.md §Identity: only ASCII A-Z are lowercased; every other character stays.
  return claims.email.trim().replace(/[A-Z]/g, (c) => c.toLowerCase());
}

async function signIn(token) {
  clearError();
  state.email = tokenEmail(token);
  state.token = token;
  say('Signing in…');
  const profile = await api('GET', profilePath());
  sessionStorage.setItem(TOKEN_KEY, token);
  $('who-email').textContent = state.email;
  $('who').hidden = false;
  $('signin').hidden = true;
  $('app').hidden = false;
  renderProfile(profile);
  say(`Signed in as ${state.email}.`);
  $('main').focus();
  loadLimits();
}

function signOut() {
  stopPolling();
  resetPick();
  sessionStorage.removeItem(TOKEN_KEY);
  Object.assign(state, { token: null, email: null, profile: null });
  $('who').hidden = true;
  $('app').hidden = true;
  $('signin').hidden = false;
  say('Signed out.');
}

async function loadLimits() {
  if (!state.limits) state.limits = await api('GET', '/v1/limits');
  const l = state.limits;
  $('limits-help').textContent = `JPEG, PNG, GIF or WebP, up to ${window.moocardCheck.fmtBytes(l.max_upload_bytes)} and ` +
    `${l.max_dimension} pixels on each side.`;
  return l;
}

// ---- profile ----------------------------------------------------------------------------

function renderProfile(p) {
  state.profile = p;
  $('profile-name').textContent = p.display_name || 'Your profile';
  $('profile-email').textContent = p.email;
  $('confirm-email').textContent = p.email;
  $('display-name').value = p.display_name || '';
  const publicUrl = `${location.origin}/avatar/${p.public_id}`;
  $('public-url').href = publicUrl;
  $('public-url').textContent = publicUrl;
  renderAvatar(p.avatar);
}

function sizesOf(urls) {
  return Object.keys(urls || {}).map(Number).filter((n) => n > 0).sort((a, b) => a - b);
}

function renderAvatar(avatar) {
  const urls = avatar && avatar.urls;
  const sizes = sizesOf(urls);
  // `/images/{id}` URLs are immutable, so a new upload shows at once; without them the
  // public address serves the default moocard.
  const big = sizes.find((s) => s >= 256) || sizes[sizes.length - 1];
  $('current').src = big ? urls[big] : `/avatar/${state.profile.public_id}?s=256`;
  const box = $('sizes');
  box.replaceChildren(...sizes.map((size) => {
    const fig = document.createElement('figure');
    const img = document.createElement('img');
    img.src = urls[size];
    img.width = size;
    img.height = size;
    img.alt = `Your moocard at ${size} by ${size} pixels`;
    img.dataset.size = String(size);
    const cap = document.createElement('figcaption');
    cap.textContent = `${size} px`;
    fig.append(img, cap);
    return fig;
  }));
  $('sizes-empty').hidden = sizes.length > 0;
  renderFormats(avatar && avatar.formats);
  $('delete-avatar').disabled = !avatar || avatar.state === 'none';
  if (avatar) showJobState(avatar);
}

// v1.1: variants in other formats (WebP...), one link per size.
function renderFormats(formats) {
  const box = $('formats');
  box.replaceChildren(...Object.entries(formats || {}).map(([ext, urls]) => {
    const line = document.createElement('p');
    line.dataset.format = ext;
    line.append(`Also as ${ext.toUpperCase()}: `);
    for (const size of sizesOf(urls)) {
      const a = document.createElement('a');
      a.href = urls[size];
      a.textContent = `${size} px`;
      a.dataset.size = String(size);
      line.append(a, ' ');
    }
    return line;
  }));
}

async function refreshProfile() {
  renderProfile(await api('GET', profilePath()));
}

async function saveName(value) {
  clearError();
  const p = await api('PATCH', profilePath(), { display_name: value });
  renderProfile(p);
  say(value === null ? 'Display name cleared.' : `Display name saved: ${p.display_name}.`);
}

// ---- picking a file ---------------------------------------------------------------------

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = $('preview');
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('load'));
    img.src = url;
  });
}

async function pick(original) {
  clearError();
  resetPick();
  if (!original) return;
  const check = window.moocardCheck;
  const limits = await loadLimits();
  let file = original;
  let kind;
  let img;
  let shrunk = null;
  try {
    kind = await check.kind(file, limits);
  } catch (err) {
    return showError(err);
  }
  let { type } = kind;
  const shrink = async () => {
    try {
      shrunk = await check.downscale(original, type, limits);
    } catch {
      // Not decodable, or not shrinkable: the usual refusal, with the limits in it.
      const refusal = await check.file(original, limits).then(
        () => new Error(check.damaged(original, type)), (e) => e);
      refusal.fromShrink = true;
      throw refusal;
    }
    ({ file, type } = shrunk);
  };
  try {
    if (kind.tooBig) await shrink();
  } catch (err) {
    return showError(err);
  }
  let url = URL.createObjectURL(file);
  state.picked = { file, type, url };
  try {
    $('cropper').hidden = false;
    img = await loadImage(url);
    // The browser applies EXIF orientation, so these are the oriented pixels the crop refers to.
    if (!shrunk && check.overPixels(img.naturalWidth, img.naturalHeight, limits)) {
      await shrink();
      URL.revokeObjectURL(url);
      url = URL.createObjectURL(file);
      state.picked = { file, type, url };
      img = await loadImage(url);
    }
  } catch (err) {
    resetPick();
    return showError(err && err.fromShrink ? err : check.damaged(file, type));
  }
  const w = img.naturalWidth;
  const h = img.naturalHeight;
  try {
    check.pixels(file, w, h, limits);
  } catch (err) {
    resetPick();
    return showError(err);
  }
  Object.assign(state.picked, { w, h });
  window.moocardCrop.start(w, h);
  const note = shrunk ? ` It was larger than the limits, so it was downscaled here to ${check.fmtBytes(file.size)}.` : '';
  say(`“${original.name}” is ready: ${w} × ${h} pixels.${note} Choose the square to show, then upload it.`);
  $('crop-box').focus();
}

function resetPick() {
  if (state.picked) URL.revokeObjectURL(state.picked.url);
  state.picked = null;
  $('cropper').hidden = true;
  $('preview').removeAttribute('src');
  $('file').value = '';
}

// ---- upload and processing --------------------------------------------------------------

function upload() {
  const picked = state.picked;
  const c = window.moocardCrop.value();
  if (!picked || !c) return;
  clearError();
  stopPolling();
  const xhr = new XMLHttpRequest();
  xhr.open('PUT', `${avatarPath()}?crop=${c.x},${c.y},${c.size},${c.size}`);
  xhr.setRequestHeader('Authorization', `Bearer ${state.token}`);
  xhr.setRequestHeader('Content-Type', picked.type);
  xhr.setRequestHeader('Accept', 'application/json');
  const bar = $('progress');
  $('progress-wrap').hidden = false;
  $('upload').disabled = true;
  bar.value = 0;
  xhr.upload.onprogress = (e) => {
    if (!e.lengthComputable) return;
    const pct = Math.round((e.loaded / e.total) * 100);
    bar.value = pct;
    $('progress-label').textContent = `Uploading… ${pct}%`;
  };
  const done = () => {
    $('upload').disabled = false;
    $('progress-wrap').hidden = true;
  };
  xhr.onerror = () => {
    done();
    showError('The upload failed: the server could not be reached. Please try again.');
  };
  xhr.onload = () => {
    done();
    let data = null;
    try { data = JSON.parse(xhr.responseText); } catch { /* not JSON: errorFrom says so */ }
    if (xhr.status !== 202 && !(xhr.status >= 200 && xhr.status < 300)) return handle(errorFrom(xhr.status, data));
    resetPick();
    showJobState({ state: (data && data.state) || 'queued', error: null });
    say('Picture uploaded. It is being processed.');
    startPolling();
  };
  xhr.send(picked.file);
}

const STATE_TEXT = {
  none: '',
  queued: 'Queued: waiting for a worker to pick up your picture…',
  processing: 'Processing your picture…',
  ready: 'Ready: your new moocard is live.',
};

function showJobState(avatar) {
  const el = $('job-state');
  el.dataset.state = avatar.state;
  el.className = `job-state ${avatar.state}`;
  if (avatar.state === 'failed') {
    const why = avatar.error ? avatar.error.message : 'no reason was given';
    el.textContent = `Processing failed: ${why}`;
  } else {
    el.textContent = STATE_TEXT[avatar.state] || '';
  }
  el.hidden = !el.textContent;
}

function startPolling() {
  const started = Date.now();
  const tick = async () => {
    try {
      const avatar = await api('GET', avatarPath());
      showJobState(avatar);
      if (avatar.state === 'queued' || avatar.state === 'processing') {
        if (Date.now() - started > POLL_GIVE_UP_MS) {
          return showError('Your picture is taking unusually long to process. Reload the page later to see it.');
        }
        state.poll = setTimeout(tick, POLL_MS);
        return;
      }
      state.poll = null;
      await refreshProfile();
      if (avatar.state === 'ready') say('Your new moocard is live at every size.');
      if (avatar.state === 'failed') say('Processing failed; your previous picture is still shown.');
    } catch (err) {
      state.poll = null;
      handle(err);
    }
  };
  state.poll = setTimeout(tick, POLL_MS);
}

function stopPolling() {
  if (state.poll) clearTimeout(state.poll);
  state.poll = null;
}

// ---- deleting ---------------------------------------------------------------------------

async function deleteAvatar() {
  clearError();
  stopPolling();
  await api('DELETE', avatarPath());
  // The public address is cached for minutes; refetch it so this tab shows the default.
  await fetch(`/avatar/${state.profile.public_id}?s=256`, { cache: 'reload' }).catch(() => null);
  await refreshProfile();
  say('Picture deleted. The default moocard is shown now.');
}

async function deleteProfile() {
  const dialog = $('confirm');
  const confirmed = await new Promise((resolve) => {
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'delete'), { once: true });
    dialog.showModal();
  });
  if (!confirmed) {
    say('Nothing was deleted.');
    return;
  }
  clearError();
  stopPolling();
  await api('DELETE', profilePath());
  await fetch(`/avatar/${state.profile.public_id}?s=256`, { cache: 'reload' }).catch(() => null);
  await refreshProfile();
  say('Your profile was deleted.');
}

// ---- wiring -----------------------------------------------------------------------------

// Runs an async action, routing any failure to the error box.
const guard = (fn) => (...args) => Promise.resolve().then(() => fn(...args)).catch(handle);

function wire() {
  const refused = (err) => {
    state.token = null;
    showError(err.code === 'invalid_token' ? `That sign-in was not accepted: ${err.message}` : err);
  };
  $('signin-start').addEventListener('click', guard(() => window.moocardSignIn.start(state.auth)));
  $('signin-dev').addEventListener('submit', (e) => {
    e.preventDefault();
    const email = $('dev-email').value.trim();
    if (!email) return showError('Type the email to sign in as.');
    window.moocardSignIn.devSignIn(email).then(signIn).catch(refused);
  });
  $('sign-out').addEventListener('click', signOut);
  $('name-form').addEventListener('submit', guard((e) => {
    e.preventDefault();
    const value = $('display-name').value.trim();
    return saveName(value === '' ? null : value);
  }));
  $('name-clear').addEventListener('click', guard(() => saveName(null)));
  $('file').addEventListener('change', guard(() => pick($('file').files[0])));
  const drop = $('drop');
  ['dragenter', 'dragover'].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault();
    drop.classList.add('over');
  }));
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', guard((e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (!file) return showError('Drop a picture file (not a link or text).');
    return pick(file);
  }));
  $('upload').addEventListener('click', upload);
  $('cancel-pick').addEventListener('click', () => { resetPick(); say('Picture discarded.'); });
  $('delete-avatar').addEventListener('click', guard(deleteAvatar));
  $('delete-profile').addEventListener('click', guard(deleteProfile));
}

// Shows the sign-in this server offers, finishes a return from the provider, or resumes.
async function start() {
  const auth = await window.moocardSignIn.config();
  state.auth = auth;
  $('signin-dev').hidden = !auth.dev_sign_in;
  $('signin-oidc').hidden = auth.mode !== 'oidc';
  if (auth.mode === 'oidc') $('issuer-name').textContent = new URL(auth.issuer).host;
  const fresh = auth.mode === 'oidc' ? await window.moocardSignIn.finish(auth) : null;
  const token = fresh || sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    await signIn(token).catch((err) => {
      signOut();
      showError(`Please sign in again: ${err.message}`);
    });
  }
}

document.addEventListener('DOMContentLoaded', () => {
  wire();
  window.moocardCrop.init();
  start().catch(handle);
});
