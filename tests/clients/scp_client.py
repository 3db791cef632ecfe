"""One SCP transfer with a Python client library, for tests/scp_clients.rs.

    scp_client.py LIBRARY --port P --user U --key KEY [--recursive] [--preserve]
                  up|down SOURCE... TARGET

LIBRARY is `paramiko` (paramiko + the `scp` module), `asyncssh` or
`pylibssh` (ansible-pylibssh: libssh). `up` sends local SOURCEs to the
remote TARGET, `down` fetches remote SOURCEs into the local TARGET. Only
127.0.0.1; host keys are not checked (the test's private sshd has a fresh
one each run). Exit 0 on success; 1 with the library's error on stderr.
"""

import argparse
import asyncio
import sys

HOST = "127.0.0.1"
TIMEOUT = 60


def paramiko_transfer(args):
    import paramiko
    from scp import SCPClient

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        HOST,
        port=args.port,
        username=args.user,
        key_filename=args.key,
        look_for_keys=False,
        allow_agent=False,
        timeout=TIMEOUT,
    )
    try:
        with SCPClient(client.get_transport(), socket_timeout=TIMEOUT) as scp:
            if args.direction == "up":
                scp.put(
                    args.sources,
                    remote_path=args.target,
                    recursive=args.recursive,
                    preserve_times=args.preserve,
                )
            else:
                for source in args.sources:
                    scp.get(
                        source,
                        local_path=args.target,
                        recursive=args.recursive,
                        preserve_times=args.preserve,
                    )
    finally:
        client.close()


def asyncssh_transfer(args):
    import asyncssh

    async def run():
        async with asyncssh.connect(
            HOST,
            port=args.port,
            username=args.user,
            client_keys=[args.key],
            known_hosts=None,
            agent_path=None,
            connect_timeout=TIMEOUT,
        ) as connection:
            if args.direction == "up":
                await asyncssh.scp(
                    args.sources,
                    (connection, args.target),
                    recurse=args.recursive,
                    preserve=args.preserve,
                )
            else:
                sources = [(connection, source) for source in args.sources]
                await asyncssh.scp(
                    sources,
                    args.target,
                    recurse=args.recursive,
                    preserve=args.preserve,
                )

    asyncio.run(asyncio.wait_for(run(), TIMEOUT * 2))


def pylibssh_transfer(args):
    from pylibsshext.session import Session

    if args.recursive or args.preserve:
        raise SystemExit("pylibssh: its SCP API has no -r or -p")
    with open(args.key, "rb") as key:
        private_key = key.read()
    session = Session()
    session.connect(
        host=HOST,
        port=args.port,
        user=args.user,
        private_key=private_key,
        host_key_checking=False,
        look_for_keys=False,
        timeout=TIMEOUT,
    )
    try:
        scp = session.scp()
        if args.direction == "up":
            if len(args.sources) != 1:
                raise SystemExit("pylibssh: one file per transfer")
            scp.put(args.sources[0], args.target)
        else:
            for source in args.sources:
                scp.get(source, args.target)
    finally:
        session.close()


LIBRARIES = {
    "paramiko": paramiko_transfer,
    "asyncssh": asyncssh_transfer,
    "pylibssh": pylibssh_transfer,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("library", choices=sorted(LIBRARIES))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--recursive", action="store_true")
    parser.add_argument("--preserve", action="store_true")
    parser.add_argument("direction", choices=["up", "down"])
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args()
    if len(args.paths) < 2:
        parser.error("need at least one source and a target")
    args.sources, args.target = args.paths[:-1], args.paths[-1]
    try:
        LIBRARIES[args.library](args)
    except SystemExit:
        raise
    except Exception as error:  # the library's own error, whatever its type
        print(f"{args.library}: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
