// Prints the URLs the npm `gravatar-url` library builds for an email, one per line, as
// `<expected> <url>` (see check.py).
import gravatarUrl from 'gravatar-url';

const [email, unknown] = process.argv.slice(2);
const lines = [
  ['image', gravatarUrl(email)],
  ['image', gravatarUrl(email, {size: 200, default: 'retro', rating: 'g'})],
  ['image', gravatarUrl(unknown, {size: 96, default: 'mp'})],
  ['image', gravatarUrl(unknown, {size: 3000, default: 'monsterid'})],
  ['image', gravatarUrl(unknown, {size: 32, default: 'wavatar', rating: 'x'})],
  ['404', gravatarUrl(unknown, {default: '404'})],
  ['image', gravatarUrl(email, {default: '404'})],
];
for (const [want, url] of lines) console.log(`${want} ${url}`);
