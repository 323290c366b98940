"""An internal service protected by the authsvc bearer guard: `example.v1.Greeter/Hello` greets the caller.

It has no proto of its own: one method over raw bytes through a generic handler, so the example stays
about the guard. Run it beside a running authsvc (`make run`):

    .venv/bin/python clients/examples/greeter.py --auth 127.0.0.1:50051 --listen 127.0.0.1:50061

Pass `--check-revocation` (and `--introspection-secret` when the service has one) to confirm each
token's session through Introspect, so that a logged-out session is refused at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

import grpc
from authsvc_client import AsyncAuthClient, BearerGuard, GuardInterceptor, current_user

SERVICE = "example.v1.Greeter"
HELLO = f"/{SERVICE}/Hello"


def _identity(data: bytes) -> bytes:
    return data


async def hello(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    user = current_user()  # set by the guard: the call only gets here with a valid access token
    return f"hello {user.email}, role {user.role}, session {user.session_id}".encode()


async def start_greeter(guard: BearerGuard, listen: str) -> tuple[grpc.aio.Server, int]:
    """Bind and start the Greeter behind `guard`; return the server and its port."""
    server = grpc.aio.server(interceptors=[GuardInterceptor(guard)])
    handlers = {"Hello": grpc.unary_unary_rpc_method_handler(hello, _identity, _identity)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port(listen)
    await server.start()
    return server, port


async def call_hello(target: str, access_token: str | None) -> str:
    """Call Hello with the token as bearer; the answer, or the refusal as `refused: CODE message`."""
    metadata = (("authorization", f"Bearer {access_token}"),) if access_token else None
    async with grpc.aio.insecure_channel(target) as channel:
        try:
            answer: bytes = await channel.unary_unary(HELLO, _identity, _identity)(
                b"", metadata=metadata, timeout=5
            )
        except grpc.aio.AioRpcError as error:
            return f"refused: {error.code().name} {error.details()}"
    return answer.decode()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--auth", default="127.0.0.1:50051", help="authsvc gRPC address")
    parser.add_argument("--listen", default="127.0.0.1:50061")
    parser.add_argument("--check-revocation", action="store_true")
    parser.add_argument("--introspection-secret", default=os.environ.get("AUTHSVC_INTROSPECTION_SECRET"))
    args = parser.parse_args()
    # Ctrl-C (SIGINT) or SIGTERM: finish the calls in flight, then exit quietly with status 0.
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with AsyncAuthClient(args.auth, introspection_secret=args.introspection_secret) as auth:
        guard = BearerGuard(auth, check_revocation=args.check_revocation)
        server, port = await start_greeter(guard, args.listen)
        print(f"greeter listening on port {port}, verifying tokens of {args.auth}", flush=True)
        await stop.wait()
        await server.stop(grace=2)


if __name__ == "__main__":
    asyncio.run(main())
