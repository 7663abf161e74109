"""The dashboard's own routes: sign-in sessions (`session.py`) and its pages (`pages.py`)."""
