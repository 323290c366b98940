"""Reading a replica's Prometheus endpoint: how many calls of one RPC it answered."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "authsvc_grpc_requests"  # the counter of answered RPCs, labelled rpc and code


def served(listen: str, method: str) -> int:
    """The calls of `method` (e.g. "Refresh") the server whose metrics listen at `listen` answered, OK or
    not; 0 when the endpoint does not answer (the process is down or starting)."""
    try:
        with urllib.request.urlopen(f"http://{listen}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return 0
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == REQUESTS
            for sample in family.samples
            if sample.name == f"{REQUESTS}_total" and sample.labels.get("rpc", "").endswith(method)
        )
    )
