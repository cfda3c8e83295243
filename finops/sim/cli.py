"""``finops sim``: serve the vLLM stand-in with uvicorn (uvloop + httptools)."""

from __future__ import annotations

import argparse
import socket
import sys

from finops.sim.settings import SimSettings

HEADERS_HELP = """\
per-request overrides (request headers; a proxy forwards them):
  X-Sim-TTFT-Ms: MS          time to the first token
  X-Sim-ITL-Ms: MS           time between later tokens
  X-Sim-Output-Tokens: N     answer length (max_tokens still cuts it short)
  X-Sim-Error-Status: CODE   answer CODE with an OpenAI-style error body
  X-Sim-Drop-After: N        streams: close the connection after N content chunks;
                             otherwise: 0 closes before any byte, N sends N body bytes first
  X-Sim-Malformed: N         streams: one "data: {not json" event after N content chunks;
                             otherwise: a 200 body that is not JSON
  X-Sim-No-Usage: 1          report no usage (bodies and streams)
  X-Sim-Cached-Tokens: N     report N prompt_tokens_details.cached_tokens
  X-Sim-Max-Model-Len: N     context window for this request (a longer prompt gets vLLM's 400)
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="run a fast, deterministic vLLM stand-in (OpenAI API, streaming, usage, /metrics)",
        description="A fake vLLM server for tests, benchmarks and demos.",
        epilog=HEADERS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = SimSettings()
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=9001, help="port to bind; 0 picks a free one (default: 9001)"
    )
    parser.add_argument(
        "--model",
        dest="models",
        action="append",
        default=None,
        help=f"a served model name; repeat for several (default: {defaults.models[0]})",
    )
    parser.add_argument("--ttft-ms", type=float, default=defaults.ttft_ms, help="time to first token, ms")
    parser.add_argument("--itl-ms", type=float, default=defaults.itl_ms, help="time between later tokens, ms")
    parser.add_argument(
        "--output-tokens",
        type=int,
        default=defaults.output_tokens,
        help="answer length when max_tokens does not cut it short (default: %(default)s)",
    )
    parser.add_argument(
        "--error-rate", type=float, default=defaults.error_rate, help="share of requests that fail"
    )
    parser.add_argument(
        "--error-status",
        type=int,
        default=defaults.error_status,
        help="status of failed requests (default: 500)",
    )
    parser.add_argument(
        "--drop-rate",
        type=float,
        default=defaults.drop_rate,
        help="share of requests whose connection is dropped",
    )
    parser.add_argument(
        "--malformed-rate",
        type=float,
        default=defaults.malformed_rate,
        help="share of streams with one malformed SSE event",
    )
    parser.add_argument(
        "--max-model-len",
        type=int,
        default=defaults.max_model_len,
        help="context window (default: %(default)s)",
    )
    parser.add_argument(
        "--embedding-dim",
        type=int,
        default=defaults.embedding_dim,
        help="embedding size (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the outputs and fault draws")
    parser.add_argument(
        "--no-usage",
        action="store_true",
        help="never report usage, as some backends do (neither bodies nor streams)",
    )
    parser.set_defaults(handler=_serve)


def settings_from_args(args: argparse.Namespace) -> SimSettings:
    return SimSettings(
        models=tuple(args.models) if args.models else SimSettings().models,
        ttft_ms=args.ttft_ms,
        itl_ms=args.itl_ms,
        output_tokens=args.output_tokens,
        error_rate=args.error_rate,
        error_status=args.error_status,
        drop_rate=args.drop_rate,
        malformed_rate=args.malformed_rate,
        max_model_len=args.max_model_len,
        embedding_dim=args.embedding_dim,
        seed=args.seed,
        usage=not args.no_usage,
    )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from finops.sim.app import create_app

    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"finops sim: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings)
    # Bind before announcing, so that the line means "connect now" (and names the port when --port 0).
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"finops sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        sock.close()
        return 1
    sock.listen(2048)
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    print(f"finops sim listening on http://{host}:{port} (models: {', '.join(settings.models)})", flush=True)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
        # Nothing here reads the client address; skipping the X-Forwarded-For middleware saves time.
        proxy_headers=False,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0
