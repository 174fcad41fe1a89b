"""``python -m nodes catalog|order|frontend [flags]``: run one Bazar node as its own process."""
from __future__ import annotations

import sys

from nodes.runtime.config import CatalogConfig, FrontendConfig, OrderConfig, parse
from nodes.runtime.server import run_node


def main(argv: list[str] | None = None) -> None:
    config = parse(sys.argv[1:] if argv is None else argv)
    if isinstance(config, CatalogConfig):
        from nodes.runtime.catalog.app import init_app
    elif isinstance(config, OrderConfig):
        from nodes.runtime.order.app import init_app
    else:
        assert isinstance(config, FrontendConfig)
        from nodes.runtime.frontend.app import init_app
    app = init_app(config)
    run_node(app, app["node"], host=config.host, port=config.port, parent_pid=config.parent_pid)


if __name__ == "__main__":
    main()
