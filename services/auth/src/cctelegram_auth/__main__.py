"""`python -m cctelegram_auth` / `cctelegram-auth`: run the auth service."""

import sys

from cctelegram_auth.app import create_app
from cctelegram_auth.secret import SecretError
from cctelegram_common.service import run


def main() -> None:
    try:
        service = create_app()
    except SecretError as error:
        print(f"cctelegram-auth: {error}", file=sys.stderr)  # noqa: T201 - before logging exists
        raise SystemExit(2) from None
    run(service)


if __name__ == "__main__":
    main()
