"""Real client programs (JDBC, node-postgres) that tests/test_clients_*.py drive through the proxy."""
