"""The `orderdesk` console command: run, migrate, load demo data, create users and API keys."""

import argparse
import ctypes
import ctypes.util
import errno
import os
import signal
import subprocess
import sys
import time


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orderdesk.settings")
    import django

    django.setup()


def cmd_migrate(args) -> int:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=args.verbosity)
    return 0


def cmd_serve(args) -> int:
    """The web server and the background worker together, stopped together."""
    env = os.environ.copy()
    web = [
        sys.executable, "-m", "gunicorn", "orderdesk.wsgi:application",
        "--bind", f"{args.host}:{args.port}",
        "--workers", str(args.workers), "--threads", str(args.threads),
        "--worker-class", "gthread", "--graceful-timeout", "10",
        # serve supervises its children itself; gunicorn's control socket sits at one path per
        # user ($XDG_RUNTIME_DIR or ~/.gunicorn), where a second instance on the host takes it over
        "--no-control-socket",
    ]
    if args.access_log:
        web += ["--access-logfile", "-"]
    worker = [sys.executable, "-m", "orderdesk.cli", "worker"]
    commands = {"the background worker": worker, "the web server": web}
    if sandbox := _sandbox_acquirer_command(args):
        commands["the sandbox acquirer"] = sandbox
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    # Handlers first: a signal that comes while the children start must still stop them.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    children: dict[str, subprocess.Popen] = {}
    exit_code = 0
    try:
        for role, command in commands.items():  # one by one: if a start fails, those started are stopped below
            children[role] = subprocess.Popen(command, env=env, preexec_fn=_die_with_parent)
        print(f"orderdesk is serving on http://{args.host}:{args.port}/ (API docs: /api/v1/docs); Ctrl+C stops it.",
              flush=True)
        while not stopping:
            for role, child in children.items():
                if child.poll() is not None:
                    print(f"orderdesk: {role} exited with {child.returncode}; stopping.", file=sys.stderr)
                    exit_code = child.returncode or 1
                    stopping = True
            time.sleep(0.3)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        for child in children.values():
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return exit_code


def _die_with_parent() -> None:
    """In each child of serve: if serve itself is killed (kill -9 leaves it no chance to stop its
    children), the kernel sends the child SIGTERM, so no orphan keeps the port or the queue."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the children outlive a killed serve
        pass


def _sandbox_acquirer_command(args) -> list[str] | None:
    """With the acquirer's URL on loopback (the default), serve runs the sandbox acquirer too and
    points its notifications at this server's webhook; with the real YooKassa, nothing."""
    from urllib.parse import urlsplit

    from django.conf import settings

    url = urlsplit(settings.YOOKASSA_API_URL)
    if url.hostname not in ("127.0.0.1", "localhost") or not url.port:
        return None
    return [
        sys.executable, "-m", "orderdesk.cli", "sandbox-acquirer", "--host", url.hostname, "--port", str(url.port),
        "--shop-id", settings.YOOKASSA_SHOP_ID, "--secret-key", settings.YOOKASSA_SECRET_KEY,
        "--webhook-url", f"http://{args.host}:{args.port}/api/v1/acquiring/yookassa",
    ]


def cmd_worker(args) -> int:
    _setup_django()
    from orderdesk.worker import run_worker

    run_worker(interval=args.interval)
    return 0


def cmd_sandbox_acquirer(args) -> int:
    """The sandbox acquirer (the YooKassa API subset) in the foreground, until SIGTERM or SIGINT."""
    import logging
    import threading

    from orderdesk.acquiring.sandbox_server import serve_forever

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    try:
        serve_forever(host=args.host, port=args.port, shop_id=args.shop_id, secret_key=args.secret_key,
                      webhook_url=args.webhook_url, stop_event=stopping)
    except OSError as error:
        if error.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        # the port is taken (another orderdesk on this host), privileged, or the address not this host's
        print(f"orderdesk: the sandbox acquirer cannot listen on {args.host}:{args.port} ({error.strerror}). "
              f"Point YOOKASSA_API_URL at a free port, e.g. http://{args.host}:{args.port + 1}/v3.", file=sys.stderr)
        return 2
    return 0


def cmd_demo_data(args) -> int:
    _setup_django()
    from orderdesk.demo import load_demo_data

    load_demo_data(orders=args.orders, out=sys.stdout)
    return 0


def cmd_create_user(args) -> int:
    _setup_django()
    from orderdesk.core.accounts import create_user

    from orderdesk.orders.services import link_customer_account

    user = create_user(email=args.email, password=args.password, role=args.role, name=args.name, language=args.language)
    if user.role == "customer":
        link_customer_account(user)
    print(f"created {user.role} {user.email}")
    return 0


def cmd_create_api_key(args) -> int:
    _setup_django()
    from orderdesk.core.models import ApiKey

    key, secret = ApiKey.issue(name=args.name or f"{args.role} key", role=args.role)
    print(f"API key #{key.pk} for {key.role} ({key.name}); it is shown only now:", file=sys.stderr)
    print(secret)
    return 0


def cmd_manage(args) -> int:
    _setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["orderdesk manage", *args.rest])
    return 0


DEFAULT_WEB_THREADS = 1


def default_web_workers() -> int:
    """One process per core (two at least, eight at most), one thread each. Measured on two cores
    (bench/NOTES.md, stops 13 and 21): a second thread per process costs CPU on every request under
    load (the threads take turns at the GIL), and a process more than the cores costs CPU in
    switching between them: 2 × 1 took 8–15% more orders a second than 3 × 1, and served the
    order's lifecycle as fast. A call waiting on the acquirer holds up the calls queued behind it
    in its process; WEB_THREADS is the knob for a slow acquirer."""
    return min(max(len(os.sched_getaffinity(0)), 2), 8)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orderdesk", description="orderdesk back office")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="create or update the database tables")
    p.add_argument("--verbosity", type=int, default=1)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("serve", help="run the web server and the background worker")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", default_web_workers())))
    p.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", DEFAULT_WEB_THREADS)))
    p.add_argument("--access-log", action="store_true")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run the background worker alone")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between polls when idle")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("sandbox-acquirer", help="run the sandbox acquirer (YooKassa API v3 subset) in the foreground")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--shop-id", default=os.environ.get("YOOKASSA_SHOP_ID", "sandbox-shop"))
    p.add_argument("--secret-key", default=os.environ.get("YOOKASSA_SECRET_KEY", "sandbox-secret"))
    p.add_argument("--webhook-url", default="", help="where payment and refund notifications are POSTed")
    p.set_defaults(func=cmd_sandbox_acquirer)

    p = sub.add_parser("demo-data", help="load demo users and orders")
    p.add_argument("--orders", type=int, default=50)
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("create-user", help="create a person who signs in")
    p.add_argument("--role", required=True, choices=["administrator", "manager", "cashier", "customer"])
    p.add_argument("--email", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--name", default="")
    p.add_argument("--language", default="ru", choices=["ru", "en"])
    p.set_defaults(func=cmd_create_user)

    p = sub.add_parser("create-api-key", help="create a key for a machine; the key is the last line printed")
    p.add_argument("--role", required=True, choices=["site", "integration"])
    p.add_argument("--name", default="")
    p.set_defaults(func=cmd_create_api_key)

    p = sub.add_parser("manage", help="run a Django management command")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_manage)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("migrate", "serve"):
        _setup_django()
    try:
        return args.func(args)
    except Exception as exc:  # a command-line user wants the reason, not a traceback
        from orderdesk.core.errors import DomainError

        if isinstance(exc, DomainError):
            print(f"orderdesk: {exc.message}", file=sys.stderr)
            for name, problems in exc.details.get("fields", {}).items():
                for problem in problems:
                    print(f"  --{name}: {problem}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
