"""`python -m cctelegram_gateway` / `cctelegram-gateway`: run the gateway service."""

from cctelegram_common.service import run
from cctelegram_gateway.app import create_app


def main() -> None:
    gateway = create_app()
    run(gateway.service, gateway.asgi)


if __name__ == "__main__":
    main()
