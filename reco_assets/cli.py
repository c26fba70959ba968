"""Command line: `python -m reco_assets demo | import | run | release | serve | versions | tune | vacuum | ui`."""

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from reco_assets.constants import RELEASES, TABLES
from reco_assets.resources import HOME_ENV, reco_home
from reco_assets.simulator import PROFILES


def _summary(home: Path, day: date) -> None:
    from reco_assets.resources import local_resources

    lakehouse = local_resources(home)["lakehouse"]
    print(f"\nTables of {day} under {lakehouse.root}:")
    for table, column in TABLES.items():
        try:
            count = lakehouse.rows(table, {column: day})
            rows = f"{count:>12,} rows"
        except FileNotFoundError:
            rows = "  not written"
        print(f"  {table:<24} {rows}")
    print(
        f"\nBrowse them in the Dagster UI:  python -m reco_assets ui --home {home}"
        f"\nMLflow runs:                    mlflow ui --backend-store-uri sqlite:///{home / 'mlflow.db'}"
        f"\nServe the recommendations:      python -m reco_assets serve --home {home}   (API docs on /docs)"
    )


def _settings(home: Path, pairs: list[str] | None):
    """The settings in force for `home`, after writing `group.name=VALUE` changes into its settings file
    (values read as JSON where they parse, else as text): every later command, the UI and its sensors and
    schedules read the same file."""
    from reco_assets.settings import load_settings, save_settings

    settings = load_settings(home)
    if not pairs:
        return settings
    overrides = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        try:
            overrides[name] = json.loads(text)
        except json.JSONDecodeError:
            overrides[name] = text
    try:
        settings = settings.changed(overrides)
    except ValueError as error:
        raise SystemExit(f"--set: {error}") from None
    path = save_settings(home, settings)
    print(f"settings of {home} changed ({', '.join(overrides)}): {path}")
    return settings


def _run(home: Path, day: date | None, settings=None) -> int:
    from reco_assets.resources.landing import LandingResource
    from reco_assets.runner import run_day

    available = LandingResource(root=str(home / "landing")).days()
    if not available:
        print(f"no landing files under {home / 'landing'}", file=sys.stderr)
        return 2
    day = day or available[-1]
    if day not in available:
        print(f"no events file for {day} under {home / 'landing' / 'events'}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    report = run_day(home, day, available, settings=settings)
    print(f"\n{day} done in {time.perf_counter() - started:.1f} s")
    _summary(home, day)
    return _exit_code(report)


def _release(home: Path, day: date | None, releases: list[str] | None, settings=None) -> int:
    from reco_assets.resources import local_resources
    from reco_assets.resources.landing import LandingResource
    from reco_assets.runner import run_releases
    from reco_assets.serving.published import published_release

    landing = LandingResource(root=str(home / "landing"))
    day = day or landing.days()[-1]
    landed = [r for r in releases or RELEASES if landing.release_file(day, r).is_file()]
    if not landed:
        print(
            f"no release snapshot of the cards of {day} has landed ({landing.release_file(day, '*')})", file=sys.stderr
        )
        return 2
    print(f"refreshing the cards of {day} at the releases {', '.join(landed)} of the next day")
    report = run_releases(home, day, landed, settings=settings)
    published = published_release(local_resources(home)["lakehouse"], day)
    print(f"\npublished cards of {day}: " + (f"release {published} (release_cards)" if published else "member_cards"))
    return _exit_code(report)


def _tokens(serving, home: Path) -> list[str]:
    """Accepted API tokens: RECO_API_TOKENS (comma-separated); without any, one made up for this run (so the
    demo can be called at once, and never without a token) and written to `<home>/api_token`, readable by its
    owner only: never printed, so it is in no terminal scrollback or log."""
    import secrets

    tokens = serving.tokens()
    if not tokens:
        tokens = [secrets.token_urlsafe(24)]
        path = home / "api_token"
        home.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # then made anew with mode 0600 (O_EXCL: never through a planted link)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(tokens[0])
        print(f"RECO_API_TOKENS is not set: this run accepts the bearer token in {path} (readable by you only)")
    return tokens


def _writer() -> str:
    """This API process's name in its landing files: the host and the process id (one file per process)."""
    import re
    import socket

    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{socket.gethostname()}-{os.getpid()}")[-64:]


def _serve(home: Path, host: str, port: int, settings) -> int:
    import uvicorn

    from reco_assets.resources import local_resources
    from reco_assets.serving.api import create_app
    from reco_assets.serving.event_log import EventLog
    from reco_assets.serving.intake import EventIntake

    serving = local_resources(home)["serving"].process_config_and_initialize()  # its `EnvVar`s read
    store = serving.open(settings.serving.previous_versions)
    try:
        current = store.current()
        state = f"version {current.version} (cards of {current.as_of_date})" if current else "no version yet"
    except store.errors as error:  # the API starts all the same: it answers 503 until the store does
        state = f"unavailable ({error})"
    print(f"serving {serving.store} store of {home}: {state}")
    chosen = settings.sessions
    writer = os.environ.get("RECO_API_WRITER") or _writer()
    intake = EventIntake(
        EventLog(str(home / "landing"), writer),
        serving.open_sessions(chosen.max_events, chosen.window_minutes),
        settings.input_limits(),
        chosen.max_batch_events,
    )
    print(f"events posted to /v1/events land in {home / 'landing' / 'events'} as YYYY-MM-DD.api-{writer}.jsonl")
    app = create_app(store, _tokens(serving, home), settings.serving.max_age_hours, intake, chosen.weights())
    print(f"API on http://{host}:{port}/v1/members/<member_id>/recommendations   docs: http://{host}:{port}/docs")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, loop="uvloop", http="httptools")
    return 0


def _versions(home: Path, rollback: str | None, settings) -> int:
    from reco_assets.resources import local_resources

    serving = local_resources(home)["serving"].process_config_and_initialize()  # its `EnvVar`s read
    store = serving.open(settings.serving.previous_versions)
    if rollback:
        store.rollback(rollback)
        print(f"now serving {rollback}")
    current = store.current()
    for version in store.versions():
        manifest = store.manifest(version)
        mark = "*" if current and version == current.version else " "
        print(f"{mark} {version}  {manifest.source:<20} {manifest.members:>10,} members  loaded {manifest.loaded_at}")
    return 0


def _vacuum(home: Path, retention_hours: int | None, settings) -> int:
    from reco_assets.resources import local_resources

    lakehouse = local_resources(home)["lakehouse"]
    hours = settings.lakehouse.vacuum_retention_hours if retention_hours is None else retention_hours
    print(f"deleting the files of {lakehouse.root} that no version of the last {hours} h reads")
    for table, files in lakehouse.vacuum(hours).items():
        print(f"  {table}: {len(files)} deleted" + "".join(f"\n      {path}" for path in files))
    return 0


def _exit_code(report) -> int:
    if report.failed_steps:
        print("\nFAILED STEPS:\n  " + "\n  ".join(report.failed_steps), file=sys.stderr)
    if report.failed_checks:
        print("\nFAILED CHECKS:\n  " + "\n  ".join(report.failed_checks), file=sys.stderr)
    if not report.ok:
        return 1
    print("\nAll asset checks passed.")
    return 0


def _tune(home: Path, day: date | None, limit: int | None, only: list[str] | None, settings) -> int:
    from reco_assets.evaluation.tuning import tune
    from reco_assets.resources import local_resources
    from reco_assets.resources.landing import LandingResource
    from reco_assets.runner import ingest_days, ingestion_window

    resources = local_resources(home)
    available = LandingResource(root=str(home / "landing")).days()
    # By default the latest day's fitting origin: its test window ends where the first reported origin's
    # training ends, so the figures the latest day's rolling evaluation reports stay out of the tuning.
    day = day or available[-1] - timedelta(days=settings.evaluation.origins * settings.evaluation.origin_days)
    needed = [*ingestion_window(available, day, settings), day]
    print(f"ingesting the landed days the backtest reads ({needed[0]} .. {day})")
    if not ingest_days(home, needed, settings):
        print("ingestion failed: see the run in the Dagster UI")
        return 1
    print(
        f"tuning on {day}: trained through {day - timedelta(days=settings.evaluation.holdout_days)}, tested to {day}; "
        f"report the figures of later days only"
    )
    session = resources["spark"].session()
    results = tune(session, resources["lakehouse"], resources["tracking"], day, settings, limit, only=only)
    print("\n" + results.drop(columns="mlflow_run_id").to_string(index=False, float_format="%.4f"))
    print(f"\nbest: {results['trial'].iloc[0]}  (every trial is an MLflow run of experiment 'reco_assets')")
    return 0


def _import(home: Path, fmt: str, files: list[str]) -> int:
    from reco_assets.adapters.importer import import_files
    from reco_assets.resources import local_resources

    started = time.perf_counter()
    print(f"importing {len(files)} {fmt} file(s) into {home / 'landing'}")
    resources = local_resources(home)
    report = import_files(
        fmt,
        [Path(f) for f in files],
        home / "landing",
        resources["lakehouse"],
        limits=resources["settings"].input_limits(),
    )
    print(
        f"\n{report.records:,} records read in {time.perf_counter() - started:.1f} s = {report.imported:,} imported "
        f"+ {report.rejected.total():,} rejected"
    )
    for each in report.files:
        rejected = each.rejected.total()
        print(f"  {each.path}: {each.records:,} = {each.imported:,} + {rejected:,} rejected -> {each.rejected_file}")
        for reason, count in each.rejected.most_common():
            print(f"    {reason:<28} {count:>10,}")
    if not report.days:
        print("nothing landed", file=sys.stderr)
        return 1
    days = list(report.days)
    print(
        f"landed: {len(days)} days ({days[0]} .. {days[-1]}), {report.products:,} products, "
        f"{report.ids:,} ids added to id_map"
    )
    for kind, count in report.kinds.most_common():
        print(f"  {kind:<20} {count:>10,}")
    if report.unparsed_times:
        print(f"  ({report.unparsed_times:,} records without a readable time: landed to be quarantined by ingestion)")
    print(f"\nNext: python -m reco_assets run --home {home} [--date YYYY-MM-DD]")
    return 0


def _cover_landing(home: Path) -> None:
    """Start the daily partitions at the first landed day when the log is older than the default start."""
    from reco_assets.constants import PARTITIONS_START_DEFAULT, PARTITIONS_START_ENV
    from reco_assets.resources.landing import LandingResource

    days = LandingResource(root=str(home / "landing")).days()
    if days and PARTITIONS_START_ENV not in os.environ and days[0] < date.fromisoformat(PARTITIONS_START_DEFAULT):
        os.environ[PARTITIONS_START_ENV] = days[0].isoformat()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m reco_assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="simulate a flash-sale retailer, then materialize its latest day")
    demo.add_argument("--profile", choices=list(PROFILES), default="demo")
    run = commands.add_parser("run", help="materialize one day from the landing files present")
    run.add_argument("--date", type=date.fromisoformat, help="YYYY-MM-DD (default: the latest landed day)")
    ui = commands.add_parser("ui", help="start the Dagster UI on the home's instance")
    ui.add_argument("--port", type=int, default=3000)
    release = commands.add_parser("release", help="refresh a day's cards from the release snapshots that landed")
    release.add_argument("--date", type=date.fromisoformat, help="as-of day of the cards (default: the latest)")
    release.add_argument("--release", nargs="+", choices=RELEASES, help="default: every landed one")
    tune = commands.add_parser("tune", help="backtest a small grid of settings on one day; print the best")
    tune.add_argument("--date", type=date.fromisoformat, help="evaluated day (default: the fitting origin)")
    tune.add_argument("--trials", type=int, help="run only the first N trials of the grid")
    tune.add_argument("--only", nargs="+", metavar="SETTING", help="vary only these settings of the grid")
    imports = commands.add_parser("import", help="land foreign event files: Open CDP clickstream or retail invoices")
    imports.add_argument("--format", required=True, choices=["opencdp", "online-retail"])
    imports.add_argument("files", nargs="+", help="CSV files, in time order")
    serve = commands.add_parser("serve", help="answer the served version's recommendations over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    versions = commands.add_parser("versions", help="list the serving store's versions; --rollback serves one")
    versions.add_argument("--rollback", metavar="VERSION", help="serve this kept version again")
    vacuum = commands.add_parser("vacuum", help="delete the lakehouse's files no version of the retention reads")
    vacuum.add_argument(
        "--retention-hours", type=int, help="default: the `lakehouse.vacuum_retention_hours` setting (a week)"
    )
    for command in (demo, run, release, ui, tune, imports, serve, versions, vacuum):
        command.add_argument("--home", help=f"data home (default: ${HOME_ENV} or ./.reco_home)")
    for command in (demo, run, release, tune, serve, versions, vacuum):
        command.add_argument(
            "--set",
            action="append",
            metavar="GROUP.NAME=VALUE",
            help="change a setting of the home, for this and every later run, e.g. --set ranking.top_k=1000",
        )
    args = parser.parse_args(argv)
    home = reco_home(args.home)
    home.mkdir(parents=True, exist_ok=True)
    os.environ[HOME_ENV] = str(home)
    _cover_landing(home)

    if args.command == "demo":
        from reco_assets.simulator import simulate

        print(f"simulating profile '{args.profile}' into {home / 'landing'}")
        simulate(PROFILES[args.profile], home / "landing")
        sys.exit(_run(home, None, _settings(home, args.set)))
    if args.command == "run":
        sys.exit(_run(home, args.date, _settings(home, args.set)))
    if args.command == "release":
        sys.exit(_release(home, args.date, args.release, _settings(home, args.set)))
    if args.command == "import":
        sys.exit(_import(home, args.format, args.files))
    if args.command == "tune":
        sys.exit(_tune(home, args.date, args.trials, args.only, _settings(home, args.set)))
    if args.command == "serve":
        sys.exit(_serve(home, args.host, args.port, _settings(home, args.set)))
    if args.command == "versions":
        sys.exit(_versions(home, args.rollback, _settings(home, args.set)))
    if args.command == "vacuum":
        sys.exit(_vacuum(home, args.retention_hours, _settings(home, args.set)))
    if args.command == "ui":
        from reco_assets.runner import dagster_instance

        dagster_instance(home)  # prepares DAGSTER_HOME
        workspace = Path(__file__).resolve().parent.parent / "workspace.yaml"
        dagster = Path(sys.executable).parent / "dagster"
        sys.exit(subprocess.call([str(dagster), "dev", "-w", str(workspace), "-p", str(args.port)]))
