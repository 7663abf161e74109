"""`/api/v1/domain` and its sub-resources: the domain itself (`domains.py`), its settings
(`settings.py`), alternative domains, access links, snippets and its theme."""
