#!/bin/sh
# Run by the postgres image on its first start (docker-entrypoint-initdb.d): Reelay's own
# user and database, for the ledger store (REELAY_DATABASE_URL), beside Temporal's.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE USER reelay WITH PASSWORD '$LEDGER_DB_PASSWORD';
CREATE DATABASE reelay OWNER reelay;
SQL
