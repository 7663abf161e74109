"""The TinyTrail API: accounts, users, websites and reports; answers in its envelope."""
