// The square crop over the preview: drag to move, drag a corner to resize, arrow keys and
// +/− from the keyboard, and a range input as a plain control. The crop is kept in source
// pixels of the oriented image (what `naturalWidth` reports), which is what `?crop=` means.
'use strict';

window.moocardCrop = (() => {
  const $ = (id) => document.getElementById(id);
  let W = 0;
  let H = 0;
  let crop = null; // { x, y, size } in source pixels
  let drag = null;

  const minSize = () => Math.min(W, H, Math.max(16, Math.round(Math.min(W, H) / 20)));
  const step = () => Math.max(1, Math.round(Math.min(W, H) / 100));
  // Display pixels per source pixel; the preview is scaled down to fit its column.
  const scale = () => ($('preview').clientWidth || W) / W;

  function clamp() {
    const s = Math.round(Math.min(Math.max(crop.size, minSize()), W, H));
    crop.size = s;
    crop.x = Math.round(Math.min(Math.max(crop.x, 0), W - s));
    crop.y = Math.round(Math.min(Math.max(crop.y, 0), H - s));
  }

  function render() {
    if (!crop) return;
    clamp();
    const k = scale();
    const box = $('crop-box');
    // CSSOM assignments are allowed under a CSP without 'unsafe-inline' for style-src.
    box.style.left = `${crop.x * k}px`;
    box.style.top = `${crop.y * k}px`;
    box.style.width = `${crop.size * k}px`;
    box.style.height = `${crop.size * k}px`;
    const range = $('crop-size');
    range.min = String(minSize());
    range.max = String(Math.min(W, H));
    range.value = String(crop.size);
    const text = `${crop.size} × ${crop.size} pixels from (${crop.x}, ${crop.y})`;
    range.setAttribute('aria-valuetext', `${crop.size} by ${crop.size} pixels`);
    $('crop-readout').textContent = `Crop: ${text} of ${W} × ${H}.`;
    const canvas = $('crop-preview');
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage($('preview'), crop.x, crop.y, crop.size, crop.size, 0, 0, canvas.width, canvas.height);
  }

  // Resizes around the centre, as + and − and the range input do.
  function resizeTo(size) {
    const cx = crop.x + crop.size / 2;
    const cy = crop.y + crop.size / 2;
    crop.size = Math.min(Math.max(size, minSize()), W, H);
    crop.x = cx - crop.size / 2;
    crop.y = cy - crop.size / 2;
    render();
  }

  function onKey(e) {
    if (!crop) return;
    const n = step() * (e.shiftKey ? 10 : 1);
    const moves = { ArrowLeft: [-n, 0], ArrowRight: [n, 0], ArrowUp: [0, -n], ArrowDown: [0, n] };
    if (moves[e.key]) {
      crop.x += moves[e.key][0];
      crop.y += moves[e.key][1];
      render();
    } else if (e.key === '+' || e.key === '=') {
      resizeTo(crop.size + 2 * n);
    } else if (e.key === '-' || e.key === '_') {
      resizeTo(crop.size - 2 * n);
    } else if (e.key === 'Home') {
      start(W, H);
    } else {
      return;
    }
    e.preventDefault();
  }

  // Pointer position in source pixels.
  function at(e) {
    const r = $('preview').getBoundingClientRect();
    const k = scale();
    return { x: (e.clientX - r.left) / k, y: (e.clientY - r.top) / k };
  }

  function onDown(e) {
    if (!crop || e.button > 0) return;
    const handle = e.target.dataset && e.target.dataset.handle;
    const p = at(e);
    // A resize keeps the corner opposite the dragged handle fixed.
    const ax = handle && handle.includes('w') ? crop.x + crop.size : crop.x;
    const ay = handle && handle.includes('n') ? crop.y + crop.size : crop.y;
    drag = { handle, start: p, from: { ...crop }, ax, ay };
    $('crop-box').setPointerCapture(e.pointerId);
    $('crop-box').focus();
    e.preventDefault();
  }

  function onMove(e) {
    if (!drag) return;
    const p = at(e);
    if (!drag.handle) {
      crop.x = drag.from.x + (p.x - drag.start.x);
      crop.y = drag.from.y + (p.y - drag.start.y);
      render();
      return;
    }
    const west = drag.handle.includes('w');
    const north = drag.handle.includes('n');
    const dx = west ? drag.ax - p.x : p.x - drag.ax;
    const dy = north ? drag.ay - p.y : p.y - drag.ay;
    const room = Math.min(west ? drag.ax : W - drag.ax, north ? drag.ay : H - drag.ay);
    const size = Math.min(Math.max(dx, dy, minSize()), room);
    crop.size = size;
    crop.x = west ? drag.ax - size : drag.ax;
    crop.y = north ? drag.ay - size : drag.ay;
    render();
  }

  function onUp() {
    drag = null;
  }

  // The largest centred square: what the server does when no crop is sent.
  function start(w, h) {
    W = w;
    H = h;
    const size = Math.min(w, h);
    crop = { x: (w - size) / 2, y: (h - size) / 2, size };
    render();
  }

  function init() {
    const box = $('crop-box');
    box.addEventListener('keydown', onKey);
    box.addEventListener('pointerdown', onDown);
    box.addEventListener('pointermove', onMove);
    box.addEventListener('pointerup', onUp);
    box.addEventListener('pointercancel', onUp);
    $('crop-size').addEventListener('input', (e) => crop && resizeTo(Number(e.target.value)));
    window.addEventListener('resize', render);
  }

  function value() {
    if (!crop) return null;
    clamp();
    return { x: crop.x, y: crop.y, size: crop.size };
  }

  return { init, start, value };
})();
