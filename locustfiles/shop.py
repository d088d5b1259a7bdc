"""Shoppers for the reference shop (stacks/shop): skewed product popularity, carts and checkouts.

Product popularity follows a Zipf law (exponent ``ZIPF_S``), as in real catalogues: a few products get most
views, so a cache's hit ratio depends on its capacity and on how keys spread over instances.
"""

import itertools
import random
import uuid

from locust import FastHttpUser, between, task

PRODUCTS = 2000
CATALOG_PAGES = 100
ZIPF_S = 1.0
_WEIGHTS = list(itertools.accumulate(1.0 / (rank**ZIPF_S) for rank in range(1, PRODUCTS + 1)))
# Popularity rank is not product id order: shuffle ids with a fixed seed so hot products are spread out.
_IDS = list(range(1, PRODUCTS + 1))
random.Random(7).shuffle(_IDS)


def popular_product() -> int:
    """A product id drawn from the Zipf popularity distribution."""
    return random.choices(_IDS, cum_weights=_WEIGHTS, k=1)[0]


class Shopper(FastHttpUser):
    """Browses products and the catalog, fills a cart, and now and then checks out."""

    wait_time = between(0.05, 0.25)

    def on_start(self) -> None:
        self.session = uuid.uuid4().hex[:12]

    @task(40)
    def product_page(self) -> None:
        self.client.get(f"/products/{popular_product()}", name="/products/[id]")

    @task(10)
    def catalog(self) -> None:
        page = min(CATALOG_PAGES, int(random.paretovariate(1.2)))
        self.client.get(f"/catalog?page={page}", name="/catalog")

    @task(5)
    def add_to_cart(self) -> None:
        self.client.post(f"/cart/{self.session}/items", json={"product_id": popular_product(), "qty": 1},
                         name="/cart/[session]/items")

    @task(4)
    def view_cart(self) -> None:
        self.client.get(f"/cart/{self.session}", name="/cart/[session]")

    @task(1)
    def checkout(self) -> None:
        self.client.post(f"/checkout/{self.session}", name="/checkout/[session]")
        self.session = uuid.uuid4().hex[:12]
