"""`python -m cctelegram_events` / `cctelegram-events`: run the events service."""

from cctelegram_common.service import run
from cctelegram_events.app import create_app


def main() -> None:
    run(create_app())


if __name__ == "__main__":
    main()
