"""`python -m cctelegram_bridge_manager` / `cctelegram-bridge-manager`: run the service."""

from cctelegram_bridge_manager.app import create_app
from cctelegram_common.service import run


def main() -> None:
    run(create_app())


if __name__ == "__main__":
    main()
