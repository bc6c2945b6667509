"""Tests through real clients other than psycopg: drivers (asyncpg, SQLAlchemy, JDBC,
node-postgres), programs (psql, the Docker entrypoint) and packages (LangChain, testcontainers).
The check programs are in jdbc/ and node/."""
