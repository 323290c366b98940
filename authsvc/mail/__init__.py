"""Outbound mail: the adapters that send the outbox's mail (SMTP, or files in development), the messages
they send and the templates those are written from.

At the store's level: it imports authsvc.store.outbox (the mail and the `MailDelivery` the courier calls)
and nothing above it; the domain never imports it (the courier gets a `MailDelivery`).
"""
