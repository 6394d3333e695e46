"""The bank: accounts with money in one currency, kept as events with esframework."""
