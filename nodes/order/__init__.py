"""An order replica: carries out buys against its one catalog replica and keeps a history."""
