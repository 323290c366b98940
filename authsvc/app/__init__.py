"""The composition root: opens the stores and keys, builds the domain services, and starts the server.

resources.py opens what the server runs on (schema, store, attempt counters, key files, the gateway
secret), services.py builds the domain objects over any store, health.py keeps the health status and the
key ring in step with them, start.py puts it together behind `start_server`, preflight.py is
`authsvc check`. The gRPC side (authsvc/transport/) only builds and binds the server.
"""
