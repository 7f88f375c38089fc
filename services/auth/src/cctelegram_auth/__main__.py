"""`python -m cctelegram_auth` / `cctelegram-auth`: run the auth service."""

from cctelegram_auth.app import create_app
from cctelegram_common.service import run


def main() -> None:
    run(create_app())


if __name__ == "__main__":
    main()
