"""Readers of the classic WordPress stack (stacks/wordpress): the classic home-page request plus a realistic mix.

The classic exercise loaded only ``/``. Real readers also open single posts — a few hot, most rarely read
(Zipf-like popularity, exponent ``ZIPF_S``) — browse archives and categories, search, and now and then post a
comment: a write that changes a post's comment list, so WordPress invalidates the cached queries behind it
(with an object cache) while a page cache keeps serving the old page until it expires.

The site's size is the stack's ``posts`` parameter; the first reader in each Locust process asks the site
(the REST API's ``X-WP-Total``) rather than assuming it. The seeded ids are fixed: post i has id i (1..posts),
page j has id posts + j.
"""

from __future__ import annotations

import itertools
import random
import uuid

from locust import FastHttpUser, between, task

ZIPF_S = 1.0
_SITE: dict[str, list[int]] = {}
_WORDS = ("redis", "cache", "nginx", "latency", "worker", "query", "replica", "snapshot", "window", "socket")


def _discover(client: object) -> None:
    """Learn the seeded posts' and pages' ids once per process (requests named `(discover)`)."""
    if _SITE:
        return
    counts = {}
    for kind in ("posts", "pages"):
        with client.get(f"/?rest_route=/wp/v2/{kind}&per_page=1&_fields=id",  # type: ignore[attr-defined]
                        name=f"(discover {kind})", catch_response=True) as resp:
            total = resp.headers.get("X-WP-Total") if resp.status_code == 200 else None
            if total is None or not str(total).isdigit():
                resp.failure(f"no X-WP-Total in {resp.status_code} answer")
                return
            resp.success()
            counts[kind] = int(total)
    ids = list(range(1, counts["posts"] + 1))
    random.Random(7).shuffle(ids)  # popularity rank is not id order: hot posts spread over the site
    _SITE["posts"] = ids
    _SITE["weights"] = list(itertools.accumulate(1.0 / rank**ZIPF_S for rank in range(1, len(ids) + 1)))
    _SITE["pages"] = list(range(counts["posts"] + 1, counts["posts"] + counts["pages"] + 1))


def popular_post() -> int:
    """A post id drawn from the Zipf popularity distribution."""
    return random.choices(_SITE["posts"], cum_weights=_SITE["weights"], k=1)[0]


class Reader(FastHttpUser):
    """Reads the home page, posts, pages, archives and search results; comments now and then."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        _discover(self.client)
        self.author = f"Reader {uuid.uuid4().hex[:8]}"

    @task(30)
    def home_page(self) -> None:
        """The classic exercise's only request."""
        self.client.get("/", name="/")

    @task(40)
    def post_page(self) -> None:
        if _SITE:
            self.client.get(f"/?p={popular_post()}", name="/?p=[post]")

    @task(5)
    def page(self) -> None:
        if _SITE:
            self.client.get(f"/?page_id={random.choice(_SITE['pages'])}", name="/?page_id=[page]")

    @task(8)
    def archive(self) -> None:
        choice = random.random()
        if choice < 0.4:
            self.client.get(f"/?cat={random.randint(2, 6)}", name="/?cat=[category]")
        elif choice < 0.8:
            self.client.get(f"/?m=2024{random.randint(1, 12):02d}", name="/?m=[month]")
        else:
            self.client.get(f"/?paged={random.randint(2, 5)}", name="/?paged=[n]")

    @task(5)
    def search(self) -> None:
        self.client.get(f"/?s={random.choice(_WORDS)}", name="/?s=[word]")

    @task(1)
    def comment(self) -> None:
        """A write: WordPress stores it, invalidates the post's cached comment queries and redirects back."""
        if not _SITE:
            return
        post = popular_post()
        with self.client.post("/wp-comments-post.php", name="/wp-comments-post.php", allow_redirects=False,
                              catch_response=True, data={
                                  "comment_post_ID": str(post), "author": self.author,
                                  "email": "reader@example.invalid", "url": "",
                                  "comment": f"Comment {uuid.uuid4().hex} on post {post}: the load farm was here.",
                              }) as resp:
            if resp.status_code != 302:  # WordPress answers a stored comment with a redirect to it
                resp.failure(f"comment not stored: {resp.status_code}")
                return
            resp.success()
        # The reader then sees the post again (a request of its own, as the server counts it), now with a cookie
        # that remembers their name: a page cache lets it through to WordPress.
        self.client.get(f"/?p={post}", name="/?p=[post] after a comment")
