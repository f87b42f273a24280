"""Fetches Gravatar URLs as real client libraries and applications build them from a
running moocard, and checks that each yields an image (or the 404 / 302 it asked for).

Usage: check.py BASE_URL EMAIL_WITH_AVATAR   (run by run.sh)
"""
import hashlib
import http.client
import subprocess
import sys
import urllib.parse
from pathlib import Path

from libgravatar import Gravatar

base, email = sys.argv[1], sys.argv[2]
unknown = "nobody-here@example.org"
here = Path(__file__).parent
md5 = lambda e: hashlib.md5(e.strip().lower().encode()).hexdigest()
sha = lambda e: hashlib.sha256(e.strip().lower().encode()).hexdigest()
mozilla_default = urllib.parse.quote("https://sso.mozilla.com/images/avatar.png", safe="")

cases = []  # (source, expected, url)
for e in (email, unknown):
    g = Gravatar(e)
    cases += [
        ("libgravatar", "image", g.get_image()),
        ("libgravatar", "image", g.get_image(size=96, default="mm", rating="g")),
        ("libgravatar", "image", g.get_image(size=2047, default="identicon", filetype_extension=True)),
        ("libgravatar", "image", g.get_image(size=1, default="robohash", force_default=True)),
        ("libgravatar", "image", g.get_image(default="retro", rating="x")),
    ]
    # Libravatar clients: SHA-256 of the address, same parameters.
    cases.append(("Libravatar", "image", f"https://seccdn.libravatar.org/avatar/{sha(e)}?s=128&d=wavatar"))
cases.append(("libgravatar", "404", Gravatar(unknown).get_image(default="404")))
cases.append(("libgravatar", "image", Gravatar(email).get_image(default="404")))
out = subprocess.run(["node", str(here / "urls.mjs"), email, unknown], check=True,
                     capture_output=True, text=True).stdout
cases += [("gravatar-url", *line.split(" ", 1)) for line in out.splitlines()]
for e in (email, unknown):
    h = md5(e)
    cases += [
        # WordPress get_avatar_url()
        ("WordPress", "image", f"https://secure.gravatar.com/avatar/{h}?s=96&d=mm&r=g"),
        ("WordPress 2x", "image", f"https://secure.gravatar.com/avatar/{h}?s=192&d=mm&r=g"),
        # GitLab (plain_url / ssl_url, MD5 and SHA-256)
        ("GitLab", "image", f"https://www.gravatar.com/avatar/{h}?s=80&d=identicon"),
        ("GitLab sha256", "image", f"https://secure.gravatar.com/avatar/{sha(e)}?s=160&d=identicon"),
        # Discourse: .png suffix, d=404 for "does this user have one", a cache buster
        ("Discourse", "image" if e == email else "404",
         f"https://www.gravatar.com/avatar/{h}.png?s=360&d=404&reset_cache=Ab3x_"),
        # Gitea
        ("Gitea", "image", f"https://secure.gravatar.com/avatar/{h}?d=identicon&s=290"),
        # Mozilla SSO dashboard: a URL default, rating pg, WxH size
        ("Mozilla SSO", "image" if e == email else "302",
         f"https://www.gravatar.com/avatar/{h}?d={mozilla_default}&r=pg&s=300x300"),
    ]

target = urllib.parse.urlsplit(base)
failures = 0
for source, want, url in cases:
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    conn.request("GET", path, headers={"User-Agent": source})
    res = conn.getresponse()
    body = res.read()
    ctype = res.getheader("Content-Type", "")
    if want == "image":
        ok = res.status == 200 and ctype in ("image/jpeg", "image/png") and (
            body.startswith(b"\x89PNG") or body.startswith(b"\xff\xd8"))
    elif want == "404":
        ok = res.status == 404 and ctype == "application/json"
    else:
        ok = res.status == 302 and res.getheader("Location", "").startswith("https://sso.mozilla.com/")
    print(f"{'ok  ' if ok else 'FAIL'} {source:24} {res.status} {ctype:16} {len(body):7} {path}")
    failures += not ok
print(f"{len(cases) - failures} of {len(cases)} client URLs answered as asked")
sys.exit(1 if failures else 0)
