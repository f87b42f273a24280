// Checks a picked file against the published limits (GET /v1/limits) before anything is
// sent, in the order the server applies them (API.md §Upload rules): content type by magic
// bytes, byte size, then pixel dimensions. Each failure is a sentence for the user.
'use strict';

window.moocardCheck = (() => {
  const FORMATS = { 'image/jpeg': 'JPEG', 'image/png': 'PNG', 'image/gif': 'GIF', 'image/webp': 'WebP' };

  function fmtBytes(n) {
    if (n >= 1024 * 1024) return `${+(n / (1024 * 1024)).toFixed(1)} MiB`;
    if (n >= 1024) return `${+(n / 1024).toFixed(1)} KiB`;
    return `${n} bytes`;
  }

  // By content, like the server: the declared type and the file name can lie.
  async function sniff(file) {
    const b = new Uint8Array(await file.slice(0, 12).arrayBuffer());
    const ascii = (from, to) => String.fromCharCode(...b.slice(from, to));
    if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
    if (b[0] === 0x89 && ascii(1, 4) === 'PNG') return 'image/png';
    if (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a') return 'image/gif';
    if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'image/webp';
    return null;
  }

  /** Resolves to the detected MIME type, or rejects with the reason the file is refused. */
  async function file(f, limits) {
    const name = `“${f.name}”`;
    const type = await sniff(f);
    if (!type) {
      const what = f.type ? ` (${f.type})` : '';
      throw new Error(`${name}${what} is not a supported picture. Choose a JPEG, PNG, GIF or WebP file.`);
    }
    if (f.size > limits.max_upload_bytes) {
      throw new Error(`${name} is too large: it is ${fmtBytes(f.size)}, and the largest picture you can ` +
        `upload is ${fmtBytes(limits.max_upload_bytes)}. Choose a smaller file or shrink it first.`);
    }
    return type;
  }

  /** Throws when the loaded picture's pixel size is over the limits. */
  function pixels(f, w, h, limits) {
    const mp = (w * h) / 1e6;
    if (w > limits.max_dimension || h > limits.max_dimension || mp > limits.max_megapixels) {
      throw new Error(`“${f.name}” is too large: it is ${w} × ${h} pixels (${mp.toFixed(1)} megapixels); ` +
        `the limit is ${limits.max_dimension} pixels on each side and ${limits.max_megapixels} megapixels.`);
    }
  }

  // Issue 12: a photo over the byte or pixel limit is shrunk here instead of refused. The
  // bitmap is decoded with its EXIF orientation applied, so the new file is upright and
  // carries no metadata; PNG stays PNG (transparency) while it fits, else JPEG.
  async function downscale(f, type, limits) {
    const bmp = await createImageBitmap(f, { imageOrientation: 'from-image' });
    const long = Math.max(bmp.width, bmp.height);
    // Avatars are at most 512 px; 2048 keeps room for cropping and costs little to send.
    let scale = Math.min(1, limits.max_dimension / long, 2048 / long,
      Math.sqrt((limits.max_megapixels * 1e6) / (bmp.width * bmp.height)));
    for (let attempt = 0; attempt < 8; attempt++, scale *= 0.75) {
      const side = (n) => Math.max(1, Math.min(limits.max_dimension, Math.round(n * scale)));
      const w = side(bmp.width);
      const h = side(bmp.height);
      const c = new OffscreenCanvas(w, h);
      c.getContext('2d').drawImage(bmp, 0, 0, w, h);
      const png = type === 'image/png' && attempt === 0;
      const blob = await c.convertToBlob(png ? { type: 'image/png' } : { type: 'image/jpeg', quality: 0.9 });
      if (blob.size <= limits.max_upload_bytes) {
        const name = f.name.replace(/\.[^.]*$/, '') + (png ? '.png' : '.jpg');
        return { file: new File([blob], name, { type: blob.type }), type: blob.type, w, h };
      }
    }
    throw new Error('could not make it small enough');
  }

  const damaged = (f, type) => `“${f.name}” could not be read as a ${FORMATS[type]} picture. It may be damaged.`;

  // Like `file`, but a supported picture that is only too large in bytes passes (it will
  // be downscaled); returns its type and whether it is over the byte limit.
  async function kind(f, limits) {
    const type = await sniff(f);
    if (!type) await file(f, limits);
    return { type, tooBig: f.size > limits.max_upload_bytes };
  }

  const overPixels = (w, h, limits) => w > limits.max_dimension || h > limits.max_dimension
    || (w * h) / 1e6 > limits.max_megapixels;

  return { file, kind, pixels, overPixels, downscale, damaged, fmtBytes };
})();
