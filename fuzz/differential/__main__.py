"""python -m fuzz.differential --seed N --count M [--time-limit S] [--json FILE] [--jobs N]
[--ours inproc|subprocess]"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys

from fuzz.differential import known, peers
from fuzz.differential.compare import Campaign, run_campaign
from fuzz.differential.report import render, to_json


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fuzz.differential", description=__doc__)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--count", type=int, default=1000, help="cases to run (default 1000)")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS", help="stop after this long")
    p.add_argument("--timeout", type=float, default=1.0, metavar="SECONDS",
                   help="how long a server may stay silent before the step counts as unanswered (default 1)")
    p.add_argument("--json", metavar="FILE",
                   help="also write the report as JSON (rewritten every 2000 cases while the run goes on)")
    p.add_argument("--oracle", choices=("smbd", "addc"), default="smbd",
                   help="the reference: a standalone smbd (default) or the smbd of a throw-away Samba AD DC")
    p.add_argument("--ours", choices=("inproc", "subprocess"), default="inproc",
                   help="our server in this process (default) or as `python -m smb2auth serve`")
    p.add_argument("--only", action="append", default=[], metavar="PREFIX",
                   help="only cases whose mutations' kinds start with PREFIX (repeatable), e.g. spnego.")
    p.add_argument("--jobs", type=int, default=16, metavar="N",
                   help="cases run at once, each on its own connections (default 16)")
    p.add_argument("--brief", action="store_true", help="the tables only, no examples")
    args = p.parse_args(argv)
    logging.disable(logging.CRITICAL)  # our server logs every refused login

    def progress(index: int) -> None:
        if (index + 1) % 500 == 0:
            print(f"... {index + 1} cases", file=sys.stderr, flush=True)

    def write_json(campaign: Campaign) -> None:
        if args.json:
            with open(args.json, "w") as out:
                json.dump(to_json(campaign, known.explain), out, indent=2)
                out.write("\n")

    # A stopped run still stops its smbd (the with blocks below unwind): SIGTERM ends it as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with peers.oracle(args.oracle) as ref, peers.ours(args.ours, ref.account, ref.target) as ours_address:
            campaign = run_campaign(args.seed, args.count, ours_address, ref.address, account=ref.account,
                                    timeout=args.timeout, time_limit=args.time_limit, progress=progress,
                                    only=tuple(args.only), jobs=args.jobs, checkpoint=write_json)
    except KeyboardInterrupt:
        where = f"; {args.json} holds the last checkpoint" if args.json else ""
        print(f"stopped{where}", file=sys.stderr)
        return 130
    report = to_json(campaign, known.explain)
    print(render(report, examples=not args.brief))
    write_json(campaign)
    return 0


if __name__ == "__main__":
    sys.exit(main())
