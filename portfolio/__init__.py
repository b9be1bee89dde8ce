"""ML Portfolio: the P&L of ML — value, full cost, maintenance load and retirement per ML app."""

__version__ = "0.1.0"
