//! The table engine against real files: Parquet, CSV and JSON Lines written here, SQLite
//! databases, the SQLite databases in `../shared/data/sqldbs`, and (when `scripts/test.sh`
//! started one) a real PostgreSQL server.

mod governance;
mod postgres;
mod redteam;
mod support;
mod tables;
