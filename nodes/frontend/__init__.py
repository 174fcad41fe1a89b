"""The front-end: the only service a shopper talks to; caches, round-robin and failover."""
