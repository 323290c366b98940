"""Reading Prometheus text exposition back into numbers, with prometheus-client's own parser."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families


async def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """GET a /metrics page; every sample by (name, labels). Fails unless it parses as Prometheus text."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """One sample's value; a KeyError names the series when it is missing altogether."""
    return samples[(name, frozenset(labels.items()))]
