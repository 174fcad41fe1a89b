"""``python -m nodes catalog|order|frontend [flags]``: run one Bazar node as its own process."""
from __future__ import annotations

import sys

from nodes.runtime.config import CatalogConfig, FrontendConfig, OrderConfig, parse
from nodes.runtime.node import NODE_KEY
from nodes.runtime.server import run_node


def main(argv: list[str] | None = None) -> None:
    config = parse(sys.argv[1:] if argv is None else argv)
    if isinstance(config, CatalogConfig):
        from nodes.runtime.catalog import app as service
    elif isinstance(config, OrderConfig):
        from nodes.runtime.order import app as service  # type: ignore[no-redef]
    else:
        assert isinstance(config, FrontendConfig)
        from nodes.runtime.frontend import app as service  # type: ignore[no-redef]
    app = service.init_app(config)  # type: ignore[arg-type]  # each service takes its own config
    run_node(app, app[NODE_KEY], host=config.host, port=config.port, parent_pid=config.parent_pid)


if __name__ == "__main__":
    main()
