"""`python -m cctelegram_notifier` / `cctelegram-notifier`: run the notifier service."""

from cctelegram_common.service import run
from cctelegram_notifier.app import create_app


def main() -> None:
    run(create_app())


if __name__ == "__main__":
    main()
