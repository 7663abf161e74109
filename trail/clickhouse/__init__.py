"""The ClickHouse backend (storage = "clickhouse", docs/clickhouse.md): `url` parses the setting,
`schema` and `client` create and migrate the tables, `spool` and `shipper` move sealed rows there,
`reports` answers reports in SQL. Nothing here is imported unless the backend is in use."""
