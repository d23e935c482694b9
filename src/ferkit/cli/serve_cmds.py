"""`ferkit serve`: the HTTP API and the Best Actor web page (no torch; `pip install 'ferkit[serve]'`)."""

from __future__ import annotations

import argparse

from ferkit.cli.args import MODEL_HELP, positive_float


def cmd_serve(args: argparse.Namespace) -> int:
    from ferkit.serve import serve

    if bool(args.cert) != bool(args.key):
        from ferkit.errors import FerkitError

        raise FerkitError("--cert and --key go together (a PEM certificate and its private key)")
    serve(
        args.model,
        args.host,
        args.port,
        args.threads,
        args.allow_origin,
        args.allowed_host,
        args.docs,
        args.https,
        args.cert,
        args.key,
        **({"body_timeout_s": args.body_timeout} if args.body_timeout else {}),
    )
    return 0


def add_serve_parser(stages) -> None:
    sv = stages.add_parser("serve", help="HTTP API (/predict, /score, /health) and the Best Actor web page at /")
    sv.add_argument("--model", help=MODEL_HELP)
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--threads", type=int, help="ONNX Runtime threads (default: all cores)")
    sv.add_argument("--allow-origin", action="append", metavar="URL", help="allow this web origin (CORS); repeat")
    sv.add_argument("--allowed-host", action="append", metavar="HOST", help="accept only this Host header; repeat")
    sv.add_argument("--docs", action="store_true", help="serve the OpenAPI pages at /docs")
    sv.add_argument(
        "--https", action="store_true", help="TLS with a self-signed certificate for this machine (phones need https)"
    )
    sv.add_argument("--cert", help="your own PEM certificate (with --key) instead of the self-signed one")
    sv.add_argument("--key", help="the certificate's PEM private key")
    sv.add_argument(
        "--body-timeout",
        type=positive_float,
        metavar="SECONDS",
        help="refuse (408) a request body not complete in this time (default 120; a stall of 10 s always is)",
    )
    sv.set_defaults(func=cmd_serve)
