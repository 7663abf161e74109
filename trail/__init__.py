"""trail: self-hosted, cookie-less web analytics."""

__version__ = "0.1.0"
